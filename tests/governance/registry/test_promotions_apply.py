"""How an approved request moves versions (governance/registry/services/promotions.py): the stage it enters and the
version it
replaces; expiry by the periodic sweep; invalidation when the version moves or its bytes are found corrupt;
and requests judged under the policy in force when they are decided."""

import pytest

from core.errors import Conflict
from governance.registry.models import ModelVersion, PromotionRequest, StageTransition
from governance.registry.services.promotions import promotion_approve, promotion_requests_expire, promotion_withdraw
from tests.artifacts.factories import UserFactory
from tests.governance.registry.promotions import (
    approve_by_new_reviewers,
    corrupt,
    expire,
    fresh,
    policy,
    production_of,
    promoted,
    recorded,
    refused,
    request_for,
    reviewer_of,
    version_of,
    version_published_by,
)

pytestmark = pytest.mark.django_db


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
