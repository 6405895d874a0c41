"""Retention policies (governance/lifecycle/services/policies.py): a project's rules saved version after version by
its maintainers, checked, audited, never edited; the built-in default until one is saved."""

import json

import pytest
from django.db import IntegrityError, transaction

from artifacts.access.roles import Role
from core.errors import InvalidInput, NotAllowed
from core.models import AuditEntry
from governance.lifecycle.models import RetentionPolicy
from governance.lifecycle.selectors import retention_policies_current, retention_policy_current
from governance.lifecycle.services.policies import retention_policy_set
from tests.artifacts.factories import ProjectFactory, grant
from tests.governance.factories import RetentionPolicyFactory

pytestmark = pytest.mark.django_db

RULES = [{"name": "failed-checkpoints", "action": "delete", "kinds": ["checkpoint"], "run_statuses": ["failed"]}]


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def maintainer(project):
    return grant(Role.MAINTAINER, on=project).user


def entries() -> list[dict]:
    return [
        json.loads(entry.changes)
        for entry in AuditEntry.objects.filter(action="retention_policy.changed").order_by("seq")
    ]


def test_a_project_without_saved_rules_has_the_empty_default(project):
    policy = retention_policy_current(project)

    assert (policy.pk, policy.version, policy.rules, policy.auto_apply) == (None, 0, [], False)


def test_a_maintainer_saves_the_first_version_in_its_cleaned_shape_and_it_is_audited(project, maintainer):
    policy, created = retention_policy_set(
        project=project,
        changed_by=maintainer,
        rules=[{**RULES[0], "kinds": ["checkpoint"], "run_statuses": ["failed"]}],
        note="Failed runs' checkpoints are noise.",
    )

    assert created
    assert (policy.version, policy.changed_by, policy.auto_apply) == (1, maintainer, False)
    assert policy.rules == RULES
    assert retention_policy_current(project) == policy
    assert entries() == [
        {
            "version": [0, 1],
            "rules": [[], RULES],
            "auto_apply": [False, False],
            "note": "Failed runs' checkpoints are noise.",
        }
    ]


def test_saving_what_is_in_force_saves_and_records_nothing(project, maintainer):
    first, _ = retention_policy_set(project=project, changed_by=maintainer, rules=RULES)

    again, created = retention_policy_set(project=project, changed_by=maintainer, rules=json.loads(json.dumps(RULES)))

    assert (again, created) == (first, False)
    assert RetentionPolicy.objects.count() == 1
    assert len(entries()) == 1


def test_a_field_left_out_keeps_its_value_and_the_entry_names_only_what_changed(project, maintainer):
    retention_policy_set(project=project, changed_by=maintainer, rules=RULES)

    policy, created = retention_policy_set(project=project, changed_by=maintainer, auto_apply=True)

    assert created
    assert (policy.version, policy.rules, policy.auto_apply) == (2, RULES, True)
    assert entries()[-1] == {"version": [1, 2], "auto_apply": [False, True]}


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR, Role.REVIEWER, Role.AUDITOR])
def test_only_maintainers_change_the_rules(project, role):
    someone = grant(role, on=project).user

    with pytest.raises(NotAllowed, match="needs the maintainer role"):
        retention_policy_set(project=project, changed_by=someone, rules=RULES)

    assert not RetentionPolicy.objects.exists()


def test_bad_rules_are_refused_naming_the_rule_and_field_and_nothing_is_saved(project, maintainer):
    rules = [*RULES, {"name": "cold", "action": "archive", "older_than_days": -3}]

    with pytest.raises(InvalidInput, match=r"^rules\[1\]\.older_than_days: a whole number from 0"):
        retention_policy_set(project=project, changed_by=maintainer, rules=rules)

    assert not RetentionPolicy.objects.exists()
    assert not entries()


def test_a_delete_rule_that_spares_nothing_is_refused_with_why(project, maintainer):
    with pytest.raises(InvalidInput, match="so that one rule cannot delete every version"):
        retention_policy_set(project=project, changed_by=maintainer, rules=[{"name": "all", "action": "delete"}])


def test_a_saved_version_is_never_edited_nor_deleted(project):
    policy = RetentionPolicyFactory(project=project)

    for statement in (
        lambda: RetentionPolicy.objects.filter(pk=policy.pk).update(auto_apply=True),
        lambda: RetentionPolicy.objects.filter(pk=policy.pk).delete(),
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            statement()

    assert RetentionPolicy.objects.get(pk=policy.pk).auto_apply is False


def test_the_policies_in_force_of_many_projects_are_read_at_once(project, django_assert_num_queries):
    RetentionPolicyFactory(project=project)
    newest = RetentionPolicyFactory(project=project, auto_apply=True)
    bare = ProjectFactory()

    with django_assert_num_queries(1):
        policies = retention_policies_current({project.pk, bare.pk})

    assert policies[project.pk] == newest
    assert (policies[bare.pk].version, policies[bare.pk].rules) == (0, [])
