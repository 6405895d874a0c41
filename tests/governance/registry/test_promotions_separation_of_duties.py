"""Separation of duties in promotions (governance/registry/services/promotions.py): who may ask, who may approve or
reject,
and whose approval still counts when roles, accounts or the policy change after the fact."""

import pytest

from artifacts.access.roles import Role
from artifacts.access.services import role_revoke
from artifacts.services import artifact_update
from core.errors import Conflict, NotAllowed
from governance.registry.models import PromotionDecision, PromotionRequest
from governance.registry.selectors import approval_standing
from governance.registry.services.promotions import (
    promotion_approve,
    promotion_reject,
    promotion_request_create,
)
from tests.artifacts.factories import ArtifactFactory, UserFactory, grant
from tests.governance.factories import ModelVersionFactory, artifact_version_with_lineage
from tests.governance.registry.promotions import (
    JUSTIFICATION,
    fresh,
    policy,
    request_for,
    reviewer_of,
    version_published_by,
)

pytestmark = pytest.mark.django_db


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


# What a review of the feature found ----------------------------------------------------------------------------------


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
