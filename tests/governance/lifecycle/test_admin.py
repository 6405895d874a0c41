"""Lifecycle in the admin (governance/lifecycle/admin/): retention rules saved version after version by maintainers
and legal holds placed and released by auditors and maintainers, through the lifecycle services as the logged-in
user; both read-only once saved, nothing deleted, each staff member seeing what their roles let them see."""

import json

import pytest
from django.urls import reverse

from artifacts.access.roles import Role
from core.models import AuditEntry
from governance.lifecycle.models import LegalHold, RetentionPolicy
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetVersionFactory,
    ProjectFactory,
    grant,
)
from tests.governance.factories import LegalHoldFactory, RetentionPolicyFactory
from tests.pages import listed, messages_of, queries_for

pytestmark = pytest.mark.django_db

POLICIES = reverse("admin:lifecycle_retentionpolicy_changelist")
ADD_POLICY = reverse("admin:lifecycle_retentionpolicy_add")
HOLDS = reverse("admin:lifecycle_legalhold_changelist")
ADD_HOLD = reverse("admin:lifecycle_legalhold_add")
PERMISSIONS = (
    "view_retentionpolicy",
    "add_retentionpolicy",
    "view_legalhold",
    "add_legalhold",
    "change_legalhold",
    "view_project",
    "view_artifact",
)
RULES = [{"name": "cold", "action": "archive", "older_than_days": 30}]


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def maintainer(project, staff):
    return staff(grant(Role.MAINTAINER, on=project).user, *PERMISSIONS)


@pytest.fixture
def auditor(project, staff):
    return staff(grant(Role.AUDITOR, on=project).user, *PERMISSIONS)


def url_of(obj) -> str:
    return reverse(f"admin:lifecycle_{obj._meta.model_name}_change", args=[obj.pk])


def policy_form(project, rules=RULES, **changes) -> dict:
    return {"project": project.pk, "rules": json.dumps(rules), "note": "", **changes}


# Retention policies ---------------------------------------------------------------------------------------------------


def test_a_maintainer_saves_the_next_rules_version_and_it_is_audited(client_as, maintainer, project):
    client = client_as(maintainer)

    first = client.post(ADD_POLICY, policy_form(project))
    second = client.post(ADD_POLICY, policy_form(project, auto_apply="on"))

    assert (first.status_code, second.status_code) == (302, 302)
    versions = list(RetentionPolicy.objects.filter(project=project).order_by("version"))
    assert [(p.version, p.rules, p.auto_apply) for p in versions] == [(1, RULES, False), (2, RULES, True)]
    assert AuditEntry.objects.filter(action="retention_policy.changed").count() == 2
    assert listed(client.get(POLICIES)) == [versions[1], versions[0]]


def test_bad_rules_are_an_error_on_the_rules_field(client_as, maintainer, project):
    response = client_as(maintainer).post(ADD_POLICY, policy_form(project, rules=[{"name": "x", "action": "shred"}]))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["rules"][0].startswith("rules[0].action:")
    assert not RetentionPolicy.objects.exists()


def test_the_next_version_form_starts_from_the_rules_in_force(client_as, maintainer, project):
    RetentionPolicyFactory(project=project, rules=RULES, auto_apply=True)

    form = client_as(maintainer).get(ADD_POLICY, {"project": project.pk}).context["adminform"].form

    assert (form.initial["rules"], form.initial["auto_apply"]) == (RULES, True)


def test_saving_the_rules_in_force_again_saves_nothing(client_as, maintainer, project):
    RetentionPolicyFactory(project=project, rules=RULES)

    response = client_as(maintainer).post(ADD_POLICY, policy_form(project), follow=True)

    assert "nothing changed" in " ".join(messages_of(response))
    assert RetentionPolicy.objects.count() == 1


def test_only_projects_one_maintains_are_offered_for_rules(client_as, auditor, project):
    client = client_as(auditor)

    form = client.get(ADD_POLICY).context["adminform"].form
    refused = client.post(ADD_POLICY, policy_form(project))

    assert list(form.fields["project"].queryset) == []
    assert "Select a valid choice" in refused.content.decode()
    assert not RetentionPolicy.objects.exists()


def test_a_saved_rules_version_is_never_edited(client_as, maintainer, project):
    policy = RetentionPolicyFactory(project=project)
    client = client_as(maintainer)

    page = client.get(url_of(policy))
    refused = client.post(url_of(policy), policy_form(project, auto_apply="on"))

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert refused.status_code == 403
    assert RetentionPolicy.objects.get(pk=policy.pk).auto_apply is False


# Legal holds ----------------------------------------------------------------------------------------------------------


def test_an_auditor_places_a_hold_on_an_artifact_through_the_service(client_as, auditor, project):
    artifact = ArtifactFactory(project=project)

    response = client_as(auditor).post(ADD_HOLD, {"project": project.pk, "artifact": artifact.pk, "reason": "Case 7."})

    assert response.status_code == 302
    hold = LegalHold.objects.get()
    assert (hold.artifact, hold.placed_by, hold.reason) == (artifact, auditor, "Case 7.")
    assert AuditEntry.objects.filter(action="legal_hold.placed").count() == 1


def test_placing_a_hold_on_another_projects_artifact_is_refused_in_the_services_words(client_as, auditor, project):
    elsewhere = ArtifactFactory()
    grant(Role.AUDITOR, on=elsewhere.project, user=auditor)

    response = client_as(auditor).post(
        ADD_HOLD, {"project": project.pk, "artifact": elsewhere.pk, "reason": "Case 7."}, follow=True
    )

    assert f"is not in project '{project.slug}'" in " ".join(messages_of(response))
    assert not LegalHold.objects.exists()


def test_holds_are_released_by_the_action_with_a_reason(client_as, maintainer, project):
    holds = [LegalHoldFactory(project=project), LegalHoldFactory(project=project)]
    client = client_as(maintainer)
    pks = [hold.pk for hold in holds]

    asked = client.post(HOLDS, {"action": "release", "_selected_action": pks, "index": 0})
    done = client.post(
        HOLDS, {"action": "release", "_selected_action": pks, "confirm": "yes", "text": "Case closed."}, follow=True
    )

    assert asked.templates[0].name == "admin/registry/action_with_reason.html"
    assert sorted(messages_of(done)) == sorted(f"Released {hold}." for hold in holds)
    assert set(LegalHold.objects.values_list("release_reason", "released_by")) == {("Case closed.", maintainer.pk)}


def test_releasing_a_released_hold_is_reported_in_the_services_words(client_as, maintainer, project):
    hold = LegalHoldFactory(project=project)
    client = client_as(maintainer)
    form = {"action": "release", "_selected_action": [hold.pk], "confirm": "yes", "text": "Case closed."}
    client.post(HOLDS, form)

    again = client.post(HOLDS, {**form, "text": "Again."}, follow=True)

    assert "was released already" in " ".join(messages_of(again))
    assert LegalHold.objects.get().release_reason == "Case closed."


def test_a_hold_is_read_only_and_never_deleted_here(client_as, auditor, project):
    hold = LegalHoldFactory(project=project)
    client = client_as(auditor)

    page = client.get(url_of(hold)).content.decode()
    refused = client.post(url_of(hold), {"project": project.pk, "reason": "Rewritten."})

    assert 'name="_save"' not in page
    assert refused.status_code == 403
    assert client.post(reverse("admin:lifecycle_legalhold_delete", args=[hold.pk])).status_code == 403
    assert LegalHold.objects.get().reason == hold.reason


def test_staff_see_only_the_holds_of_projects_they_audit_or_maintain(client_as, auditor, project, staff):
    mine = LegalHoldFactory(project=project)
    LegalHoldFactory()
    viewer = staff(grant(Role.VIEWER, on=project).user, *PERMISSIONS)

    assert listed(client_as(auditor).get(HOLDS)) == [mine]
    assert listed(client_as(viewer).get(HOLDS)) == []


def test_the_holds_list_costs_the_same_queries_for_1_row_as_for_10(
    client_as, auditor, project, django_assert_max_num_queries
):
    client = client_as(auditor)
    LegalHoldFactory(project=project, artifact=ArtifactFactory(project=project))
    one = queries_for(client, HOLDS)
    for _ in range(9):
        LegalHoldFactory(project=project, artifact=ArtifactFactory(project=project))

    with django_assert_max_num_queries(one):
        assert len(listed(client.get(HOLDS))) == 10


def test_each_hold_links_to_what_it_holds(client_as, auditor, project):
    version = ArtifactVersionFactory(artifact__project=project)
    dataset_version = DatasetVersionFactory(dataset__project=project)
    for scope, target in [
        ("artifact", version.artifact),
        ("artifact_version", version),
        ("dataset", dataset_version.dataset),
        ("dataset_version", dataset_version),
    ]:
        LegalHoldFactory(project=project, **{scope: target})
    LegalHoldFactory(project=project)

    page = client_as(auditor).get(HOLDS).content.decode()

    for target in (version.artifact, version, dataset_version.dataset, dataset_version, project):
        change = reverse(f"admin:{target._meta.app_label}_{target._meta.model_name}_change", args=[target.pk])
        assert f'href="{change}"' in page
