"""What each step of a promotion leaves behind: the events it emits, checked against their published schemas, and
the audit entries it records, which keep no justification or comment text."""

import json

import pytest

from artifacts.access.roles import Role
from artifacts.services.integrity import blob_verify
from core.events import EventType
from core.models import AuditEntry
from governance.registry.services.promotions import (
    model_rollback,
    promotion_approve,
    promotion_reject,
    promotion_request_create,
    promotion_requests_expire,
    promotion_withdraw,
)
from tests.artifacts.factories import grant
from tests.governance.registry.promotions import (
    approve_by_new_reviewers,
    bodies,
    changes,
    corrupt,
    expire,
    last_event_id,
    maintainer_of,
    promoted,
    recorded,
    request_for,
    reviewer_of,
    version_of,
)

pytestmark = pytest.mark.django_db


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


# What a review of the feature found ----------------------------------------------------------------------------------


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
