"""The gate to production (governance/services/promotions.py and governance/gates.py): every gate failing with its
reason and passing, at request time and again when a promotion would apply; separation of duties; how an approved
request moves versions; rejection, withdrawal, expiry and invalidation; the break-glass rollback; the events and
audit entries each step leaves; and the triggers that keep decisions and stage history as they were written."""

import json
from datetime import timedelta

import jsonschema
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from artifacts.services import artifact_update
from artifacts.services.integrity import blob_verify
from governance.errors import Conflict, InvalidInput, NotAllowed
from governance.events import EventType, payload_schema
from governance.gates import gates_evaluate
from governance.models import (
    AuditEntry,
    Event,
    ModelVersion,
    PromotionDecision,
    PromotionPolicy,
    PromotionRequest,
    StageTransition,
)
from governance.roles import Role
from governance.services import role_revoke
from governance.services.promotions import (
    approval_standing,
    model_rollback,
    promotion_apply,
    promotion_approve,
    promotion_reject,
    promotion_request_create,
    promotion_requests_expire,
    promotion_withdraw,
)
from governance.services.registry import promotion_policy_set, registered_model_update
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetFactory,
    DatasetVersionFactory,
    RunFactory,
    UserFactory,
    grant,
)
from tests.governance.factories import (
    ModelVersionFactory,
    PromotionRequestFactory,
    RegisteredModelFactory,
    artifact_version_with_lineage,
)

pytestmark = pytest.mark.django_db

JUSTIFICATION = "Beats the current model on last month's holdout."


# Arranging ---------------------------------------------------------------------------------------------------------


def reviewer_of(obj, user=None):
    """A user (new unless given) holding the reviewer role on a project or an artifact."""
    return grant(Role.REVIEWER, on=obj, user=user).user


def maintainer_of(project, user=None):
    return grant(Role.MAINTAINER, on=project, user=user).user


def policy(project, stage: str, **values) -> PromotionPolicy:
    """Save the next version of a stage's policy, as a maintainer of the project."""
    return promotion_policy_set(project=project, stage=stage, changed_by=maintainer_of(project), **values)[0]


def version_of(model, **lineage) -> ModelVersion:
    """The model's next version, on an artifact version passing every default gate unless `lineage` says otherwise
    (see artifact_version_with_lineage)."""
    return ModelVersionFactory(
        registered_model=model, artifact_version=artifact_version_with_lineage(model.project, **lineage)
    )


def version_published_by(model, user) -> ModelVersion:
    """A version whose artifact version `user` published; `user` contributes to and reviews the project."""
    grant(Role.CONTRIBUTOR, on=model.project, user=user)
    reviewer_of(model.project, user)
    return ModelVersionFactory(
        registered_model=model, artifact_version=artifact_version_with_lineage(model.project, created_by=user)
    )


def request_for(version, target_stage: str = "production", requested_by=None) -> PromotionRequest:
    kwargs = {"requested_by": requested_by} if requested_by is not None else {}
    return PromotionRequestFactory(model_version=version, target_stage=target_stage, **kwargs)


def approve_by_new_reviewers(request: PromotionRequest, count: int | None = None) -> PromotionRequest:
    """`count` approvals (as many as the request needs by default), each by a new reviewer of the project."""
    project = request.registered_model.project
    for _ in range(count if count is not None else request.approvals_required):
        request = promotion_approve(request=request, reviewer=reviewer_of(project))
    return request


def promoted(version, target_stage: str = "production") -> PromotionRequest:
    """Move `version` into `target_stage` the normal way: a request and its approvals."""
    request = approve_by_new_reviewers(request_for(version, target_stage))
    assert request.state == PromotionRequest.State.APPROVED, request.blocked_by
    return request


def served_for(version: ModelVersion, hours: float) -> None:
    """Time travel: `version` entered its stage `hours` ago (the stage columns may be updated, unlike identity)."""
    ModelVersion.objects.filter(pk=version.pk).update(stage_changed_at=timezone.now() - timedelta(hours=hours))


def expire(request: PromotionRequest) -> None:
    """Time travel: the request's time ran out a minute ago."""
    PromotionRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(minutes=1))


def corrupt(folder, version: ModelVersion) -> None:
    """Alter the stored bytes of the version and let a verification find it."""
    blob = version.artifact_version.blob
    path = folder / blob.storage_key
    path.write_bytes(b"bit rot" + path.read_bytes()[7:])
    blob_verify(blob=blob)


def gate(results: list[dict], name: str) -> dict:
    found = [result for result in results if result["gate"] == name]
    assert len(found) == 1, results
    return found[0]


def fresh(obj):
    obj.refresh_from_db()
    return obj


def production_of(model) -> list[int]:
    return list(model.versions.filter(stage="production").values_list("number", flat=True))


def refused(statement) -> None:
    """`statement` raises IntegrityError, in a savepoint so the test's transaction goes on."""
    with pytest.raises(IntegrityError), transaction.atomic():
        statement()


def recorded(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("seq"))


def changes(entry: AuditEntry) -> dict:
    return json.loads(entry.changes)


def last_event_id() -> int:
    """Where the events a test looks at begin (events are never deleted, so the arrangement's stay)."""
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def bodies(event_type: str, *, after: int = 0) -> list[dict]:
    """The bodies of the events of `event_type` written after event `after`, oldest first, each checked against
    its published schema."""
    events = Event.objects.filter(type=event_type, id__gt=after).order_by("id")
    found = [json.loads(event.body) for event in events]
    for body in found:
        jsonschema.validate(body, payload_schema(event_type))
    return found


@pytest.fixture
def model():
    """A registered model with a card, in a project with the default policies."""
    return RegisteredModelFactory()


@pytest.fixture
def version(model) -> ModelVersion:
    return version_of(model)


# Gates: integrity --------------------------------------------------------------------------------------------------


def test_verified_bytes_pass_the_integrity_gate(version):
    request = request_for(version)

    result = gate(request.gates_at_request, "integrity")
    assert result["passed"] is True
    assert version.artifact_version.blob.prefixed_digest in result["detail"]
    assert "was verified at" in result["detail"]


def test_bytes_not_verified_yet_fail_the_integrity_gate(model):
    version = version_of(model, verified=False)

    request = request_for(version)

    result = gate(request.gates_at_request, "integrity")
    assert result["passed"] is False
    assert "is not verified yet" in result["detail"]


def test_corrupt_bytes_fail_the_integrity_gate(model, isolated_blob_folder):
    version = version_of(model)
    corrupt(isolated_blob_folder, version)

    request = request_for(version)

    result = gate(request.gates_at_request, "integrity")
    assert result["passed"] is False
    assert "is corrupt" in result["detail"]
    assert "Upload the same bytes again" in result["detail"]


def test_integrity_gate_is_off_when_the_policy_does_not_require_verified_bytes(model):
    policy(model.project, "staging", require_verified_blob=False)

    request = request_for(version_of(model, verified=False), "staging")

    assert "integrity" not in [result["gate"] for result in request.gates_at_request]


# Gates: lineage ----------------------------------------------------------------------------------------------------


def published_with(model, run=None) -> ModelVersion:
    """A version of verified bytes produced by `run` (or by no run at all)."""
    artifact_version = ArtifactVersionFactory(artifact=ArtifactFactory(project=model.project), run=run)
    blob_verify(blob=artifact_version.blob)
    return ModelVersionFactory(registered_model=model, artifact_version=artifact_version)


def test_a_version_with_its_run_commit_and_input_dataset_passes_the_lineage_gate(version):
    request = request_for(version)

    result = gate(request.gates_at_request, "lineage")
    assert result["passed"] is True
    run = version.artifact_version.run
    assert result["detail"] == f"Run '{run.external_id}' at commit {run.code_commit[:12]} with its input datasets."


def test_a_version_without_a_producing_run_fails_the_lineage_gate(model):
    request = request_for(published_with(model, run=None))

    result = gate(request.gates_at_request, "lineage")
    assert result == {
        "gate": "lineage",
        "passed": False,
        "detail": "The artifact version names no producing run: publish it with its run.",
    }


def test_a_run_without_a_code_commit_fails_the_lineage_gate(model):
    inputs = [DatasetVersionFactory(dataset=DatasetFactory(project=model.project))]
    run = RunFactory(project=model.project, code_commit="", input_dataset_versions=inputs)

    request = request_for(published_with(model, run=run))

    result = gate(request.gates_at_request, "lineage")
    assert result["passed"] is False
    assert result["detail"].startswith(f"Run '{run.external_id}' records no")
    assert "code commit" in result["detail"]
    assert "input dataset" not in result["detail"]


def test_a_run_without_an_input_dataset_fails_the_lineage_gate(model):
    run = RunFactory(project=model.project)

    request = request_for(published_with(model, run=run))

    result = gate(request.gates_at_request, "lineage")
    assert result["passed"] is False
    assert result["detail"].startswith(f"Run '{run.external_id}' records no")
    assert "input dataset version" in result["detail"]
    assert "code commit" not in result["detail"]


def test_a_run_without_commit_or_inputs_names_both_missing_pieces(model):
    run = RunFactory(project=model.project, code_commit="")

    request = request_for(published_with(model, run=run))

    assert gate(request.gates_at_request, "lineage")["detail"] == (
        f"Run '{run.external_id}' records no code commit and no input dataset version."
    )


def test_staging_default_policy_does_not_ask_for_lineage(model):
    request = request_for(published_with(model, run=None), "staging")

    assert [result["gate"] for result in request.gates_at_request] == ["integrity"]


# Gates: metric thresholds ------------------------------------------------------------------------------------------


def test_metrics_meeting_every_threshold_pass(model):
    policy(
        model.project,
        "production",
        metric_thresholds=[
            {"metric": "accuracy", "operator": ">=", "value": 0.92},
            {"metric": "latency_ms", "operator": "<", "value": 50},
        ],
    )
    version = version_of(model, metrics={"accuracy": 0.93, "latency_ms": 41})

    request = request_for(version)

    assert gate(request.gates_at_request, "metrics") == {
        "gate": "metrics",
        "passed": True,
        "detail": "accuracy = 0.93 (>= 0.92); latency_ms = 41 (< 50).",
    }


def test_a_metric_below_its_threshold_fails_with_the_value_and_the_bound(model):
    policy(model.project, "production", metric_thresholds=[{"metric": "accuracy", "operator": ">=", "value": 0.92}])

    request = request_for(version_of(model, metrics={"accuracy": 0.91}))

    result = gate(request.gates_at_request, "metrics")
    assert result["passed"] is False
    assert result["detail"] == "accuracy is 0.91, needs >= 0.92."


def test_a_metric_above_its_ceiling_fails(model):
    policy(model.project, "production", metric_thresholds=[{"metric": "latency_ms", "operator": "<=", "value": 50}])

    request = request_for(version_of(model, metrics={"latency_ms": 75}))

    assert gate(request.gates_at_request, "metrics")["detail"] == "latency_ms is 75, needs <= 50."


def test_a_metric_missing_from_the_run_fails(model):
    policy(model.project, "production", metric_thresholds=[{"metric": "auc", "operator": ">", "value": 0.8}])

    version = version_of(model, metrics={"accuracy": 0.99})
    request = request_for(version)

    result = gate(request.gates_at_request, "metrics")
    assert result["passed"] is False
    run = version.artifact_version.run
    assert result["detail"] == f"auc is missing from run '{run.external_id}' (needs > 0.8)."


def test_several_thresholds_report_every_failure_at_once(model):
    policy(
        model.project,
        "production",
        metric_thresholds=[
            {"metric": "accuracy", "operator": ">=", "value": 0.92},
            {"metric": "recall", "operator": ">=", "value": 0.8},
            {"metric": "latency_ms", "operator": "<", "value": 50},
        ],
    )
    version = version_of(model, metrics={"accuracy": 0.95, "recall": 0.7, "latency_ms": 60})

    result = gate(request_for(version).gates_at_request, "metrics")

    assert result["passed"] is False
    assert result["detail"] == "recall is 0.7, needs >= 0.8; latency_ms is 60, needs < 50."


def test_a_version_with_no_run_fails_the_metrics_gate(model):
    policy(model.project, "staging", metric_thresholds=[{"metric": "accuracy", "operator": ">=", "value": 0.9}])

    request = request_for(published_with(model, run=None), "staging")

    assert gate(request.gates_at_request, "metrics") == {
        "gate": "metrics",
        "passed": False,
        "detail": "No producing run, so no metrics to hold to the thresholds.",
    }


@pytest.mark.parametrize(
    ("operator", "value", "passes"),
    [
        (">=", 0.9, True),
        (">=", 0.91, False),
        (">", 0.89, True),
        (">", 0.9, False),
        ("<=", 0.9, True),
        ("<=", 0.89, False),
        ("<", 0.91, True),
        ("<", 0.9, False),
        ("==", 0.9, True),
        ("==", 0.91, False),
    ],
)
def test_each_operator_compares_the_metric_with_the_bound(model, operator, value, passes):
    version = version_of(model, metrics={"accuracy": 0.9})
    thresholds = [{"metric": "accuracy", "operator": operator, "value": value}]
    staging = policy(model.project, "staging", metric_thresholds=thresholds)

    results = gates_evaluate(staging, fresh(version), current_production=None, now=timezone.now())

    assert gate(results, "metrics")["passed"] is passes


# Gates: model card -------------------------------------------------------------------------------------------------


def test_production_default_policy_asks_for_a_model_card(model):
    version = version_of(model)
    registered_model_update(registered_model=model, changed_by=None, model_card="   \n")

    request = request_for(version)

    assert gate(request.gates_at_request, "model_card") == {
        "gate": "model_card",
        "passed": False,
        "detail": f"Model '{model.name}' has no model card: write one.",
    }


def test_a_written_model_card_passes(version):
    assert gate(request_for(version).gates_at_request, "model_card") == {
        "gate": "model_card",
        "passed": True,
        "detail": "The model card is written.",
    }


# Gates: time in production -----------------------------------------------------------------------------------------


def test_production_age_passes_when_nothing_is_in_production(model):
    policy(model.project, "production", min_hours_in_production=24)

    request = request_for(version_of(model))

    assert gate(request.gates_at_request, "production_age") == {
        "gate": "production_age",
        "passed": True,
        "detail": "No version is in production now.",
    }


def test_a_production_version_younger_than_the_policy_minimum_blocks_its_replacement(model):
    first = version_of(model)
    promoted(first)
    policy(model.project, "production", min_hours_in_production=24)
    served_for(first, 3)

    result = gate(request_for(version_of(model)).gates_at_request, "production_age")

    assert result["passed"] is False
    assert result["detail"].startswith("v1 entered production 3.0 h ago; the policy keeps a production version at")
    assert "least 24 h before replacing it (no flapping): try again after" in result["detail"]


def test_a_production_version_older_than_the_minimum_may_be_replaced(model):
    first = version_of(model)
    promoted(first)
    policy(model.project, "production", min_hours_in_production=24)
    served_for(first, 25)

    result = gate(request_for(version_of(model)).gates_at_request, "production_age")

    assert result["passed"] is True
    assert result["detail"] == "v1 has served 25.0 h (at least 24 h)."


def test_production_age_is_judged_again_when_the_promotion_would_apply(model):
    first = version_of(model)
    promoted(first)
    policy(model.project, "production", min_hours_in_production=24)
    served_for(first, 1)
    second = version_of(model)

    request = approve_by_new_reviewers(request_for(second))

    assert request.state == PromotionRequest.State.OPEN
    assert request.blocked_by.startswith("Approved, but gates fail: production_age: v1 entered production 1.0 h ago")
    assert production_of(model) == [1]

    served_for(first, 24)
    applied = promotion_apply(request=request, applied_by=request.requested_by)

    assert applied.state == PromotionRequest.State.APPROVED
    assert gate(applied.gates_at_decision, "production_age")["passed"] is True
    assert production_of(model) == [2]


def test_production_age_does_not_apply_to_staging(model):
    first = version_of(model)
    promoted(first)
    policy(model.project, "production", min_hours_in_production=24)

    request = request_for(version_of(model), "staging")

    assert "production_age" not in [result["gate"] for result in request.gates_at_request]


# Gates: judged at request time and again at promotion time ---------------------------------------------------------


def test_bytes_pending_at_request_and_verified_later_let_the_approved_promotion_apply(model):
    version = version_of(model, verified=False)
    request = approve_by_new_reviewers(request_for(version))
    assert request.state == PromotionRequest.State.OPEN
    assert request.blocked_by.startswith("Approved, but gates fail: integrity:")

    blob_verify(blob=version.artifact_version.blob)

    request = fresh(request)
    assert request.state == PromotionRequest.State.APPROVED
    assert request.closed_by is None  # the verification, a system act, applied it
    assert gate(request.gates_at_decision, "integrity")["passed"] is True
    assert gate(request.gates_at_request, "integrity")["passed"] is False
    assert fresh(version).stage == "production"
    transition = StageTransition.objects.get(model_version=version)
    assert (transition.from_stage, transition.to_stage, transition.changed_by) == ("none", "production", None)


def test_bytes_found_corrupt_after_the_request_invalidate_it(version, isolated_blob_folder):
    request = request_for(version)
    promotion_approve(request=request, reviewer=reviewer_of(version.registered_model.project))

    corrupt(isolated_blob_folder, version)

    request = fresh(request)
    assert request.state == PromotionRequest.State.INVALIDATED
    assert request.closed_at is not None
    assert "were found corrupt" in request.close_reason
    assert version.artifact_version.blob.prefixed_digest in request.close_reason
    assert fresh(version).stage == "none"


def test_a_model_card_removed_after_the_request_stops_the_promotion_until_written_again(model, version):
    request = request_for(version)
    registered_model_update(registered_model=model, changed_by=None, model_card="")

    request = approve_by_new_reviewers(request)

    assert request.state == PromotionRequest.State.OPEN
    assert gate(request.gates_at_request, "model_card")["passed"] is True
    assert gate(fresh(request).gates_at_decision, "model_card")["passed"] is False
    assert fresh(version).stage == "none"

    registered_model_update(registered_model=model, changed_by=None, model_card="# Back\n\nIntended use: tests.")
    applied = promotion_apply(request=request, applied_by=request.requested_by)

    assert applied.state == PromotionRequest.State.APPROVED
    assert applied.blocked_by == ""
    assert fresh(version).stage == "production"


def test_re_checking_a_request_that_cannot_apply_says_what_stands_in_the_way(version):
    request = request_for(version)
    promotion_approve(request=request, reviewer=reviewer_of(version.registered_model.project))

    with pytest.raises(Conflict) as refusal:
        promotion_apply(request=request, applied_by=request.requested_by)

    assert refusal.value.code == "not_ready"
    assert refusal.value.message == "Not applied: 1 of 2 required approvals count so far."
    assert fresh(request).state == PromotionRequest.State.OPEN


def test_only_the_requester_reviewers_and_maintainers_may_re_check_a_request(version):
    request = request_for(version)
    project = version.registered_model.project

    with pytest.raises(NotAllowed):
        promotion_apply(request=request, applied_by=grant(Role.CONTRIBUTOR, on=project).user)
    for allowed in (request.requested_by, reviewer_of(project), maintainer_of(project)):
        with pytest.raises(Conflict) as not_ready:
            promotion_apply(request=request, applied_by=allowed)
        assert not_ready.value.code == "not_ready"


# Separation of duties ----------------------------------------------------------------------------------------------


def test_requester_cannot_approve_own_promotion(version):
    request = request_for(version)
    reviewer_of(version.registered_model.project, request.requested_by)  # even holding the reviewer role

    with pytest.raises(NotAllowed) as refusal:
        promotion_approve(request=request, reviewer=request.requested_by)

    assert refusal.value.code == "separation_of_duties"
    assert "You requested this promotion" in refusal.value.message
    assert not PromotionDecision.objects.exists()


def test_requester_cannot_reject_own_promotion_and_is_told_to_withdraw_it(version):
    request = request_for(version)
    reviewer_of(version.registered_model.project, request.requested_by)

    with pytest.raises(NotAllowed) as refusal:
        promotion_reject(request=request, reviewer=request.requested_by, comment="Changed my mind.")

    assert refusal.value.code == "separation_of_duties"
    assert "Withdraw it instead" in refusal.value.message
    assert fresh(request).state == PromotionRequest.State.OPEN


def test_a_superuser_cannot_approve_a_promotion_they_requested(version):
    boss = UserFactory(is_superuser=True)
    request = request_for(version, requested_by=boss)

    with pytest.raises(NotAllowed) as refusal:
        promotion_approve(request=request, reviewer=boss)

    assert refusal.value.code == "separation_of_duties"


def test_the_versions_creator_cannot_approve_when_the_policy_forbids_it(model):
    creator = UserFactory()
    version = version_published_by(model, creator)
    request = request_for(version)

    with pytest.raises(NotAllowed) as refusal:
        promotion_approve(request=request, reviewer=creator)

    assert refusal.value.code == "separation_of_duties"
    assert "does not let a version's creator approve" in refusal.value.message
    assert not request.decisions.exists()


def test_a_superuser_who_published_the_version_is_its_creator_too(version):
    publisher = version.artifact_version.created_by
    assert publisher.is_superuser  # the factory publishes as a superuser

    with pytest.raises(NotAllowed) as refusal:
        promotion_approve(request=request_for(version), reviewer=publisher)

    assert refusal.value.code == "separation_of_duties"


def test_the_versions_creator_may_approve_when_the_policy_allows_it(model):
    policy(model.project, "production", creator_may_approve=True)
    creator = UserFactory()
    version = version_published_by(model, creator)
    request = request_for(version)

    request = promotion_approve(request=request, reviewer=creator, comment="I trained it; the numbers hold.")

    assert [approval["counts"] for approval in approval_standing(request)] == [True]
    assert request.blocked_by == "1 of 2 required approvals count so far."
    request = promotion_approve(request=request, reviewer=reviewer_of(model.project))
    assert request.state == PromotionRequest.State.APPROVED


def test_the_creators_approval_stops_counting_when_the_policy_later_forbids_it(model):
    policy(model.project, "production", creator_may_approve=True)
    creator = UserFactory()
    request = request_for(version_published_by(model, creator))
    promotion_approve(request=request, reviewer=creator)

    policy(model.project, "production", creator_may_approve=False)
    request = promotion_approve(request=request, reviewer=reviewer_of(model.project))

    assert request.state == PromotionRequest.State.OPEN
    assert request.blocked_by == "1 of 2 required approvals count so far."
    standing = {approval["reviewer"]: approval for approval in approval_standing(request)}
    assert standing[creator.username]["counts"] is False
    assert standing[creator.username]["reason"] == "the policy does not let the version's creator approve it"


def test_one_person_counts_once_even_holding_the_reviewer_role_on_project_and_artifact(version):
    project = version.registered_model.project
    reviewer = reviewer_of(project)
    reviewer_of(version.artifact_version.artifact, reviewer)
    request = promotion_approve(request=request_for(version), reviewer=reviewer)

    with pytest.raises(Conflict) as refusal:
        promotion_approve(request=request, reviewer=reviewer)

    assert refusal.value.code == "already_decided"
    assert "one person's decision counts once" in refusal.value.message
    assert request.decisions.count() == 1
    assert fresh(request).state == PromotionRequest.State.OPEN
    assert fresh(version).stage == "none"


def test_a_reviewer_who_approved_cannot_then_reject(version):
    reviewer = reviewer_of(version.registered_model.project)
    request = promotion_approve(request=request_for(version), reviewer=reviewer)

    with pytest.raises(Conflict) as refusal:
        promotion_reject(request=request, reviewer=reviewer, comment="On second thought, no.")

    assert refusal.value.code == "already_decided"
    assert fresh(request).state == PromotionRequest.State.OPEN


def test_approvals_of_a_reviewer_who_lost_the_role_no_longer_count_and_the_promotion_waits(model, version):
    departed = UserFactory()
    departed_grant = grant(Role.REVIEWER, on=model.project, user=departed)
    request = promotion_approve(request=request_for(version), reviewer=departed)

    role_revoke(grant=departed_grant, revoked_by=None)
    request = promotion_approve(request=request, reviewer=reviewer_of(model.project))

    assert request.state == PromotionRequest.State.OPEN
    assert request.blocked_by == "1 of 2 required approvals count so far."
    assert fresh(version).stage == "none"
    standing = {approval["reviewer"]: approval for approval in approval_standing(request)}
    assert standing[departed.username] == {
        **standing[departed.username],
        "counts": False,
        "reason": "no longer holds the reviewer role on this artifact or its project",
    }

    request = promotion_approve(request=request, reviewer=reviewer_of(model.project))
    assert request.state == PromotionRequest.State.APPROVED
    assert fresh(version).stage == "production"


def test_a_deactivated_reviewers_approval_no_longer_counts(model, version):
    reviewer = reviewer_of(model.project)
    request = promotion_approve(request=request_for(version), reviewer=reviewer)
    reviewer.is_active = False
    reviewer.save(update_fields=["is_active"])

    request = promotion_approve(request=request, reviewer=reviewer_of(model.project))

    assert request.state == PromotionRequest.State.OPEN
    assert [approval["counts"] for approval in approval_standing(request)] == [False, True]


def test_a_project_reviewers_approval_stops_counting_when_the_artifact_is_restricted(model, version):
    project_reviewer = reviewer_of(model.project)
    request = promotion_approve(request=request_for(version), reviewer=project_reviewer)

    artifact_update(artifact=version.artifact_version.artifact, changed_by=None, restricted=True)

    (approval,) = approval_standing(request)
    assert (approval["reviewer"], approval["counts"]) == (project_reviewer.username, False)
    with pytest.raises(NotAllowed):
        promotion_approve(request=request, reviewer=reviewer_of(model.project))


def test_the_versions_creator_may_reject_it_even_where_they_may_not_approve(model):
    creator = UserFactory()
    request = request_for(version_published_by(model, creator))

    promotion_reject(request=request, reviewer=creator, comment="I found a leak in the training data.")

    assert fresh(request).state == PromotionRequest.State.REJECTED


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR, Role.MAINTAINER, Role.AUDITOR])
def test_a_role_without_review_cannot_approve_or_reject(version, role):
    request = request_for(version)
    member = grant(role, on=version.registered_model.project).user

    with pytest.raises(NotAllowed) as approving:
        promotion_approve(request=request, reviewer=member)
    with pytest.raises(NotAllowed) as rejecting:
        promotion_reject(request=request, reviewer=member, comment="Not convinced.")

    assert approving.value.code == rejecting.value.code == "permission_denied"
    assert "needs the reviewer role" in approving.value.message
    assert not request.decisions.exists()


def test_a_user_with_no_role_cannot_approve(version):
    with pytest.raises(NotAllowed):
        promotion_approve(request=request_for(version), reviewer=UserFactory())


def test_a_reviewer_of_another_artifact_cannot_approve(model, version):
    elsewhere = ArtifactFactory(project=model.project)

    with pytest.raises(NotAllowed):
        promotion_approve(request=request_for(version), reviewer=reviewer_of(elsewhere))


def test_a_reviewer_of_the_artifact_alone_may_approve(version):
    request = promotion_approve(request=request_for(version), reviewer=reviewer_of(version.artifact_version.artifact))

    assert [approval["counts"] for approval in approval_standing(request)] == [True]


def test_a_superuser_who_neither_requested_nor_published_may_approve_and_counts(version):
    request = promotion_approve(request=request_for(version), reviewer=UserFactory(is_superuser=True))

    assert [approval["counts"] for approval in approval_standing(request)] == [True]


def test_requesting_needs_the_contributor_role(version):
    project = version.registered_model.project
    for role in (Role.VIEWER, Role.REVIEWER, Role.AUDITOR):
        with pytest.raises(NotAllowed):
            promotion_request_create(
                model_version=version,
                target_stage="production",
                justification=JUSTIFICATION,
                requested_by=grant(role, on=project).user,
            )
    assert not PromotionRequest.objects.exists()


# Requests ----------------------------------------------------------------------------------------------------------


def test_a_request_records_the_digest_policy_version_and_expiry(model, version):
    policy(model.project, "production", request_ttl_hours=48)

    request = request_for(version)

    assert request.digest == version.artifact_version.blob.digest
    assert (request.policy_version, request.approvals_required) == (1, 2)
    assert request.expires_at == request.requested_at + timedelta(hours=48)
    assert (request.kind, request.state) == ("promotion", "open")


def test_a_request_needs_a_justification(version):
    with pytest.raises(InvalidInput) as refusal:
        promotion_request_create(
            model_version=version,
            target_stage="production",
            justification="  ",
            requested_by=grant(Role.CONTRIBUTOR, on=version.registered_model.project).user,
        )

    assert refusal.value.field == "justification"


def test_a_request_into_an_unknown_stage_is_refused(version):
    with pytest.raises(InvalidInput) as refusal:
        request_for(version, "none")

    assert refusal.value.field == "target_stage"


def test_a_second_open_request_for_the_same_version_and_stage_is_refused(version):
    first = request_for(version)

    with pytest.raises(Conflict) as refusal:
        request_for(version)

    assert f"Request #{first.pk}" in refusal.value.message
    assert PromotionRequest.objects.count() == 1


def test_a_request_into_the_stage_the_version_is_in_is_refused(version):
    promoted(version)

    with pytest.raises(Conflict) as refusal:
        request_for(version)

    assert refusal.value.message.endswith("is in production already.")


# Applying ----------------------------------------------------------------------------------------------------------


def test_last_approval_with_passing_gates_moves_the_version_into_production(model, version):
    request = request_for(version)
    first, second = reviewer_of(model.project), reviewer_of(model.project)

    request = promotion_approve(request=request, reviewer=first)
    assert (request.state, fresh(version).stage) == ("open", "none")
    assert request.blocked_by == "1 of 2 required approvals count so far."

    request = promotion_approve(request=request, reviewer=second, comment="Holdout numbers check out.")

    assert request.blocked_by == ""
    request = fresh(request)
    assert (request.state, request.closed_by, request.close_reason) == ("approved", second, "Moved to production.")
    version = fresh(version)
    assert version.stage == "production"
    assert version.stage_changed_at >= request.closed_at
    transition = StageTransition.objects.get(model_version=version)
    assert (transition.from_stage, transition.to_stage, transition.cause) == ("none", "production", "promotion")
    assert (transition.promotion_request, transition.changed_by, transition.break_glass) == (request, second, False)


def test_the_replaced_production_version_is_archived(model):
    first, second = version_of(model), version_of(model)
    promoted(first)

    request = promoted(second)

    assert (fresh(first).stage, fresh(second).stage) == ("archived", "production")
    assert production_of(model) == [2]
    replaced = StageTransition.objects.get(model_version=first, from_stage="production")
    assert (replaced.to_stage, replaced.cause, replaced.promotion_request) == ("archived", "replaced", request)
    assert replaced.changed_by == fresh(request).closed_by
    entered = StageTransition.objects.get(model_version=second)
    assert (entered.to_stage, entered.cause, entered.promotion_request) == ("production", "promotion", request)
    assert replaced.pk < entered.pk  # production is left before it is entered


def test_the_replaced_production_version_goes_to_staging_when_the_policy_says_so(model):
    first, second = version_of(model), version_of(model)
    promoted(first)
    policy(model.project, "production", previous_production_to="staging")

    promoted(second)

    assert (fresh(first).stage, fresh(second).stage) == ("staging", "production")
    assert StageTransition.objects.get(model_version=first, from_stage="production").to_stage == "staging"


def test_a_model_has_exactly_one_production_version_after_each_promotion(model):
    versions = [version_of(model) for _ in range(3)]

    for version in versions:
        promoted(version)
        assert len(production_of(model)) == 1

    assert production_of(model) == [3]
    assert [fresh(v).stage for v in versions] == ["archived", "archived", "production"]


def test_the_database_refuses_a_second_production_version_written_directly(model):
    first, second = version_of(model), version_of(model)
    promoted(first)

    refused(lambda: ModelVersion.objects.filter(pk=second.pk).update(stage="production"))

    assert production_of(model) == [1]


def test_staging_needs_one_approval_and_its_creator_may_give_it(model):
    creator = UserFactory()
    version = version_published_by(model, creator)

    request = promotion_approve(request=request_for(version, "staging"), reviewer=creator)

    assert request.state == PromotionRequest.State.APPROVED
    assert fresh(version).stage == "staging"


def test_a_version_can_be_archived_from_production_leaving_none_there(model, version):
    promoted(version)

    promoted(version, "archived")

    assert fresh(version).stage == "archived"
    assert production_of(model) == []


# Rejection and withdrawal ------------------------------------------------------------------------------------------


def test_a_rejection_needs_a_comment(version):
    request = request_for(version)

    with pytest.raises(InvalidInput) as refusal:
        promotion_reject(request=request, reviewer=reviewer_of(version.registered_model.project), comment=" ")

    assert refusal.value.field == "comment"
    assert fresh(request).state == PromotionRequest.State.OPEN


def test_one_reviewers_rejection_closes_the_request(version):
    project = version.registered_model.project
    request = promotion_approve(request=request_for(version), reviewer=reviewer_of(project))
    rejecting = reviewer_of(project)

    request = promotion_reject(request=request, reviewer=rejecting, comment="Recall on the new segment is poor.")

    request = fresh(request)
    assert (request.state, request.closed_by) == ("rejected", rejecting)
    assert request.close_reason == f"Rejected by {rejecting.username}."
    decision = request.decisions.get(reviewer=rejecting)
    assert (decision.decision, decision.comment) == ("reject", "Recall on the new segment is poor.")
    assert fresh(version).stage == "none"


def test_the_requester_may_withdraw(version):
    request = request_for(version)

    promotion_withdraw(request=request, withdrawn_by=request.requested_by)

    request = fresh(request)
    assert (request.state, request.closed_by) == ("withdrawn", request.requested_by)
    assert request.close_reason == f"Withdrawn by {request.requested_by.username}."


def test_a_maintainer_may_withdraw_anyones_request(version):
    request = request_for(version)
    maintainer = maintainer_of(version.registered_model.project)

    promotion_withdraw(request=request, withdrawn_by=maintainer)

    assert (fresh(request).state, fresh(request).closed_by) == ("withdrawn", maintainer)


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.CONTRIBUTOR, Role.VIEWER])
def test_others_cannot_withdraw_a_request(version, role):
    request = request_for(version)

    with pytest.raises(NotAllowed):
        promotion_withdraw(request=request, withdrawn_by=grant(role, on=version.registered_model.project).user)

    assert fresh(request).state == PromotionRequest.State.OPEN


@pytest.mark.parametrize(
    ("close", "state", "reason"),
    [
        (lambda r: promotion_withdraw(request=r, withdrawn_by=r.requested_by), "withdrawn", "Withdrawn by"),
        (
            lambda r: promotion_reject(
                request=r, reviewer=reviewer_of(r.registered_model.project), comment="Not ready."
            ),
            "rejected",
            "Rejected by",
        ),
        (approve_by_new_reviewers, "approved", "Moved to production."),
    ],
)
def test_acting_on_a_closed_request_is_a_conflict_naming_why_it_closed(version, close, state, reason):
    request = request_for(version)
    close(request)
    project = version.registered_model.project

    for act in (
        lambda: promotion_approve(request=request, reviewer=reviewer_of(project)),
        lambda: promotion_reject(request=request, reviewer=reviewer_of(project), comment="Late."),
        lambda: promotion_withdraw(request=request, withdrawn_by=request.requested_by),
        lambda: promotion_apply(request=request, applied_by=request.requested_by),
    ):
        with pytest.raises(Conflict) as refusal:
            act()
        assert refusal.value.code == f"request_{state}"
        assert refusal.value.message.startswith(f"Request #{request.pk} is {state}: {reason}")
    assert fresh(request).state == state


# Expiry ------------------------------------------------------------------------------------------------------------


def test_requests_past_their_expiry_are_expired_by_the_periodic_sweep(model):
    due, current = request_for(version_of(model)), request_for(version_of(model))
    expire(due)

    assert promotion_requests_expire() == 1

    due = fresh(due)
    assert due.state == PromotionRequest.State.EXPIRED
    assert due.closed_at == due.expires_at
    assert due.closed_by is None
    assert due.close_reason.startswith("No decision before")
    assert fresh(current).state == PromotionRequest.State.OPEN
    assert promotion_requests_expire() == 0


def test_approving_an_expired_request_is_refused_and_the_expiry_is_kept(version):
    request = request_for(version)
    promotion_approve(request=request, reviewer=reviewer_of(version.registered_model.project))
    expire(request)

    with pytest.raises(Conflict) as refusal:
        promotion_approve(request=request, reviewer=reviewer_of(version.registered_model.project))

    assert refusal.value.status_code == 409
    assert refusal.value.code == "request_expired"
    request = fresh(request)
    assert request.state == PromotionRequest.State.EXPIRED
    assert request.decisions.count() == 1  # the late approval was not recorded
    assert fresh(version).stage == "none"
    assert len(recorded("promotion_request.expired")) == 1


def test_withdrawing_an_expired_request_is_refused_and_the_expiry_is_kept(version):
    request = request_for(version)
    expire(request)

    with pytest.raises(Conflict) as refusal:
        promotion_withdraw(request=request, withdrawn_by=request.requested_by)

    assert refusal.value.code == "request_expired"
    assert fresh(request).state == PromotionRequest.State.EXPIRED


def test_an_expired_request_does_not_block_asking_again(version):
    stale = request_for(version)
    expire(stale)

    again = request_for(version)

    assert fresh(stale).state == PromotionRequest.State.EXPIRED
    assert again.state == PromotionRequest.State.OPEN


# Invalidation ------------------------------------------------------------------------------------------------------


def test_archiving_a_version_invalidates_its_open_requests(model, version):
    to_production = request_for(version)

    promoted(version, "archived")

    to_production = fresh(to_production)
    assert to_production.state == PromotionRequest.State.INVALIDATED
    assert to_production.close_reason == "v1 was archived."
    assert to_production.closed_by is None


def test_a_production_version_archived_by_its_replacement_loses_its_open_requests(model):
    first, second = version_of(model), version_of(model)
    promoted(first)
    to_archive = request_for(first, "archived")

    promoted(second)

    to_archive = fresh(to_archive)
    assert to_archive.state == PromotionRequest.State.INVALIDATED
    assert to_archive.close_reason == "v1 was archived."


def test_a_request_to_staging_is_invalidated_when_its_version_goes_to_production(model):
    first = version_of(model)
    to_staging = request_for(first, "staging")

    promoted(first)

    to_staging = fresh(to_staging)
    assert to_staging.state == PromotionRequest.State.INVALIDATED
    assert to_staging.close_reason == (
        "v1 went to production: moving it back to staging would leave the model without one."
    )


def test_a_production_version_cannot_be_asked_back_to_staging(model):
    first = version_of(model)
    promoted(first)

    with pytest.raises(Conflict, match="would leave the model without a production version"):
        request_for(first, "staging")


def test_acting_on_an_invalidated_request_is_a_conflict(version, isolated_blob_folder):
    request = request_for(version)
    corrupt(isolated_blob_folder, version)

    with pytest.raises(Conflict) as refusal:
        promotion_approve(request=request, reviewer=reviewer_of(version.registered_model.project))

    assert refusal.value.code == "request_invalidated"
    assert "were found corrupt" in refusal.value.message


# Requests are judged under the policy in force when they are decided -----------------------------------------------


def test_more_approvals_required_by_a_newer_policy_hold_back_an_open_request(model, version):
    request = request_for(version)
    assert (request.policy_version, request.approvals_required) == (0, 2)
    policy(model.project, "production", approvals_required=3)

    request = approve_by_new_reviewers(request, 2)

    assert request.state == PromotionRequest.State.OPEN
    assert request.blocked_by == "2 of 3 required approvals count so far."
    assert (fresh(request).policy_version, fresh(request).approvals_required) == (1, 3)
    request = approve_by_new_reviewers(request, 1)
    assert request.state == PromotionRequest.State.APPROVED


def test_fewer_approvals_required_by_a_newer_policy_let_an_open_request_apply(model, version):
    request = request_for(version)
    policy(model.project, "production", approvals_required=1)

    request = approve_by_new_reviewers(request, 1)

    assert request.state == PromotionRequest.State.APPROVED
    assert fresh(version).stage == "production"


def test_a_threshold_added_after_the_request_is_a_gate_at_decision(model):
    version = version_of(model, metrics={"accuracy": 0.85})
    request = request_for(version)
    policy(model.project, "production", metric_thresholds=[{"metric": "accuracy", "operator": ">=", "value": 0.9}])

    request = approve_by_new_reviewers(request)

    assert request.state == PromotionRequest.State.OPEN
    assert request.blocked_by == "Approved, but gates fail: metrics: accuracy is 0.85, needs >= 0.9."
    assert "metrics" not in [result["gate"] for result in request.gates_at_request]


# Break-glass rollback ----------------------------------------------------------------------------------------------


@pytest.fixture
def replaced(model):
    """v1 served in production and was replaced by v2."""
    first, second = version_of(model), version_of(model)
    promoted(first)
    promoted(second)
    return first, second


def test_a_maintainer_rolls_back_to_the_previous_production_version(model, replaced):
    first, second = replaced
    maintainer = maintainer_of(model.project)

    review = model_rollback(registered_model=model, rolled_back_by=maintainer, justification="v2 mislabels churners.")

    assert (fresh(first).stage, fresh(second).stage) == ("production", "archived")
    moves = StageTransition.objects.filter(promotion_request=review).order_by("id")
    assert [(m.model_version, m.from_stage, m.to_stage) for m in moves] == [
        (second, "production", "archived"),
        (first, "archived", "production"),
    ]
    assert all(m.break_glass and m.cause == "rollback" and m.changed_by == maintainer for m in moves)
    assert (review.kind, review.state, review.target_stage) == ("rollback_review", "open", "production")
    assert (review.model_version, review.requested_by) == (first, maintainer)
    assert review.digest == first.artifact_version.blob.digest


def test_a_second_rollback_goes_further_back_instead_of_restoring_the_version_just_rolled_back(model):
    first, second, third = version_of(model), version_of(model), version_of(model)
    for version in (first, second, third):
        promoted(version)
    maintainer = maintainer_of(model.project)
    model_rollback(registered_model=model, rolled_back_by=maintainer, justification="v3 is broken.")

    model_rollback(registered_model=model, rolled_back_by=maintainer, justification="v2 is broken too.")

    assert [fresh(v).stage for v in (first, second, third)] == ["production", "archived", "archived"]


def test_reviewers_confirm_a_rollback_afterwards_without_moving_anything(model, replaced):
    first, _ = replaced
    maintainer = maintainer_of(model.project)
    review = model_rollback(registered_model=model, rolled_back_by=maintainer, justification="v2 is broken.")
    moves = StageTransition.objects.count()

    with pytest.raises(NotAllowed):
        promotion_approve(request=review, reviewer=maintainer)
    review = approve_by_new_reviewers(review)

    review = fresh(review)
    assert (review.state, review.close_reason) == ("approved", "The emergency rollback was confirmed.")
    assert StageTransition.objects.count() == moves
    assert production_of(model) == [first.number]


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.CONTRIBUTOR, Role.VIEWER])
def test_only_maintainers_may_roll_back(model, replaced, role):
    with pytest.raises(NotAllowed):
        model_rollback(
            registered_model=model, rolled_back_by=grant(role, on=model.project).user, justification="Broken."
        )

    assert production_of(model) == [2]
    assert not PromotionRequest.objects.filter(kind="rollback_review").exists()


def test_a_rollback_needs_a_justification(model, replaced):
    with pytest.raises(InvalidInput):
        model_rollback(registered_model=model, rolled_back_by=maintainer_of(model.project), justification="")

    assert production_of(model) == [2]


def test_a_rollback_is_refused_when_no_earlier_version_served_in_production(model, version):
    promoted(version)

    with pytest.raises(Conflict) as refusal:
        model_rollback(registered_model=model, rolled_back_by=maintainer_of(model.project), justification="Broken.")

    assert "has no earlier production version to restore" in refusal.value.message
    assert production_of(model) == [1]


def test_corrupt_bytes_leave_a_request_to_archive_them_open(model, isolated_blob_folder):
    version = version_of(model)
    promoted(version)
    to_archive = request_for(version, "archived")

    corrupt(isolated_blob_folder, version)

    assert fresh(to_archive).state == PromotionRequest.State.OPEN


def test_a_rollback_never_restores_corrupt_bytes(model, replaced, isolated_blob_folder):
    first, _ = replaced
    corrupt(isolated_blob_folder, first)

    with pytest.raises(Conflict) as refusal:
        model_rollback(registered_model=model, rolled_back_by=maintainer_of(model.project), justification="Broken.")

    assert "are corrupt; they cannot be restored to production" in refusal.value.message
    assert production_of(model) == [2]
    assert not StageTransition.objects.filter(break_glass=True).exists()


def test_a_rollback_invalidates_open_requests_to_put_the_restored_version_in_production(model, replaced):
    first, _ = replaced
    asking_back = request_for(first)

    model_rollback(registered_model=model, rolled_back_by=maintainer_of(model.project), justification="Broken.")

    asking_back = fresh(asking_back)
    assert asking_back.state == PromotionRequest.State.INVALIDATED
    assert asking_back.close_reason == "An emergency rollback restored it to production."


# Events ------------------------------------------------------------------------------------------------------------


def test_a_promotion_emits_requested_approved_and_stage_changed_events_that_match_their_schemas(model):
    first, second = version_of(model), version_of(model)
    promoted(first)
    since = last_event_id()

    request = promoted(second)

    requested = bodies(EventType.PROMOTION_REQUESTED, after=since)
    assert [body["data"]["promotion_request"]["id"] for body in requested] == [request.pk]
    assert requested[0]["data"]["promotion_request"]["state"] == "open"
    assert requested[0]["actor"]["username"] == request.requested_by.username
    approved = bodies(EventType.PROMOTION_APPROVED, after=since)
    assert [body["data"]["promotion_request"]["approvals"] for body in approved] == [1, 2]
    assert [body["data"]["promotion_request"]["state"] for body in approved] == ["open", "approved"]
    assert approved[-1]["data"]["model_version"]["stage"] == "production"
    moved = bodies(EventType.MODEL_VERSION_STAGE_CHANGED, after=since)
    assert [
        (body["data"]["model_version"]["version"], body["data"]["from_stage"], body["data"]["to_stage"])
        for body in moved
    ] == [(1, "production", "archived"), (2, "none", "production")]
    assert not any(body["data"]["break_glass"] for body in moved)


def test_a_rejection_emits_its_event(version):
    request = request_for(version)
    promotion_reject(request=request, reviewer=reviewer_of(version.registered_model.project), comment="No.")

    (rejected,) = bodies(EventType.PROMOTION_REJECTED)

    assert rejected["data"]["promotion_request"]["state"] == "rejected"
    assert rejected["data"]["promotion_request"]["approvals"] == 0
    assert "No." not in json.dumps(rejected)


def test_a_rollback_emits_break_glass_stage_changes_and_its_review_request(model, replaced):
    since = last_event_id()

    review = model_rollback(registered_model=model, rolled_back_by=maintainer_of(model.project), justification="x!")

    moved = bodies(EventType.MODEL_VERSION_STAGE_CHANGED, after=since)
    assert [(body["data"]["to_stage"], body["data"]["break_glass"]) for body in moved] == [
        ("archived", True),
        ("production", True),
    ]
    (requested,) = bodies(EventType.PROMOTION_REQUESTED, after=since)
    assert requested["data"]["promotion_request"]["id"] == review.pk
    assert requested["data"]["promotion_request"]["kind"] == "rollback_review"


def test_a_promotion_applied_by_a_verification_emits_events_as_the_system(model):
    version = version_of(model, verified=False)
    approve_by_new_reviewers(request_for(version))

    blob_verify(blob=version.artifact_version.blob)

    (moved,) = bodies(EventType.MODEL_VERSION_STAGE_CHANGED)
    assert moved["actor"]["kind"] == "system"
    assert moved["data"]["to_stage"] == "production"


# Audit -------------------------------------------------------------------------------------------------------------


def test_each_step_of_a_promotion_is_audited(model):
    first, second = version_of(model), version_of(model)
    promoted(first)

    request = promoted(second)

    (opened,) = [e for e in recorded("promotion_request.opened") if e.object_id == str(request.pk)]
    assert changes(opened)["target_stage"] == "production"
    assert changes(opened)["gates"] == {"integrity": True, "lineage": True, "model_card": True}
    assert changes(opened)["policy_version"] == 0
    by_reviewers = [e for e in recorded("promotion_request.approved_by_reviewer") if e.object_id == str(request.pk)]
    assert [changes(e) for e in by_reviewers] == [{"decision": "approve"}] * 2
    (approved,) = [e for e in recorded("promotion_request.approved") if e.object_id == str(request.pk)]
    assert changes(approved)["state"] == ["open", "approved"]
    moves = [changes(e) for e in recorded("model_version.stage_changed")][-2:]
    assert [(m["stage"], m["cause"], m["promotion_request"]) for m in moves] == [
        (["production", "archived"], "replaced", request.pk),
        (["none", "production"], "promotion", request.pk),
    ]
    assert opened.project_id == model.project_id
    assert opened.artifact_id == second.artifact_version.artifact_id


def test_rejection_withdrawal_expiry_and_invalidation_are_audited(model, isolated_blob_folder):
    rejected, withdrawn, expired, invalidated = (request_for(version_of(model)) for _ in range(4))
    promotion_reject(request=rejected, reviewer=reviewer_of(model.project), comment="No.")
    promotion_withdraw(request=withdrawn, withdrawn_by=withdrawn.requested_by)
    expire(expired)
    promotion_requests_expire()
    corrupt(isolated_blob_folder, invalidated.model_version)

    for action, request, state in [
        ("promotion_request.rejected", rejected, "rejected"),
        ("promotion_request.withdrawn", withdrawn, "withdrawn"),
        ("promotion_request.expired", expired, "expired"),
        ("promotion_request.invalidated", invalidated, "invalidated"),
    ]:
        (entry,) = recorded(action)
        assert entry.object_id == str(request.pk)
        assert changes(entry)["state"] == ["open", state]


def test_a_reviewers_rejection_is_audited_as_rejected_by_reviewer(version):
    request = request_for(version)
    reviewer = reviewer_of(version.registered_model.project)

    promotion_reject(request=request, reviewer=reviewer, comment="Recall is poor.")

    (entry,) = recorded("promotion_request.rejected_by_reviewer")
    assert (entry.object_id, entry.actor_user_id) == (str(request.pk), reviewer.pk)
    assert changes(entry) == {"decision": "reject"}


def test_a_rollback_is_audited_as_break_glass(model, replaced):
    maintainer = maintainer_of(model.project)

    review = model_rollback(registered_model=model, rolled_back_by=maintainer, justification="Broken.")

    (entry,) = recorded("registered_model.rolled_back")
    assert (entry.object_id, entry.actor_user_id) == (str(model.pk), maintainer.pk)
    assert changes(entry) == {"break_glass": True, "production": [2, 1], "review_request": review.pk}
    moves = [changes(e) for e in recorded("model_version.stage_changed")][-2:]
    assert all(m["break_glass"] and m["cause"] == "rollback" for m in moves)
    opened = recorded("promotion_request.opened")[-1]
    assert changes(opened) == {"kind": "rollback_review", "break_glass": True}


def test_the_audit_log_keeps_no_justification_or_comment_text(model, replaced, isolated_blob_folder):
    marker = "free-text-that-must-not-be-logged"
    third = version_of(model)
    request = promotion_request_create(
        model_version=third,
        target_stage="production",
        justification=f"{marker} justification",
        requested_by=grant(Role.CONTRIBUTOR, on=model.project).user,
    )
    promotion_approve(request=request, reviewer=reviewer_of(model.project), comment=f"{marker} approval")
    promotion_reject(request=request, reviewer=reviewer_of(model.project), comment=f"{marker} rejection")
    model_rollback(
        registered_model=model, rolled_back_by=maintainer_of(model.project), justification=f"{marker} rollback"
    )

    assert AuditEntry.objects.filter(action__startswith="promotion_request.").exists()
    assert not AuditEntry.objects.filter(changes__contains=marker).exists()
    assert not AuditEntry.objects.filter(object_label__contains=marker).exists()


# The database keeps decisions and history as written ---------------------------------------------------------------


def test_decisions_cannot_be_rewritten_or_deleted(version):
    request = promotion_approve(request=request_for(version), reviewer=reviewer_of(version.registered_model.project))
    decision = request.decisions.get()

    refused(lambda: PromotionDecision.objects.filter(pk=decision.pk).update(decision="reject"))
    refused(lambda: PromotionDecision.objects.filter(pk=decision.pk).update(comment="edited"))
    refused(lambda: PromotionDecision.objects.filter(pk=decision.pk).delete())

    assert (fresh(decision).decision, fresh(decision).comment) == ("approve", "")


def test_stage_history_cannot_be_rewritten_or_deleted(version):
    promoted(version)
    transition = StageTransition.objects.get()

    refused(lambda: StageTransition.objects.filter(pk=transition.pk).update(to_stage="staging"))
    refused(lambda: StageTransition.objects.filter(pk=transition.pk).update(changed_at=timezone.now()))
    refused(lambda: StageTransition.objects.all().delete())

    assert fresh(transition).to_stage == "production"


def test_a_model_version_always_names_the_same_artifact_version(model, version):
    registered = (version.registered_model_id, version.number, version.artifact_version_id)
    other = artifact_version_with_lineage(model.project)

    refused(lambda: ModelVersion.objects.filter(pk=version.pk).update(artifact_version=other))
    refused(lambda: ModelVersion.objects.filter(pk=version.pk).update(number=7))
    refused(lambda: ModelVersion.objects.filter(pk=version.pk).update(registered_model=RegisteredModelFactory()))
    refused(lambda: ModelVersion.objects.filter(pk=version.pk).delete())

    version = fresh(version)
    assert (version.registered_model_id, version.number, version.artifact_version_id) == registered


def test_a_model_versions_stage_columns_stay_updatable(version):
    moved = ModelVersion.objects.filter(pk=version.pk).update(stage="staging", stage_changed_at=timezone.now())

    assert moved == 1
    assert fresh(version).stage == "staging"


def test_what_a_request_asks_cannot_be_rewritten(version):
    request = request_for(version)

    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).update(target_stage="staging"))
    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).update(digest="0" * 64))
    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).update(justification="Something else."))
    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).update(requested_by=UserFactory()))
    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).delete())

    assert (fresh(request).target_stage, fresh(request).justification) == ("production", JUSTIFICATION)


def test_a_closed_request_is_never_reopened_or_changed(version):
    request = promotion_withdraw(request=request_for(version), withdrawn_by=UserFactory(is_superuser=True))

    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).update(state="open", closed_at=None))
    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).update(close_reason="Never mind."))

    assert fresh(request).state == PromotionRequest.State.WITHDRAWN


# What a review of the feature found ----------------------------------------------------------------------------------


def test_the_maintainer_who_broke_glass_cannot_withdraw_the_review_of_their_rollback(model, replaced):
    maintainer = maintainer_of(model.project)
    review = model_rollback(registered_model=model, rolled_back_by=maintainer, justification="v2 is broken.")

    with pytest.raises(NotAllowed, match="cannot be withdrawn"):
        promotion_withdraw(request=review, withdrawn_by=maintainer)

    assert fresh(review).state == PromotionRequest.State.OPEN


def test_the_review_of_a_rollback_never_expires(model, replaced):
    review = model_rollback(registered_model=model, rolled_back_by=maintainer_of(model.project), justification="x")
    expire(review)

    assert promotion_requests_expire() == 0
    promotion_approve(request=review, reviewer=reviewer_of(model.project))
    assert fresh(review).state == PromotionRequest.State.OPEN  # 1 of 2: still waiting, not expired


def test_corrupt_bytes_leave_the_review_of_a_rollback_open(model, replaced, isolated_blob_folder):
    first, _ = replaced
    review = model_rollback(registered_model=model, rolled_back_by=maintainer_of(model.project), justification="x")

    corrupt(isolated_blob_folder, first)

    assert fresh(review).state == PromotionRequest.State.OPEN


def test_whoever_registered_the_version_cannot_approve_it_either_when_creators_may_not(model):
    registrar = UserFactory()
    grant(Role.CONTRIBUTOR, on=model.project, user=registrar)
    reviewer_of(model.project, registrar)
    version = ModelVersionFactory(
        registered_model=model, artifact_version=artifact_version_with_lineage(model.project), created_by=registrar
    )

    with pytest.raises(NotAllowed) as refusal:
        promotion_approve(request=request_for(version), reviewer=registrar)

    assert refusal.value.code == "separation_of_duties"
    assert "registered" in refusal.value.message


def test_withdrawal_expiry_and_invalidation_each_announce_the_closed_request_with_the_reason(
    model, isolated_blob_folder
):
    withdrawn, expired, invalidated = (request_for(version_of(model)) for _ in range(3))
    start = last_event_id()

    promotion_withdraw(request=withdrawn, withdrawn_by=withdrawn.requested_by)
    expire(expired)
    promotion_requests_expire()
    corrupt(isolated_blob_folder, invalidated.model_version)

    closed = {body["data"]["promotion_request"]["id"]: body for body in bodies(EventType.PROMOTION_CLOSED, after=start)}
    assert {request_id: body["data"]["promotion_request"]["state"] for request_id, body in closed.items()} == {
        withdrawn.pk: "withdrawn",
        expired.pk: "expired",
        invalidated.pk: "invalidated",
    }
    assert closed[invalidated.pk]["data"]["reason"].endswith("were found corrupt.")


def test_a_request_applied_after_its_approvals_announces_its_approval_once_more(model):
    version = version_of(model, verified=False)
    request = approve_by_new_reviewers(request_for(version))
    start = last_event_id()

    blob_verify(blob=version.artifact_version.blob)

    (approved,) = bodies(EventType.PROMOTION_APPROVED, after=start)
    assert approved["data"]["promotion_request"]["id"] == request.pk
    assert approved["data"]["promotion_request"]["state"] == "approved"
