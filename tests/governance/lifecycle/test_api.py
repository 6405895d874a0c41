"""Retention policies and legal holds over the API (governance/lifecycle/api/): what each endpoint answers, in the
shape the schema documents, with refusals a person can act on, on lists whose cost does not grow with the rows.
Who may call what is the permission matrix's (tests/artifacts/access/test_permission_matrix.py)."""

import pytest

from artifacts.access.roles import Role
from governance.lifecycle.models import LegalHold, RetentionPolicy
from governance.lifecycle.services.holds import legal_hold_release
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory, grant
from tests.governance.factories import LegalHoldFactory, RetentionPolicyFactory
from tests.pages import queries_for
from tests.schema_contract import assert_conforms

pytestmark = pytest.mark.django_db

POLICIES = "/api/v1/retention-policies/"
HOLDS = "/api/v1/legal-holds/"
RULES = [{"name": "old-checkpoints", "action": "delete", "kinds": ["checkpoint"], "keep_last_versions": 3}]


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def maintainer(project, api_as):
    return api_as(grant(Role.MAINTAINER, on=project).user)


@pytest.fixture
def auditor(project, api_as):
    return api_as(grant(Role.AUDITOR, on=project).user)


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


# Retention policies ---------------------------------------------------------------------------------------------------


def test_a_maintainer_saves_rules_and_saving_them_again_answers_the_version_in_force(maintainer, project):
    body = {"project": project.slug, "rules": RULES, "note": "Keep three."}

    created = maintainer.post(POLICIES, body, format="json")
    again = maintainer.post(POLICIES, body, format="json")

    assert_conforms(created, "POST", POLICIES)
    assert_conforms(again, "POST", POLICIES)
    assert (created.status_code, again.status_code) == (201, 200)
    assert created.json() | {"id": None, "changed_at": None} == {
        "id": None,
        "project": project.slug,
        "version": 1,
        "is_default": False,
        "rules": RULES,
        "auto_apply": False,
        "note": "Keep three.",
        "changed_by": maintainer.user.username,
        "changed_at": None,
    }
    assert again.json()["id"] == created.json()["id"]


def test_bad_rules_answer_400_naming_the_rule_and_field(maintainer, project):
    rules = [*RULES, {"name": "cold", "action": "archive", "stages": ["production"]}]

    response = maintainer.post(POLICIES, {"project": project.slug, "rules": rules}, format="json")

    assert response.status_code == 400
    assert response.json()["field"] == "rules"
    assert response.json()["detail"].startswith("rules[1].stages: 'production' versions are always kept")
    assert not RetentionPolicy.objects.exists()


@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ({"name": "x"}, "rules: a list of rules"),
        ([{"name": "x", "action": "archive", "kinds": None}], "rules[0].kinds: leave a criterion out"),
        ([{"name": "x", "action": "archive", "older_than_days": True}], "rules[0].older_than_days: a whole number"),
    ],
)
def test_rules_of_the_wrong_json_shape_answer_400(maintainer, project, rules, says):
    response = maintainer.post(POLICIES, {"project": project.slug, "rules": rules}, format="json")

    assert response.status_code == 400
    assert says in str(response.json())


def test_the_rules_in_force_are_the_default_until_saved_then_the_newest(auditor, project):
    default = auditor.get(f"{POLICIES}current/", {"project": project.slug})
    RetentionPolicyFactory(project=project)
    newest = RetentionPolicyFactory(project=project, rules=RULES)
    saved = auditor.get(f"{POLICIES}current/", {"project": project.slug})

    assert_conforms(default, "GET", f"{POLICIES}current/")
    assert_conforms(saved, "GET", f"{POLICIES}current/")
    assert (default.json()["version"], default.json()["is_default"], default.json()["rules"]) == (0, True, [])
    assert (saved.json()["id"], saved.json()["version"], saved.json()["rules"]) == (newest.pk, 2, RULES)


def test_current_rules_need_a_project(auditor):
    response = auditor.get(f"{POLICIES}current/")

    assert response.status_code == 400
    assert response.json()["detail"] == "Name a project: `?project=<slug>`."


def test_the_history_lists_every_version_newest_first_filtered_by_project(auditor, project):
    first = RetentionPolicyFactory(project=project)
    second = RetentionPolicyFactory(project=project, auto_apply=True)
    RetentionPolicyFactory()

    response = auditor.get(POLICIES, {"project": project.slug})

    assert_conforms(response, "GET", POLICIES)
    assert [policy["id"] for policy in results(response)] == [second.pk, first.pk]


def test_a_policy_version_is_never_edited_over_the_api(maintainer, project):
    policy = RetentionPolicyFactory(project=project)

    response = maintainer.patch(f"{POLICIES}{policy.pk}/", {"auto_apply": True}, format="json")

    assert response.status_code == 405
    assert "POST the next version" in response.json()["detail"]


# Legal holds ----------------------------------------------------------------------------------------------------------


def test_an_auditor_places_a_hold_on_a_version_and_releases_it(auditor, project):
    version = ArtifactVersionFactory(artifact__project=project)

    placed = auditor.post(
        HOLDS, {"project": project.slug, "artifact_version": version.pk, "reason": "Case 7."}, format="json"
    )
    released = auditor.post(f"{HOLDS}{placed.json()['id']}/release/", {"reason": "Case closed."}, format="json")

    assert_conforms(placed, "POST", HOLDS)
    assert_conforms(released, "POST", f"{HOLDS}{{id}}/release/")
    assert placed.status_code == 201
    assert placed.json() | {"id": None, "placed_at": None} == {
        "id": None,
        "project": project.slug,
        "scope": "artifact_version",
        "artifact": None,
        "artifact_version": version.pk,
        "dataset": None,
        "dataset_version": None,
        "reason": "Case 7.",
        "active": True,
        "placed_by": auditor.user.username,
        "placed_at": None,
        "released_by": None,
        "released_at": None,
        "release_reason": "",
    }
    assert released.status_code == 200
    assert (released.json()["active"], released.json()["release_reason"]) == (False, "Case closed.")


def test_releasing_a_released_hold_answers_409_saying_when_and_by_whom(auditor, project):
    hold = LegalHoldFactory(project=project, placed_by=auditor.user)
    legal_hold_release(hold=hold, released_by=auditor.user, reason="Case closed.")

    response = auditor.post(f"{HOLDS}{hold.pk}/release/", {"reason": "Again."}, format="json")

    assert response.status_code == 409
    assert f"was released already, by {auditor.user.username}" in response.json()["detail"]


def test_holding_something_of_another_project_answers_400_naming_the_field(auditor, project):
    elsewhere = ArtifactFactory()
    grant(Role.AUDITOR, on=elsewhere.project, user=auditor.user)

    response = auditor.post(HOLDS, {"project": project.slug, "artifact": elsewhere.pk, "reason": "x"}, format="json")

    assert response.status_code == 400
    assert response.json()["field"] == "artifact"
    assert f"is not in project '{project.slug}'" in response.json()["detail"]
    assert not LegalHold.objects.exists()


def test_a_hold_needs_a_reason(auditor, project):
    response = auditor.post(HOLDS, {"project": project.slug}, format="json")

    assert response.status_code == 400
    assert "reason" in response.json()
    assert not LegalHold.objects.exists()


def test_holds_are_listed_active_or_released_and_seen_by_nobody_else(auditor, project, api_as):
    active = LegalHoldFactory(project=project)
    released = LegalHoldFactory(project=project)
    legal_hold_release(hold=released, released_by=released.placed_by, reason="Case closed.")
    LegalHoldFactory()
    viewer = api_as(grant(Role.VIEWER, on=project).user)

    in_force = auditor.get(HOLDS, {"project": project.slug, "active": "true"})
    past = auditor.get(HOLDS, {"project": project.slug, "active": "false"})

    assert_conforms(in_force, "GET", HOLDS)
    assert [hold["id"] for hold in results(in_force)] == [active.pk]
    assert [hold["id"] for hold in results(past)] == [released.pk]
    assert results(viewer.get(HOLDS)) == []
    assert viewer.get(f"{HOLDS}{active.pk}/").status_code == 404


def test_a_hold_is_never_edited_nor_deleted_over_the_api(auditor, project):
    hold = LegalHoldFactory(project=project)

    for response in (
        auditor.patch(f"{HOLDS}{hold.pk}/", {"reason": "x"}, format="json"),
        auditor.delete(f"{HOLDS}{hold.pk}/"),
    ):
        assert response.status_code == 405
        assert "release it" in response.json()["detail"]


# Lists' cost ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [POLICIES, HOLDS])
def test_the_lists_cost_the_same_queries_for_1_row_as_for_10(auditor, project, url, django_assert_max_num_queries):
    def add_row() -> None:
        """A policy version (other rules) by a new maintainer; a hold on a new artifact by a new auditor, released
        by a new maintainer."""
        days = RetentionPolicy.objects.count() + 1
        RetentionPolicyFactory(project=project, rules=[{"name": "cold", "action": "archive", "older_than_days": days}])
        hold = LegalHoldFactory(project=project, artifact=ArtifactFactory(project=project))
        legal_hold_release(hold=hold, released_by=grant(Role.MAINTAINER, on=project).user, reason="Done.")

    add_row()
    one = queries_for(auditor, url)
    for _ in range(9):
        add_row()

    with django_assert_max_num_queries(one):
        assert len(results(auditor.get(url))) == 10
