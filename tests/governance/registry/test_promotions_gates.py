"""The gates a promotion passes (governance/registry/gates.py): integrity, lineage, metric thresholds, the model card
and
time in production, each failing with its reason and passing, at request time and again when a promotion would
apply."""

from datetime import timedelta

import pytest
from django.utils import timezone

from artifacts.access.roles import Role
from artifacts.services.integrity import blob_verify
from core.errors import Conflict, NotAllowed
from governance.registry.gates import gates_evaluate
from governance.registry.models import ModelVersion, PromotionRequest, StageTransition
from governance.registry.services.promotions import promotion_apply, promotion_approve
from governance.registry.services.registry import registered_model_update
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetFactory,
    DatasetVersionFactory,
    RunFactory,
    grant,
)
from tests.governance.factories import ModelVersionFactory
from tests.governance.registry.promotions import (
    approve_by_new_reviewers,
    corrupt,
    fresh,
    gate,
    maintainer_of,
    policy,
    production_of,
    promoted,
    request_for,
    reviewer_of,
    served_for,
    version_of,
)

pytestmark = pytest.mark.django_db


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


@pytest.mark.parametrize(
    ("with_commit", "with_inputs", "missing"),
    [
        pytest.param(False, True, "code commit", id="no commit"),
        pytest.param(True, False, "input dataset version", id="no input dataset"),
        pytest.param(False, False, "code commit and no input dataset version", id="neither"),
    ],
)
def test_a_run_missing_its_commit_or_inputs_fails_the_lineage_gate_naming_each_missing_piece(
    model, with_commit, with_inputs, missing
):
    inputs = [DatasetVersionFactory(dataset=DatasetFactory(project=model.project))] if with_inputs else []
    commit = {} if with_commit else {"code_commit": ""}
    run = RunFactory(project=model.project, input_dataset_versions=inputs, **commit)

    request = request_for(published_with(model, run=run))

    assert gate(request.gates_at_request, "lineage") == {
        "gate": "lineage",
        "passed": False,
        "detail": f"Run '{run.external_id}' records no {missing}.",
    }


def test_staging_default_policy_does_not_ask_for_lineage(model):
    request = request_for(published_with(model, run=None), "staging")

    assert [result["gate"] for result in request.gates_at_request] == ["integrity"]


# Gates: metric thresholds ------------------------------------------------------------------------------------------


ACCURACY_AT_LEAST_092 = {"metric": "accuracy", "operator": ">=", "value": 0.92}


@pytest.mark.parametrize(
    ("thresholds", "metrics", "passed", "detail"),
    [
        pytest.param(
            [ACCURACY_AT_LEAST_092, {"metric": "latency_ms", "operator": "<", "value": 50}],
            {"accuracy": 0.93, "latency_ms": 41},
            True,
            "accuracy = 0.93 (>= 0.92); latency_ms = 41 (< 50).",
            id="every threshold met",
        ),
        pytest.param(
            [ACCURACY_AT_LEAST_092],
            {"accuracy": 0.91},
            False,
            "accuracy is 0.91, needs >= 0.92.",
            id="below its floor, with the value and the bound",
        ),
        pytest.param(
            [{"metric": "latency_ms", "operator": "<=", "value": 50}],
            {"latency_ms": 75},
            False,
            "latency_ms is 75, needs <= 50.",
            id="above its ceiling",
        ),
        pytest.param(
            [{"metric": "auc", "operator": ">", "value": 0.8}],
            {"accuracy": 0.99},
            False,
            "auc is missing from run '{run}' (needs > 0.8).",
            id="missing from the run",
        ),
        pytest.param(
            [
                ACCURACY_AT_LEAST_092,
                {"metric": "recall", "operator": ">=", "value": 0.8},
                {"metric": "latency_ms", "operator": "<", "value": 50},
            ],
            {"accuracy": 0.95, "recall": 0.7, "latency_ms": 60},
            False,
            "recall is 0.7, needs >= 0.8; latency_ms is 60, needs < 50.",
            id="every failure reported at once",
        ),
    ],
)
def test_the_metrics_gate_holds_the_runs_metrics_to_every_threshold(model, thresholds, metrics, passed, detail):
    policy(model.project, "production", metric_thresholds=thresholds)
    version = version_of(model, metrics=metrics)

    request = request_for(version)

    assert gate(request.gates_at_request, "metrics") == {
        "gate": "metrics",
        "passed": passed,
        "detail": detail.format(run=version.artifact_version.run.external_id),
    }


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


@pytest.mark.parametrize(
    ("card", "passed", "detail"),
    [
        pytest.param("   \n", False, "Model '{name}' has no model card: write one.", id="blank"),
        pytest.param("# Churn\n\nIntended use: tests.", True, "The model card is written.", id="written"),
    ],
)
def test_the_production_default_policy_asks_for_a_written_model_card(model, card, passed, detail):
    version = version_of(model)
    registered_model_update(registered_model=model, changed_by=None, model_card=card)

    request = request_for(version)

    assert gate(request.gates_at_request, "model_card") == {
        "gate": "model_card",
        "passed": passed,
        "detail": detail.format(name=model.name),
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


@pytest.mark.parametrize(
    ("hours", "passed", "detail"),
    [
        pytest.param(
            3,
            False,
            "v1 entered production 3.0 h ago; the policy keeps a production version at least 24 h before replacing "
            "it (no flapping): try again after {after} UTC.",
            id="younger than the minimum blocks its replacement",
        ),
        pytest.param(25, True, "v1 has served 25.0 h (at least 24 h).", id="older than the minimum may be replaced"),
    ],
)
def test_the_production_version_must_have_served_the_policy_minimum_before_it_is_replaced(model, hours, passed, detail):
    first = version_of(model)
    promoted(first)
    policy(model.project, "production", min_hours_in_production=24)
    served_for(first, hours)

    result = gate(request_for(version_of(model)).gates_at_request, "production_age")

    after = fresh(first).stage_changed_at + timedelta(hours=24)
    assert result == {
        "gate": "production_age",
        "passed": passed,
        "detail": detail.format(after=f"{after:%Y-%m-%d %H:%M}"),
    }


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
