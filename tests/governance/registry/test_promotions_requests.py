"""Promotion requests (governance/registry/services/promotions.py): what a request records and what it may ask, and
how it
is closed by a rejection or a withdrawal, after which acting on it is a conflict naming why it closed."""

from datetime import timedelta

import pytest

from artifacts.access.roles import Role
from core.errors import Conflict, InvalidInput, NotAllowed
from governance.registry.models import PromotionRequest
from governance.registry.services.promotions import (
    promotion_apply,
    promotion_approve,
    promotion_reject,
    promotion_request_create,
    promotion_withdraw,
)
from tests.artifacts.factories import grant
from tests.governance.registry.promotions import (
    approve_by_new_reviewers,
    fresh,
    maintainer_of,
    policy,
    promoted,
    request_for,
    reviewer_of,
)

pytestmark = pytest.mark.django_db


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
