"""The registry's writes that move no stage (governance/registry/services/registry.py): registered models and their
cards,
versions, aliases, and promotion policies, whose versions are never edited."""

import json

import pytest
from django.db import IntegrityError, transaction

from artifacts.access.roles import Role
from core.errors import Conflict, InvalidInput, NotAllowed
from core.models import AuditEntry
from governance.registry.models import ModelAlias, PromotionPolicy
from governance.registry.selectors import DEFAULT_POLICIES, policy_current
from governance.registry.services.registry import (
    model_alias_delete,
    model_alias_set,
    model_version_register,
    promotion_policy_set,
    registered_model_create,
    registered_model_update,
)
from tests.artifacts.factories import ProjectFactory, PublisherFactory, UserFactory, grant
from tests.governance.factories import ModelVersionFactory, RegisteredModelFactory, artifact_version_with_lineage

pytestmark = pytest.mark.django_db


def recorded(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("seq"))


def changes(entry: AuditEntry) -> dict:
    return json.loads(entry.changes)


def refused(statement) -> None:
    """`statement` raises IntegrityError, in a savepoint so the test's transaction goes on."""
    with pytest.raises(IntegrityError), transaction.atomic():
        statement()


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def maintainer(project):
    return grant(Role.MAINTAINER, on=project).user


# Registered models -------------------------------------------------------------------------------------------------


def test_a_model_is_registered_with_its_owners_and_audited(project):
    creator, owner = grant(Role.CONTRIBUTOR, on=project).user, UserFactory(username="ops-owner")

    model = registered_model_create(
        project=project, name="churn-classifier", created_by=creator, model_card="# Churn", owners=[owner]
    )

    assert list(model.owners.all()) == [owner]
    (entry,) = recorded("registered_model.created")
    assert entry.actor_user_id == creator.pk
    assert changes(entry) == {"name": "churn-classifier", "owners": ["ops-owner"], "model_card_chars": 7}


def test_a_second_model_of_the_same_name_in_a_project_is_refused(project):
    registered_model_create(project=project, name="churn", created_by=PublisherFactory())

    with pytest.raises(Conflict) as refusal:
        registered_model_create(project=project, name="churn", created_by=PublisherFactory())

    assert refusal.value.field == "name"
    registered_model_create(project=ProjectFactory(), name="churn", created_by=PublisherFactory())  # another project


@pytest.mark.parametrize("name", ["", "Has Spaces", "-leading-dash", "x" * 200])
def test_a_model_name_must_have_the_shape_of_a_name(project, name):
    with pytest.raises(InvalidInput) as refusal:
        registered_model_create(project=project, name=name, created_by=PublisherFactory())

    assert refusal.value.field == "name"


def test_a_model_card_change_is_audited_by_its_length_not_its_text(project):
    model = RegisteredModelFactory(project=project, model_card="short")
    editor = grant(Role.CONTRIBUTOR, on=project).user

    registered_model_update(registered_model=model, changed_by=editor, model_card="A much longer card text.")

    model.refresh_from_db()
    assert model.model_card == "A much longer card text."
    (entry,) = recorded("registered_model.updated")
    assert changes(entry) == {"model_card_chars": [5, 24]}
    assert "longer card" not in entry.changes


def test_an_update_to_the_stored_values_records_nothing(project):
    model = RegisteredModelFactory(project=project, description="Churn")

    registered_model_update(registered_model=model, changed_by=None, description="Churn", model_card=model.model_card)

    assert recorded("registered_model.updated") == []


# Versions ----------------------------------------------------------------------------------------------------------


def test_versions_are_numbered_in_registration_order(project):
    model = RegisteredModelFactory(project=project)

    first = ModelVersionFactory(registered_model=model)
    second = ModelVersionFactory(registered_model=model)

    assert (first.number, second.number) == (1, 2)
    assert (first.stage, second.stage) == ("none", "none")
    assert [changes(e)["number"] for e in recorded("model_version.registered")] == [1, 2]


def test_registering_the_same_artifact_version_again_answers_the_existing_version(project):
    model = RegisteredModelFactory(project=project)
    artifact_version = artifact_version_with_lineage(project)
    first, created = model_version_register(
        registered_model=model, artifact_version=artifact_version, created_by=PublisherFactory()
    )

    again, created_again = model_version_register(
        registered_model=model, artifact_version=artifact_version, created_by=PublisherFactory()
    )

    assert (created, created_again) == (True, False)
    assert again == first
    assert model.versions.count() == 1
    assert len(recorded("model_version.registered")) == 1


def test_an_artifact_version_of_another_project_cannot_be_registered(project):
    model = RegisteredModelFactory(project=project)

    with pytest.raises(InvalidInput) as refusal:
        model_version_register(
            registered_model=model,
            artifact_version=artifact_version_with_lineage(ProjectFactory()),
            created_by=PublisherFactory(),
        )

    assert refusal.value.field == "artifact_version"
    assert not model.versions.exists()


# Aliases -----------------------------------------------------------------------------------------------------------


def test_an_alias_is_created_moved_and_removed_with_each_change_audited(project):
    model = RegisteredModelFactory(project=project)
    first, second = ModelVersionFactory(registered_model=model), ModelVersionFactory(registered_model=model)
    user = grant(Role.CONTRIBUTOR, on=project).user

    alias, created = model_alias_set(registered_model=model, name="champion", model_version=first, set_by=user)
    assert created is True
    moved, created = model_alias_set(registered_model=model, name="champion", model_version=second, set_by=user)
    assert (moved.pk, created) == (alias.pk, False)
    assert ModelAlias.objects.get(pk=alias.pk).model_version == second
    model_alias_delete(alias=moved, deleted_by=user)

    assert not ModelAlias.objects.exists()
    assert [changes(e)["version"] for e in recorded("model_alias.set")] == [[None, 1], [1, 2]]
    assert [changes(e) for e in recorded("model_alias.deleted")] == [{"alias": "champion", "version": [2, None]}]
    assert [e.object_id for e in recorded("model_alias.deleted")] == [str(alias.pk)]


def test_pointing_an_alias_where_it_points_records_nothing(project):
    model = RegisteredModelFactory(project=project)
    version = ModelVersionFactory(registered_model=model)
    model_alias_set(registered_model=model, name="champion", model_version=version, set_by=PublisherFactory())

    _, created = model_alias_set(
        registered_model=model, name="champion", model_version=version, set_by=PublisherFactory()
    )

    assert created is False
    assert len(recorded("model_alias.set")) == 1


def test_an_alias_points_only_at_a_version_of_its_own_model(project):
    model, other = RegisteredModelFactory(project=project), RegisteredModelFactory(project=project)
    foreign = ModelVersionFactory(registered_model=other)

    with pytest.raises(InvalidInput):
        model_alias_set(registered_model=model, name="champion", model_version=foreign, set_by=PublisherFactory())

    assert not ModelAlias.objects.exists()


def test_removing_an_alias_twice_is_a_conflict(project):
    model = RegisteredModelFactory(project=project)
    version = ModelVersionFactory(registered_model=model)
    alias, _ = model_alias_set(
        registered_model=model, name="champion", model_version=version, set_by=PublisherFactory()
    )
    model_alias_delete(alias=alias, deleted_by=None)

    with pytest.raises(Conflict):
        model_alias_delete(alias=alias, deleted_by=None)


@pytest.mark.parametrize("name", ["Champion!", "", "a" * 65])
def test_an_alias_name_must_have_the_shape_of_a_name(project, name):
    model = RegisteredModelFactory(project=project)
    version = ModelVersionFactory(registered_model=model)

    with pytest.raises(InvalidInput):
        model_alias_set(registered_model=model, name=name, model_version=version, set_by=PublisherFactory())


@pytest.mark.parametrize(("name", "meaning"), [("production", "stage"), ("staging", "stage"), ("3", "version number")])
def test_an_alias_cannot_be_spelled_as_a_reference_reads_a_stage_or_a_number(project, name, meaning):
    """`model@production` and `model@3` name a stage and a version (GET /resolve/): an alias spelled so could never
    be named."""
    model = RegisteredModelFactory(project=project)
    version = ModelVersionFactory(registered_model=model)

    with pytest.raises(InvalidInput, match=f"'{name}' reads as a {meaning} in a reference"):
        model_alias_set(registered_model=model, name=name, model_version=version, set_by=PublisherFactory())

    assert not ModelAlias.objects.exists()


# Policies ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["staging", "production", "archived"])
def test_a_project_without_a_saved_policy_uses_the_built_in_default_version_0(project, stage):
    policy = policy_current(project, stage)

    assert policy.pk is None
    assert policy.version == 0
    for field, value in DEFAULT_POLICIES[stage].items():
        assert getattr(policy, field) == value
    assert (policy.metric_thresholds, policy.min_hours_in_production, policy.request_ttl_hours) == ([], None, 168)


def test_the_production_default_asks_two_reviewers_who_did_not_make_the_bytes(project):
    policy = policy_current(project, "production")

    assert (policy.approvals_required, policy.creator_may_approve) == (2, False)
    assert (policy.require_verified_blob, policy.require_complete_lineage, policy.require_model_card) == (
        True,
        True,
        True,
    )


def test_each_change_saves_a_new_policy_version_and_keeps_the_old_one(project, maintainer):
    first, saved = promotion_policy_set(
        project=project, stage="production", changed_by=maintainer, approvals_required=3, note="Regulated model."
    )
    assert (first.version, saved, first.approvals_required) == (1, True, 3)
    assert first.require_model_card is True  # unnamed values are carried over from the default

    second, saved = promotion_policy_set(
        project=project, stage="production", changed_by=maintainer, min_hours_in_production=48
    )

    assert (second.version, saved) == (2, True)
    assert (second.approvals_required, second.min_hours_in_production) == (3, 48)
    assert PromotionPolicy.objects.get(pk=first.pk).min_hours_in_production is None
    assert policy_current(project, "production") == second
    assert policy_current(project, "staging").version == 0  # stages are versioned apart
    assert (second.changed_by, first.note) == (maintainer, "Regulated model.")


def test_saving_the_policy_in_force_again_saves_and_records_nothing(project, maintainer):
    policy, _ = promotion_policy_set(project=project, stage="staging", changed_by=maintainer, approvals_required=2)

    same, saved = promotion_policy_set(project=project, stage="staging", changed_by=maintainer, approvals_required=2)

    assert (same, saved) == (policy, False)
    assert PromotionPolicy.objects.count() == 1
    assert len(recorded("promotion_policy.changed")) == 1


def test_a_policy_change_is_audited_with_what_changed(project, maintainer):
    promotion_policy_set(project=project, stage="production", changed_by=maintainer, approvals_required=3)
    thresholds = [{"metric": "accuracy", "operator": ">=", "value": 0.92}]

    promotion_policy_set(project=project, stage="production", changed_by=maintainer, metric_thresholds=thresholds)

    first, second = recorded("promotion_policy.changed")
    assert changes(first)["version"] == [0, 1]
    assert changes(first)["approvals_required"] == [2, 3]
    assert changes(second) == {"stage": "production", "version": [1, 2], "metric_thresholds": [[], thresholds]}
    assert second.actor_user_id == maintainer.pk
    assert second.project_id == project.pk


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.CONTRIBUTOR, Role.VIEWER, Role.AUDITOR])
def test_only_maintainers_change_policies(project, role):
    with pytest.raises(NotAllowed):
        promotion_policy_set(
            project=project, stage="production", changed_by=grant(role, on=project).user, approvals_required=1
        )

    assert not PromotionPolicy.objects.exists()


def test_a_maintainer_of_another_project_cannot_change_policies(project):
    with pytest.raises(NotAllowed):
        promotion_policy_set(
            project=project,
            stage="production",
            changed_by=grant(Role.MAINTAINER, on=ProjectFactory()).user,
            approvals_required=1,
        )


BAD_METRIC_NAME = "Threshold 1: the metric is a name of 1-200 characters, without NUL."


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({"metric": "accuracy"}, "Metric thresholds are a list like"),
        (["accuracy >= 0.9"], 'Threshold 1 must have exactly "metric", "operator" and "value".'),
        ([{"metric": "accuracy", "operator": ">="}], 'Threshold 1 must have exactly "metric", "operator" and "value".'),
        (
            [{"metric": "accuracy", "operator": ">=", "value": 0.9, "unit": "%"}],
            'Threshold 1 must have exactly "metric", "operator" and "value".',
        ),
        (
            [{"metric": " ", "operator": ">=", "value": 0.9}],
            "Threshold 1: the metric is a name of 1-200 characters, without NUL.",
        ),
        (
            [{"metric": 7, "operator": ">=", "value": 0.9}],
            "Threshold 1: the metric is a name of 1-200 characters, without NUL.",
        ),
        (
            [{"metric": "accuracy", "operator": "=>", "value": 0.9}],
            "Threshold 1: the operator is one of >=, >, <=, <, ==, not '=>'.",
        ),
        ([{"metric": "accuracy", "operator": ">=", "value": "0.9"}], "Threshold 1: the value must be a finite number."),
        ([{"metric": "accuracy", "operator": ">=", "value": True}], "Threshold 1: the value must be a finite number."),
        (
            [{"metric": "accuracy", "operator": ">=", "value": float("nan")}],
            "Threshold 1: the value must be a finite number.",
        ),
        (
            [
                {"metric": "accuracy", "operator": ">=", "value": 0.9},
                {"metric": "accuracy", "operator": ">=", "value": 0.8},
            ],
            "Threshold 2 repeats 'accuracy >='.",
        ),
        ([{"metric": f"m{n}", "operator": ">=", "value": 0} for n in range(51)], "At most 50 metric thresholds."),
    ],
)
def test_invalid_metric_thresholds_are_refused_with_the_reason(project, maintainer, thresholds, message):
    with pytest.raises(InvalidInput) as refusal:
        promotion_policy_set(project=project, stage="production", changed_by=maintainer, metric_thresholds=thresholds)

    assert refusal.value.field == "metric_thresholds"
    assert refusal.value.message.startswith(message)
    assert not PromotionPolicy.objects.exists()


def test_a_metric_may_have_a_floor_and_a_ceiling(project, maintainer):
    thresholds = [
        {"metric": "latency_ms", "operator": ">", "value": 0},
        {"metric": "latency_ms", "operator": "<", "value": 50},
    ]

    policy, _ = promotion_policy_set(
        project=project, stage="production", changed_by=maintainer, metric_thresholds=thresholds
    )

    assert policy.metric_thresholds == thresholds


@pytest.mark.parametrize(
    ("stage", "values", "field", "message"),
    [
        ("production", {"approvals_required": 0}, "approvals_required", "between 1 and 20 approvals"),
        ("production", {"approvals_required": 21}, "approvals_required", "between 1 and 20 approvals"),
        ("production", {"request_ttl_hours": 0}, "request_ttl_hours", "1 to 2,160 hours"),
        ("production", {"request_ttl_hours": 24 * 90 + 1}, "request_ttl_hours", "1 to 2,160 hours"),
        ("staging", {"min_hours_in_production": 24}, "min_hours_in_production", "Only the production policy"),
        ("production", {"min_hours_in_production": 0}, "min_hours_in_production", "1 to 8,760 hours"),
        ("production", {"previous_production_to": "none"}, "previous_production_to", "'archived' or 'staging'"),
        ("production", {"auto_approve": True}, "auto_approve", "Unknown policy fields: auto_approve."),
        ("none", {"approvals_required": 1}, "stage", "Policies are set for staging, production, archived"),
    ],
)
def test_invalid_policy_values_are_refused_with_the_reason(project, maintainer, stage, values, field, message):
    with pytest.raises(InvalidInput) as refusal:
        promotion_policy_set(project=project, stage=stage, changed_by=maintainer, **values)

    assert refusal.value.field == field
    assert message in refusal.value.message
    assert not PromotionPolicy.objects.exists()


def test_policy_versions_cannot_be_edited_or_deleted(project, maintainer):
    policy, _ = promotion_policy_set(project=project, stage="production", changed_by=maintainer, approvals_required=3)

    refused(lambda: PromotionPolicy.objects.filter(pk=policy.pk).update(approvals_required=1))
    refused(lambda: PromotionPolicy.objects.filter(pk=policy.pk).update(note="rewritten"))
    policy.creator_may_approve = True
    refused(lambda: policy.save(update_fields=["creator_may_approve"]))
    refused(lambda: PromotionPolicy.objects.filter(pk=policy.pk).delete())

    stored = PromotionPolicy.objects.get(pk=policy.pk)
    assert (stored.approvals_required, stored.creator_may_approve, stored.note) == (3, False, "")


@pytest.mark.parametrize("role", [Role.VIEWER, Role.REVIEWER, Role.AUDITOR])
def test_registry_records_are_contributors_work(project, role):
    """The services refuse, whatever calls them (the API and the admin check first, as a courtesy)."""
    model = RegisteredModelFactory(project=project)
    version = ModelVersionFactory(registered_model=model)
    outsider = grant(role, on=project).user

    with pytest.raises(NotAllowed, match="Registering a model needs the contributor or maintainer role"):
        registered_model_create(project=project, name="other", created_by=outsider)
    with pytest.raises(NotAllowed, match="needs the contributor or maintainer role"):
        registered_model_update(registered_model=model, changed_by=outsider, description="Mine now.")
    with pytest.raises(NotAllowed, match="on artifact"):
        model_version_register(
            registered_model=model, artifact_version=artifact_version_with_lineage(project), created_by=outsider
        )
    with pytest.raises(NotAllowed, match="Moving an alias"):
        model_alias_set(registered_model=model, name="champion", model_version=version, set_by=outsider)
