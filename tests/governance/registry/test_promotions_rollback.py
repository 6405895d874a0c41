"""The break-glass rollback (governance/registry/services/promotions.py `model_rollback`): a maintainer restores the
previous
production version at once, and reviewers confirm it afterwards in a review that never expires or closes by
itself."""

import pytest

from artifacts.access.roles import Role
from core.errors import Conflict, InvalidInput, NotAllowed
from governance.registry.models import PromotionRequest, StageTransition
from governance.registry.services.promotions import (
    model_rollback,
    promotion_approve,
    promotion_requests_expire,
    promotion_withdraw,
)
from tests.artifacts.factories import grant
from tests.governance.registry.promotions import (
    approve_by_new_reviewers,
    corrupt,
    expire,
    fresh,
    maintainer_of,
    production_of,
    promoted,
    request_for,
    reviewer_of,
    version_of,
)

pytestmark = pytest.mark.django_db


# Break-glass rollback ----------------------------------------------------------------------------------------------


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
