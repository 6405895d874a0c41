"""Retention plans in the admin: read-only plans and items, and an action applying plans through the service."""

import pytest
from django.urls import reverse

from artifacts.access.roles import Role
from artifacts.models import VersionTombstone
from governance.lifecycle.models import RetentionPlan
from governance.lifecycle.services.plans import retention_plan_create
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory, grant
from tests.governance.lifecycle.retention import rules_in_force
from tests.governance.registry.promotions import maintainer_of
from tests.pages import messages_of

pytestmark = pytest.mark.django_db

PLANS = reverse("admin:lifecycle_retentionplan_changelist")
ITEMS = reverse("admin:lifecycle_retentionplanitem_changelist")
PERMISSIONS = ("view_retentionplan", "change_retentionplan", "view_retentionplanitem")


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def plan(project) -> RetentionPlan:
    artifact = ArtifactFactory(project=project, name="fraud-model")
    for _ in range(2):
        ArtifactVersionFactory(artifact=artifact)
    rules_in_force(project, {"name": "sweep"})
    return retention_plan_create(project=project, created_by=maintainer_of(project))


def apply_chosen(client, *plans: RetentionPlan):
    return client.post(PLANS, {"action": "apply", "_selected_action": [p.pk for p in plans], "index": 0}, follow=True)


def test_a_plan_shows_its_totals_and_links_to_its_items(client_as, staff, project, plan):
    client = client_as(staff(maintainer_of(project), *PERMISSIONS))
    listing = client.get(PLANS).content.decode()
    assert f"#{plan.pk}" in listing
    page = client.get(reverse("admin:lifecycle_retentionplan_change", args=[plan.pk])).content.decode()
    assert f"{ITEMS}?plan__id__exact={plan.pk}" in page
    items = client.get(ITEMS, {"plan__id__exact": plan.pk})
    assert items.status_code == 200
    assert items.content.decode().count("fraud-model@v") == 2


def test_a_maintainer_applies_a_plan_from_the_list(client_as, staff, project, plan, django_capture_on_commit_callbacks):
    maintainer = staff(maintainer_of(project), *PERMISSIONS)
    with django_capture_on_commit_callbacks(execute=True):
        answer = apply_chosen(client_as(maintainer), plan)
    assert f"Applying {plan}." in messages_of(answer)
    plan.refresh_from_db()
    assert (plan.state, plan.applied_by) == ("applied", maintainer)
    assert VersionTombstone.objects.filter(plan_id=plan.pk).count() == 2


def test_an_auditor_is_refused_in_the_services_words(client_as, staff, project, plan):
    auditor = staff(grant(Role.AUDITOR, on=project).user, *PERMISSIONS)
    answer = apply_chosen(client_as(auditor), plan)
    assert any("needs the maintainer role" in message for message in messages_of(answer))
    assert RetentionPlan.objects.get(pk=plan.pk).state == "planned"


def test_a_superseded_plan_is_refused_naming_the_newer(client_as, staff, project, plan):
    newer = retention_plan_create(project=project, created_by=maintainer_of(project))
    answer = apply_chosen(client_as(staff(maintainer_of(project), *PERMISSIONS)), plan)
    assert any(f"superseded by plan #{newer.pk}" in message for message in messages_of(answer))


def test_plans_cannot_be_added_changed_or_deleted(admin_client, plan):
    assert admin_client.get(reverse("admin:lifecycle_retentionplan_add")).status_code == 403
    assert admin_client.post(reverse("admin:lifecycle_retentionplan_delete", args=[plan.pk])).status_code == 403
