"""The registry part of the demo: a model promoted through its policy by the demo team, and one promotion left
waiting for a second reviewer, so the portal and the API have something to show at first sign-in."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from governance.access.models import AccessReviewCampaign
from governance.portal import demo
from governance.registry.models import ModelVersion, PromotionPolicy, PromotionRequest, RegisteredModel, StageTransition
from governance.registry.services.promotions import promotion_approve

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def debug(settings):
    settings.DEBUG = True


def load_demo(capture) -> str:
    """Load, then run the blobs' verification. In a test nothing commits, so it runs after the whole command: the
    promotions wait, approved, for their integrity gate and apply once the bytes are verified (as with a broker)."""
    out = io.StringIO()
    with capture(execute=True):
        call_command("load_demo", stdout=out)
    return out.getvalue()


def stages(model: RegisteredModel) -> dict[int, str]:
    return dict(model.versions.values_list("number", "stage"))


def test_the_demo_model_is_in_production_through_its_policy(django_capture_on_commit_callbacks):
    output = load_demo(django_capture_on_commit_callbacks)

    model = RegisteredModel.objects.get(name=demo.MODEL_NAME)
    assert stages(model) == {1: "production", 2: "none"}
    assert list(
        StageTransition.objects.filter(model_version__number=1).order_by("id").values_list("from_stage", "to_stage")
    ) == [("none", "staging"), ("staging", "production")]
    policy = PromotionPolicy.objects.get(project=model.project, stage="production")
    assert (policy.version, policy.approvals_required, policy.changed_by.username) == (1, 2, demo.MAINTAINER)
    assert dict(model.aliases.values_list("name", "model_version__number")) == {"champion": 1, "candidate": 2}
    assert "Registry: model fraud-scorer:" in output


def test_a_second_reviewer_finds_a_promotion_waiting_and_approving_it_replaces_production(
    django_capture_on_commit_callbacks,
):
    output = load_demo(django_capture_on_commit_callbacks)
    sam = get_user_model().objects.get(username=demo.SECOND_REVIEWER)

    waiting = PromotionRequest.objects.awaiting(sam).get()
    assert "awaits a second approval: sign in as sam" in output
    assert waiting.model_version.number == 2
    promotion_approve(request=waiting, reviewer=sam, comment="Agreed.")

    assert stages(waiting.registered_model) == {1: "archived", 2: "production"}


def test_loading_again_registers_nothing_more(django_capture_on_commit_callbacks):
    load_demo(django_capture_on_commit_callbacks)
    counts = (ModelVersion.objects.count(), PromotionRequest.objects.count(), StageTransition.objects.count())

    output = load_demo(django_capture_on_commit_callbacks)

    assert (ModelVersion.objects.count(), PromotionRequest.objects.count(), StageTransition.objects.count()) == counts
    assert "promotion #" in output


def test_the_maintainer_finds_an_access_review_to_complete(django_capture_on_commit_callbacks):
    load_demo(django_capture_on_commit_callbacks)
    mara = get_user_model().objects.get(username=demo.MAINTAINER)

    campaign = AccessReviewCampaign.objects.get()

    assert campaign.items.filter(reviewer=mara, decision="pending").count() >= 3
    # sam shares it (the browser test of a refused bulk decision signs in as him).
    assert campaign.items.filter(reviewer__username=demo.SECOND_REVIEWER, decision="pending").count() >= 2


def test_the_demo_project_has_retention_rules_and_a_hold_on_its_model_for_the_lifecycle_page(
    django_capture_on_commit_callbacks, client
):
    load_demo(django_capture_on_commit_callbacks)
    model = RegisteredModel.objects.get(name=demo.MODEL_NAME)
    maintainer = get_user_model().objects.get(username=demo.MAINTAINER)

    client.force_login(maintainer)
    response = client.get(f"/projects/{model.project.slug}/lifecycle/")

    assert response.status_code == 200
    assert [rule["name"] for rule in response.context["policy"].rules] == ["failed-runs", "cold-snapshots"]
    assert [scope for _, scope in response.context["holds"]] == ["artifact model"]
    assert response.context["overview"].totals.stored_bytes > 0
