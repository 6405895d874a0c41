"""Stages and aliases copied from another registry (`provenant import mlflow`): recorded as imported, with where
from, in the stage history, the audit log and the event, never as a promotion nobody approved; only maintainers
import stages, and only until Provenant governs the model's stages itself."""

import pytest
from django.test import Client
from django.urls import reverse

from artifacts.access.roles import Role
from core.errors import Conflict, InvalidInput, NotAllowed
from core.events import EventType
from governance.registry.models import PromotionRequest, StageTransition
from governance.registry.services.promotions import model_version_stage_import
from governance.registry.services.registry import model_alias_set
from tests.artifacts.factories import grant
from tests.governance.registry.promotions import (
    bodies,
    changes,
    fresh,
    last_event_id,
    maintainer_of,
    promoted,
    recorded,
    refused,
    request_for,
    version_of,
)

pytestmark = pytest.mark.django_db

SOURCE = "mlflow http://mlflow.internal:5000 fraud-scorer version 3 (stage Production)"


def imported(version, stage: str = "production", by=None, source: str = SOURCE):
    return model_version_stage_import(
        model_version=version,
        stage=stage,
        imported_from=source,
        imported_by=by or maintainer_of(version.registered_model.project),
    )


# The service ---------------------------------------------------------------------------------------------------------


def test_an_imported_stage_is_history_marked_imported_with_its_source_and_no_request(version):
    maintainer = maintainer_of(version.registered_model.project)

    _, recorded_now = imported(version, by=maintainer)

    assert recorded_now is True
    assert fresh(version).stage == "production"
    move = StageTransition.objects.get(model_version=version)
    assert (move.from_stage, move.to_stage, move.cause) == ("none", "production", "imported")
    assert (move.imported_from, move.promotion_request, move.changed_by) == (SOURCE, None, maintainer)
    assert not PromotionRequest.objects.exists()


def test_the_audit_log_and_the_event_say_imported_and_not_approved(version):
    since = last_event_id()

    imported(version)

    entry = recorded("model_version.stage_changed")[-1]
    assert changes(entry) == {
        "stage": ["none", "production"],
        "cause": "imported",
        "break_glass": False,
        "promotion_request": None,
        "imported_from": SOURCE,
        "approved": False,
    }
    (event,) = bodies(EventType.MODEL_VERSION_STAGE_CHANGED, after=since)
    assert (event["data"]["cause"], event["data"]["to_stage"]) == ("imported", "production")


def test_importing_the_stage_a_version_is_in_records_nothing(version):
    imported(version)

    _, recorded_now = imported(version)

    assert recorded_now is False
    assert StageTransition.objects.filter(model_version=version).count() == 1


def test_only_a_maintainer_imports_a_stage(version):
    contributor = grant(Role.CONTRIBUTOR, on=version.registered_model.project).user

    with pytest.raises(NotAllowed, match="needs the maintainer role on project"):
        imported(version, by=contributor)

    assert fresh(version).stage == "none"
    assert not StageTransition.objects.exists()


def test_once_a_promotion_moved_the_model_an_import_would_bypass_reviewers_and_is_refused(model):
    governed, other = version_of(model), version_of(model)
    promoted(governed)

    with pytest.raises(Conflict, match=r"governed in Provenant since .* Open a promotion request instead"):
        imported(other, stage="staging")

    assert fresh(other).stage == "none"


def test_imports_go_on_while_every_move_so_far_was_imported(model):
    first, second = version_of(model), version_of(model)
    imported(first, stage="staging")
    imported(second, stage="archived")

    imported(first, stage="production")

    assert (fresh(first).stage, fresh(second).stage) == ("production", "archived")


def test_a_second_version_is_not_imported_into_production(model):
    first, second = version_of(model), version_of(model)
    imported(first)

    with pytest.raises(Conflict, match=r"v1 of .* is in production already"):
        imported(second)

    assert fresh(second).stage == "none"


@pytest.mark.parametrize(
    ("source", "says"),
    [("", "Say where it was imported from"), ("  ", "Say where"), ("line\nbreak", "one line"), ("x" * 501, "500")],
)
def test_an_import_says_where_from_in_one_line(version, source, says):
    with pytest.raises(InvalidInput, match=says):
        imported(version, source=source)

    assert not StageTransition.objects.exists()


@pytest.mark.parametrize("stage", ["none", "retired"])
def test_an_imported_stage_is_one_a_version_can_be_in(version, stage):
    with pytest.raises(InvalidInput, match="staging, production or archived"):
        imported(version, stage=stage)


def test_an_imported_stage_invalidates_requests_it_makes_moot(version):
    request = request_for(version, "production")

    imported(version)

    assert fresh(request).state == "invalidated"


def test_a_promotion_later_replaces_an_imported_production_version_as_usual(model):
    first, second = version_of(model), version_of(model)
    imported(first)

    promoted(second)

    assert (fresh(first).stage, fresh(second).stage) == ("archived", "production")
    assert list(StageTransition.objects.order_by("id").values_list("cause", flat=True)) == [
        "imported",
        "replaced",
        "promotion",
    ]


def test_the_database_keeps_imports_and_approvals_apart(model):
    version = version_of(model)
    imported(version)
    move = StageTransition.objects.get()
    request = promoted(version_of(model))

    # An import that hides its source, an approved promotion dressed as an import, a promotion claiming a source.
    base = {"registered_model": model, "model_version": version, "from_stage": "production", "to_stage": "archived"}
    refused(lambda: StageTransition.objects.create(**base, cause="imported", changed_at=move.changed_at))
    refused(
        lambda: StageTransition.objects.create(
            **base, cause="imported", imported_from=SOURCE, promotion_request=request, changed_at=move.changed_at
        )
    )
    refused(
        lambda: StageTransition.objects.create(
            **base, cause="promotion", imported_from=SOURCE, changed_at=move.changed_at
        )
    )


# Aliases -------------------------------------------------------------------------------------------------------------


def test_an_imported_alias_says_so_on_the_alias_and_in_the_audit_log_until_a_person_moves_it(model):
    first, second = version_of(model), version_of(model)
    maintainer = maintainer_of(model.project)

    alias, _ = model_alias_set(
        registered_model=model, name="champion", model_version=first, set_by=maintainer, imported_from=SOURCE
    )

    assert alias.imported_from == SOURCE
    assert changes(recorded("model_alias.set")[-1]) == {
        "alias": "champion",
        "version": [None, 1],
        "imported_from": SOURCE,
    }

    moved, _ = model_alias_set(registered_model=model, name="champion", model_version=second, set_by=maintainer)

    assert fresh(moved).imported_from == ""
    assert "imported_from" not in changes(recorded("model_alias.set")[-1])


# The API and the portal --------------------------------------------------------------------------------------------


def test_a_maintainer_imports_a_stage_over_the_api_and_the_history_says_imported(api_as, version):
    project = version.registered_model.project
    maintainer = api_as(maintainer_of(project))
    url = f"/api/v1/model-versions/{version.pk}/imported-stage/"

    first = maintainer.post(url, {"stage": "production", "imported_from": SOURCE}, format="json")
    again = maintainer.post(url, {"stage": "production", "imported_from": SOURCE}, format="json")

    assert first.status_code == 201, first.content
    assert first.json()["stage"] == "production"
    assert again.status_code == 200
    history = maintainer.get(f"/api/v1/models/{version.registered_model_id}/stage-history/").json()["results"]
    assert [(move["cause"], move["imported_from"], move["promotion_request"]) for move in history] == [
        ("imported", SOURCE, None)
    ]


def test_the_api_refuses_an_import_by_a_contributor_or_without_a_source(api_as, version):
    project = version.registered_model.project
    url = f"/api/v1/model-versions/{version.pk}/imported-stage/"
    contributor = api_as(grant(Role.CONTRIBUTOR, on=project).user)
    maintainer = api_as(maintainer_of(project))

    forbidden = contributor.post(url, {"stage": "production", "imported_from": SOURCE}, format="json")
    sourceless = maintainer.post(url, {"stage": "production"}, format="json")
    unknown = maintainer.post(url, {"stage": "none", "imported_from": SOURCE}, format="json")

    assert forbidden.status_code == 403
    assert "maintainer role" in forbidden.json()["detail"]
    assert (sourceless.status_code, sourceless.json()) == (400, {"imported_from": ["This field is required."]})
    assert (unknown.status_code, unknown.json()) == (400, {"stage": ['"none" is not a valid choice.']})
    assert fresh(version).stage == "none"


def test_an_alias_set_over_the_api_may_say_it_was_imported(api_as, version):
    model = version.registered_model
    client = api_as(maintainer_of(model.project))

    response = client.post(
        f"/api/v1/models/{model.pk}/aliases/",
        {"name": "champion", "version": version.number, "imported_from": SOURCE},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["aliases"] == [
        {
            "name": "champion",
            "version": version.number,
            "set_by": client.user.username,
            "set_at": response.json()["aliases"][0]["set_at"],
            "imported_from": SOURCE,
        }
    ]


def test_the_model_page_marks_imported_moves_and_aliases(version):
    model = version.registered_model
    maintainer = maintainer_of(model.project)
    imported(version, by=maintainer)
    model_alias_set(
        registered_model=model, name="champion", model_version=version, set_by=maintainer, imported_from=SOURCE
    )
    browser = Client()
    browser.force_login(maintainer)

    page = browser.get(reverse("portal:model", args=[model.pk])).content.decode()

    assert "Imported, not approved here" in page
    assert f"from {SOURCE}" in page
    assert "champion (imported)" in page
