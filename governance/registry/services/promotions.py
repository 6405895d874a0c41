"""The gate to production: promotion requests, reviewers' decisions, the stage moves they cause, and the
break-glass rollback, and the stages imported from another registry (recorded as imported, never as approved).
Kept whole (about 820 lines) on purpose: every path that moves a version between stages takes the same model row
lock and weighs the same rules below, and one module keeps them side by side where a reviewer can check them.

Rules, each enforced here whatever the entry point (API, admin, task):
- A request records the version's digest and each gate's result; it is judged under the stage's current policy.
- Separation of duties: the requester never approves or rejects their own request; the person who published the
  artifact version approves only if the policy lets its creator; one person counts once (a database constraint);
  an approval counts only while its reviewer still holds the reviewer role on the version's artifact or project.
- When enough approvals count and every gate passes at that moment, the promotion is applied at once: the
  previous production version leaves production and the version enters its stage, under the model's row lock,
  so two concurrent approvals or requests never make two production versions (and a partial unique index
  refuses it if anything ever tried).
- A request closes as approved, rejected (by any one qualified reviewer), withdrawn, expired (after the policy's
  time to live) or invalidated (its bytes found corrupt, its version archived or already in the target stage).

Every write locks the model's row first (services.registry.model_lock), then the request's. Each act records
through one ChangeSet (core/changes.py), which writes its events before its audit entries.

(Over 600 lines, kept whole: requests, decisions, expiry, the bytes' verdicts, the rollback and imported stages
all close and move through the same private helpers under the same locks; split, those would be imported across
modules as private names, and the locking order would no longer read in one place.)
"""

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from artifacts.access.roles import Verb
from artifacts.access.rule import can
from artifacts.models import Blob
from core.audit.actions import AuditAction
from core.changes import ChangeSet
from core.errors import Conflict, DomainError, InvalidInput, NotAllowed
from core.events import EventType
from governance.registry.events import promotion_event, stage_changed_event
from governance.registry.gates import gates_evaluate, gates_failing, gates_pass
from governance.registry.models import (
    TARGET_STAGES,
    ModelVersion,
    PromotionComment,
    PromotionDecision,
    PromotionRequest,
    Stage,
    StageTransition,
)
from governance.registry.selectors import approval_standing, model_version_creators, policy_current
from governance.registry.services.registry import imported_from_clean, model_lock

MAX_JUSTIFICATION_CHARS = 10_000
MAX_COMMENT_CHARS = 10_000
EXPIRY_BATCH = 500
CLOSED_UNDECIDED = {
    PromotionRequest.State.WITHDRAWN,
    PromotionRequest.State.EXPIRED,
    PromotionRequest.State.INVALIDATED,
}
PAST = {PromotionDecision.Decision.APPROVE: "approved", PromotionDecision.Decision.REJECT: "rejected"}
#: How the log names a request's closing, by the state it closes in.
CLOSED_AS = {
    PromotionRequest.State.APPROVED: AuditAction.PROMOTION_REQUEST_APPROVED,
    PromotionRequest.State.REJECTED: AuditAction.PROMOTION_REQUEST_REJECTED,
    PromotionRequest.State.WITHDRAWN: AuditAction.PROMOTION_REQUEST_WITHDRAWN,
    PromotionRequest.State.EXPIRED: AuditAction.PROMOTION_REQUEST_EXPIRED,
    PromotionRequest.State.INVALIDATED: AuditAction.PROMOTION_REQUEST_INVALIDATED,
}
#: How the log names a reviewer's decision (one entry per reviewer), apart from the request's closing.
DECIDED_AS = {
    PromotionDecision.Decision.APPROVE: AuditAction.PROMOTION_REQUEST_APPROVED_BY_REVIEWER,
    PromotionDecision.Decision.REJECT: AuditAction.PROMOTION_REQUEST_REJECTED_BY_REVIEWER,
}


# Reading a request's standing -------------------------------------------------------------------------------------


def _loaded(request: PromotionRequest) -> PromotionRequest:
    """The request locked, with what gates and events read (the model's row must be locked already)."""
    return (
        PromotionRequest.objects.select_for_update(of=("self",), no_key=True)
        .select_related(
            "registered_model__project",
            "requested_by",
            "model_version__registered_model__project",
            "model_version__artifact_version__artifact",
            "model_version__artifact_version__blob",
            "model_version__artifact_version__run",
            "model_version__artifact_version__created_by",
        )
        .get(pk=request.pk)
    )


def _production_now(model_id: int, excluding: ModelVersion | None = None) -> ModelVersion | None:
    current = ModelVersion.objects.filter(registered_model_id=model_id, stage=Stage.PRODUCTION).first()
    return None if current is None or (excluding is not None and current.pk == excluding.pk) else current


def _counting(standing: list[dict]) -> int:
    return sum(1 for approval in standing if approval["counts"])


# Closing and moving -----------------------------------------------------------------------------------------------


def _close(
    request: PromotionRequest,
    state: str,
    reason: str,
    *,
    by: AbstractBaseUser | None,
    changes: ChangeSet,
    at=None,
) -> None:
    """Close the open `request` in `state`, saying why."""
    closed = changes.update(request, state=state, close_reason=reason, closed_by=by, closed_at=at or timezone.now())
    if state in CLOSED_UNDECIDED:
        standing = approval_standing(request)
        promotion_event(
            changes, EventType.PROMOTION_CLOSED, request, approvals=_counting(standing), actor=by, reason=reason
        )
    changes.audit(
        CLOSED_AS[state],
        obj=request,
        actor=by,
        changes={
            "state": closed["state"],
            "target_stage": request.target_stage,
            "version": request.model_version.number,
        },
    )


def _invalidate_open(
    version: ModelVersion, reason: str, *, stages: list[str], keep: PromotionRequest | None, changes: ChangeSet
) -> None:
    """Close the version's open requests into `stages` (all but `keep`) as invalidated, saying why."""
    requests = PromotionRequest.objects.filter(
        model_version=version, state=PromotionRequest.State.OPEN, target_stage__in=stages
    )
    if keep is not None:
        requests = requests.exclude(pk=keep.pk)
    for request in requests.select_for_update(no_key=True).select_related("model_version").order_by("pk"):
        _close(request, PromotionRequest.State.INVALIDATED, reason, by=None, changes=changes)


def _move(
    version: ModelVersion,
    to_stage: str,
    *,
    cause: str,
    request: PromotionRequest | None,
    actor: AbstractBaseUser | None,
    changes: ChangeSet,
    break_glass: bool = False,
    imported_from: str = "",
) -> None:
    """Move one version (its model row locked) into `to_stage`, with its history, event and audit entry.

    Open requests the move makes moot are invalidated: into the stage it now is in, and all of them when it is
    archived.
    """
    from_stage, now = version.stage, timezone.now()
    changes.update(version, stage=to_stage, stage_changed_at=now)
    StageTransition.objects.create(
        registered_model_id=version.registered_model_id,
        model_version=version,
        from_stage=from_stage,
        to_stage=to_stage,
        cause=cause,
        break_glass=break_glass,
        promotion_request=request,
        imported_from=imported_from,
        changed_by=actor,
        changed_at=now,
    )
    if to_stage == Stage.ARCHIVED:
        _invalidate_open(
            version, f"v{version.number} was archived.", stages=list(TARGET_STAGES), keep=request, changes=changes
        )
    else:
        _invalidate_open(
            version, f"v{version.number} is in {to_stage} already.", stages=[to_stage], keep=request, changes=changes
        )
    if to_stage == Stage.PRODUCTION:
        _invalidate_open(
            version,
            f"v{version.number} went to production: moving it back to staging would leave the model without one.",
            stages=[Stage.STAGING],
            keep=request,
            changes=changes,
        )
    stage_changed_event(changes, version, from_stage=from_stage, cause=cause, break_glass=break_glass, actor=actor)
    changes.audit(
        AuditAction.MODEL_VERSION_STAGE_CHANGED,
        obj=version,
        actor=actor,
        changes={
            "stage": [from_stage, to_stage],
            "cause": cause,
            "break_glass": break_glass,
            "promotion_request": request.pk if request is not None else None,
            # Said in the entry itself: an import moved this stage, and no reviewer approved it.
            **({"imported_from": imported_from, "approved": False} if imported_from else {}),
        },
    )


def _apply(request: PromotionRequest, policy, *, actor: AbstractBaseUser | None, changes: ChangeSet) -> None:
    """Close `request` as approved and move its version; the previous production version goes where the policy
    says. The caller holds the model's row lock and has checked approvals and gates."""
    version = request.model_version
    _close(request, PromotionRequest.State.APPROVED, f"Moved to {request.target_stage}.", by=actor, changes=changes)
    current = _production_now(version.registered_model_id, excluding=version)
    if request.target_stage == Stage.PRODUCTION and current is not None:
        current.registered_model = version.registered_model
        _move(
            current,
            policy.previous_production_to,
            cause=StageTransition.Cause.REPLACED,
            request=request,
            actor=actor,
            changes=changes,
        )
    _move(
        version,
        request.target_stage,
        cause=StageTransition.Cause.PROMOTION,
        request=request,
        actor=actor,
        changes=changes,
    )


def _weigh(
    request: PromotionRequest, *, actor: AbstractBaseUser | None, changes: ChangeSet, announce: bool = True
) -> str:
    """Judge an open request now: apply it when enough approvals count and every gate passes. Answers what stands
    in the way ("" once applied). `announce`: emit `promotion.approved` when applied (an approval emits its own)."""
    policy = policy_current(request.registered_model.project, request.target_stage)
    version = request.model_version
    now = timezone.now()
    gates = gates_evaluate(
        policy,
        version,
        current_production=_production_now(version.registered_model_id, excluding=version),
        now=now,
    )
    standing = approval_standing(request, policy)
    changes.update(
        request,
        gates_at_decision=gates,
        gates_weighed_at=now,
        policy_version=policy.version,
        approvals_required=policy.approvals_required,
    )
    counted = _counting(standing)
    if counted < policy.approvals_required:
        return f"{counted} of {policy.approvals_required} required approvals count so far."
    if request.kind == PromotionRequest.Kind.ROLLBACK_REVIEW:
        # The stage moved when the rollback was made; the review confirms it after the fact, whatever the gates
        # say now (they are kept on the request for the record).
        _close(
            request, PromotionRequest.State.APPROVED, "The emergency rollback was confirmed.", by=actor, changes=changes
        )
        return ""
    if not gates_pass(gates):
        return f"Approved, but gates fail: {gates_failing(gates)}"
    _apply(request, policy, actor=actor, changes=changes)
    if announce:
        promotion_event(changes, EventType.PROMOTION_APPROVED, request, approvals=counted, actor=actor)
    return ""


def _expired(request: PromotionRequest, changes: ChangeSet) -> bool:
    """Close `request` as expired if its time ran out. A rollback's review never expires: the change it reviews was
    made, and only reviewers may close it."""
    if request.kind == PromotionRequest.Kind.ROLLBACK_REVIEW:
        return False
    if request.state == PromotionRequest.State.OPEN and request.expires_at <= timezone.now():
        _close(
            request,
            PromotionRequest.State.EXPIRED,
            f"No decision before {request.expires_at:%Y-%m-%d %H:%M} UTC.",
            by=None,
            changes=changes,
            at=request.expires_at,
        )
        return True
    return False


def _refusal_if_closed(request: PromotionRequest) -> Conflict | None:
    if request.state == PromotionRequest.State.OPEN:
        return None
    reason = f": {request.close_reason}" if request.close_reason else "."
    return Conflict(f"Request #{request.pk} is {request.state}{reason}", code=f"request_{request.state}")


def _lock_open(request: PromotionRequest, changes: ChangeSet) -> tuple[PromotionRequest, Conflict | None]:
    """The request, locked after its model's row, and the refusal to raise once the transaction commits when it is
    no longer open: raised after, so what was settled on the way (an expiry found at the moment of acting) is kept."""
    model_lock(request.registered_model_id)
    locked = _loaded(request)
    _expired(locked, changes)
    return locked, _refusal_if_closed(locked)


# Requests ---------------------------------------------------------------------------------------------------------


def _clean_text(text: str, *, field_name: str, limit: int, required: bool) -> str:
    text = (text or "").strip()
    if required and not text:
        raise InvalidInput(f"Say why: the {field_name} is required.", field=field_name)
    if len(text) > limit:
        raise InvalidInput(f"The {field_name} is at most {limit:,} characters.", field=field_name)
    return text


def promotion_request_create(
    *, model_version: ModelVersion, target_stage: str, justification: str, requested_by: AbstractBaseUser
) -> PromotionRequest:
    """Ask for `model_version` to move into `target_stage`. Contributors to its artifact (or project) may ask.

    The request records the digest and each gate's result now; it is open until decided, withdrawn, expired or
    invalidated. One open request per version and stage: asking again answers 409 naming the open one.
    """
    justification = _clean_text(justification, field_name="justification", limit=MAX_JUSTIFICATION_CHARS, required=True)
    if target_stage not in TARGET_STAGES:
        raise InvalidInput(
            f"A version is promoted to {', '.join(TARGET_STAGES)}, not '{target_stage}'.", field="target_stage"
        )

    with transaction.atomic(), ChangeSet() as changes:
        model = model_lock(model_version.registered_model_id)
        version = (
            ModelVersion.objects.select_related("artifact_version__artifact", "artifact_version__blob")
            .select_related("artifact_version__run", "artifact_version__created_by")
            .get(pk=model_version.pk)
        )
        version.registered_model = model
        artifact = version.artifact_version.artifact
        if not can(requested_by, Verb.CONTRIBUTE, artifact):
            raise NotAllowed(
                f"Requesting a promotion of {version} needs the contributor or maintainer role on artifact "
                f"'{artifact.name}' or its project."
            )
        if version.stage == target_stage:
            raise Conflict(f"v{version.number} of '{model.name}' is in {target_stage} already.", field="target_stage")
        if version.stage == Stage.PRODUCTION and target_stage == Stage.STAGING:
            raise Conflict(
                f"v{version.number} of '{model.name}' is in production: moving it to staging would leave the model "
                "without a production version. Promote another version to production, or archive this one.",
                field="target_stage",
            )
        open_one = PromotionRequest.objects.filter(
            model_version=version, target_stage=target_stage, state=PromotionRequest.State.OPEN
        ).first()
        if open_one is not None and not _expired(open_one, changes):
            raise Conflict(
                f"Request #{open_one.pk} to move v{version.number} to {target_stage} is open already: decide or "
                "withdraw it first.",
                field="target_stage",
            )
        policy = policy_current(model.project, target_stage)
        now = timezone.now()
        request = PromotionRequest(
            registered_model=model,
            model_version=version,
            target_stage=target_stage,
            justification=justification,
            digest=version.artifact_version.blob.digest,
            policy_version=policy.version,
            approvals_required=policy.approvals_required,
            gates_at_request=gates_evaluate(
                policy, version, current_production=_production_now(model.pk, excluding=version), now=now
            ),
            requested_by=requested_by,
            requested_at=now,
            expires_at=now + timedelta(hours=policy.request_ttl_hours),
        )
        try:
            with transaction.atomic():
                request.save(force_insert=True)
        except IntegrityError:
            raise Conflict(
                f"A request to move v{version.number} to {target_stage} was opened at the same moment.",
                field="target_stage",
            ) from None
        promotion_event(changes, EventType.PROMOTION_REQUESTED, request, approvals=0, actor=requested_by)
        changes.audit(
            AuditAction.PROMOTION_REQUEST_OPENED,
            obj=request,
            actor=requested_by,
            changes={
                "target_stage": target_stage,
                "version": version.number,
                "digest": request.digest,
                "policy_version": policy.version,
                "gates": {gate["gate"]: gate["passed"] for gate in request.gates_at_request},
            },
        )
    return request


def promotion_decision_refusal(
    request: PromotionRequest, user: AbstractBaseUser, decision: str, *, policy=None
) -> DomainError | None:
    """Why `user` may not approve (or reject) the open `request` now, or None: the separation-of-duties rules in one
    place, for the service that enforces them and the pages that show or hide a form. Reads `request.decisions`
    (prefetch them with their reviewers on a page)."""
    approving = decision == PromotionDecision.Decision.APPROVE
    verb = "approve" if approving else "reject"
    artifact_version = request.model_version.artifact_version
    if user.pk == request.requested_by_id:
        return NotAllowed(
            f"You requested this promotion, so you cannot {verb} it: separation of duties means another reviewer "
            "must decide. Withdraw it instead if it should not go ahead.",
            code="separation_of_duties",
        )
    if not can(user, Verb.REVIEW, artifact_version.artifact):
        return NotAllowed(
            f"Deciding promotions of {request.model_version} needs the reviewer role on artifact "
            f"'{artifact_version.artifact.name}' or its project."
        )
    earlier = next((d for d in request.decisions.all() if d.reviewer_id == user.pk), None)
    if earlier is not None:
        return Conflict(
            f"You already {PAST[earlier.decision]} this request at {earlier.decided_at:%Y-%m-%d %H:%M} UTC; one "
            "person's decision counts once.",
            code="already_decided",
        )
    policy = policy or policy_current(request.registered_model.project, request.target_stage)
    if approving and not policy.creator_may_approve and user.pk in model_version_creators(request.model_version):
        return NotAllowed(
            f"You published or registered {request.model_version}; the {request.target_stage} policy does not let "
            "a version's creator approve its promotion. You may still reject it.",
            code="separation_of_duties",
        )
    return None


def promotion_withdraw_refusal(request: PromotionRequest, user: AbstractBaseUser) -> DomainError | None:
    """Why `user` may not withdraw the open `request`, or None."""
    if request.kind == PromotionRequest.Kind.ROLLBACK_REVIEW:
        return NotAllowed(
            "The review of an emergency rollback cannot be withdrawn: reviewers must approve or reject it.",
            code="separation_of_duties",
        )
    if user.pk != request.requested_by_id and not can(user, Verb.MANAGE, request.registered_model.project):
        return NotAllowed("Only the requester or a maintainer of the project may withdraw a request.")
    return None


def promotion_apply_refusal(request: PromotionRequest, user: AbstractBaseUser) -> DomainError | None:
    """Why `user` may not ask for the open `request` to be weighed again, or None."""
    allowed = (
        user.pk == request.requested_by_id
        or can(user, Verb.REVIEW, request.model_version.artifact_version.artifact)
        or can(user, Verb.MANAGE, request.registered_model.project)
    )
    if not allowed:
        return NotAllowed("Only the requester, a reviewer of this artifact or a maintainer may re-check a request.")
    return None


def _decide(request: PromotionRequest, reviewer: AbstractBaseUser, decision: str, comment: str) -> PromotionRequest:
    approving = decision == PromotionDecision.Decision.APPROVE
    comment = _clean_text(comment, field_name="comment", limit=MAX_COMMENT_CHARS, required=not approving)
    with transaction.atomic(), ChangeSet() as changes:
        locked, refusal = _lock_open(request, changes)
        if refusal is None:
            _decision_record(locked, reviewer, decision, comment, changes=changes)
    if refusal is not None:
        raise refusal
    return locked


def _decision_record(
    request: PromotionRequest, reviewer: AbstractBaseUser, decision: str, comment: str, *, changes: ChangeSet
) -> None:
    """Record `reviewer`'s decision on the open, locked `request`, and what it settles: an approval that completes
    the count applies the request (`blocked_by` says what still stands in the way), a rejection closes it."""
    policy = policy_current(request.registered_model.project, request.target_stage)
    if refusal := promotion_decision_refusal(request, reviewer, decision, policy=policy):
        raise refusal
    PromotionDecision.objects.create(
        request=request, reviewer=reviewer, decision=decision, comment=comment, decided_at=timezone.now()
    )
    changes.audit(DECIDED_AS[decision], obj=request, actor=reviewer, changes={"decision": decision})
    if decision == PromotionDecision.Decision.APPROVE:
        blocked = _weigh(request, actor=reviewer, changes=changes, announce=False)
        counted = _counting(approval_standing(request, policy))
        promotion_event(changes, EventType.PROMOTION_APPROVED, request, approvals=counted, actor=reviewer)
        request.blocked_by = blocked
    else:
        _close(
            request,
            PromotionRequest.State.REJECTED,
            f"Rejected by {reviewer.get_username()}.",
            by=reviewer,
            changes=changes,
        )
        promotion_event(
            changes,
            EventType.PROMOTION_REJECTED,
            request,
            approvals=_counting(approval_standing(request, policy)),
            actor=reviewer,
        )


def promotion_approve(*, request: PromotionRequest, reviewer: AbstractBaseUser, comment: str = "") -> PromotionRequest:
    """Approve; when this approval completes the count and the gates pass, the version moves at once. The returned
    request carries `blocked_by`: what still stands in the way, or "" once applied."""
    return _decide(request, reviewer, PromotionDecision.Decision.APPROVE, comment)


def promotion_reject(*, request: PromotionRequest, reviewer: AbstractBaseUser, comment: str) -> PromotionRequest:
    """Reject, with a comment saying why: one qualified reviewer's rejection closes the request."""
    return _decide(request, reviewer, PromotionDecision.Decision.REJECT, comment)


def promotion_comment_add(*, request: PromotionRequest, author: AbstractBaseUser, body: str) -> PromotionComment:
    """Add `author`'s comment to the request's discussion. Whoever may see the request may comment, open or closed
    (a question before deciding, an answer to a rejection). Decisions stay where they are: a comment approves or
    rejects nothing. Audited against the request, by the comment's id (the text stays on the comment)."""
    body = (body or "").strip()
    if not body:
        raise InvalidInput("Write something: the comment is empty.", field="body")
    if len(body) > MAX_COMMENT_CHARS:
        raise InvalidInput(f"The comment is at most {MAX_COMMENT_CHARS:,} characters.", field="body")
    artifact = request.model_version.artifact_version.artifact
    if not can(author, Verb.VIEW, artifact):
        raise NotAllowed(
            f"Commenting on promotions of {request.model_version} needs a role on artifact "
            f"'{artifact.name}' or its project."
        )
    with transaction.atomic(), ChangeSet() as changes:
        comment = PromotionComment.objects.create(request=request, author=author, body=body, created_at=timezone.now())
        changes.audit(
            AuditAction.PROMOTION_REQUEST_COMMENTED,
            obj=request,
            actor=author,
            changes={"comment": comment.pk, "state": request.state},
        )
    return comment


def promotion_withdraw(*, request: PromotionRequest, withdrawn_by: AbstractBaseUser) -> PromotionRequest:
    """The requester (or a maintainer of the project) takes an open request back."""
    with transaction.atomic(), ChangeSet() as changes:
        locked, refusal = _lock_open(request, changes)
        if refusal is None:
            if refused := promotion_withdraw_refusal(locked, withdrawn_by):
                raise refused
            _close(
                locked,
                PromotionRequest.State.WITHDRAWN,
                f"Withdrawn by {withdrawn_by.get_username()}.",
                by=withdrawn_by,
                changes=changes,
            )
    if refusal is not None:
        raise refusal
    return locked


def promotion_apply(*, request: PromotionRequest, applied_by: AbstractBaseUser) -> PromotionRequest:
    """Weigh an open request again now (its gates may pass since): apply it if it may be, else 409 saying what
    stands in the way (raised after the commit: the gates just evaluated are kept on the request). The requester, its
    reviewers and the project's maintainers may ask."""
    with transaction.atomic(), ChangeSet() as changes:
        locked, refusal = _lock_open(request, changes)
        if refusal is None:
            if refused := promotion_apply_refusal(locked, applied_by):
                raise refused
            locked.blocked_by = _weigh(locked, actor=applied_by, changes=changes)
            if locked.blocked_by:
                refusal = Conflict(f"Not applied: {locked.blocked_by}", code="not_ready")
    if refusal is not None:
        raise refusal
    return locked


def promotion_requests_expire(*, limit: int = EXPIRY_BATCH) -> int:
    """Close every open request whose time ran out (a periodic task; acting on one also expires it)."""
    due = PromotionRequest.objects.filter(
        state=PromotionRequest.State.OPEN, kind=PromotionRequest.Kind.PROMOTION, expires_at__lte=timezone.now()
    )
    closed = 0
    for request in due.order_by("expires_at", "pk")[:limit]:
        with transaction.atomic(), ChangeSet() as changes:
            model_lock(request.registered_model_id)
            closed += _expired(_loaded(request), changes)
    return closed


# Reacting to the bytes ---------------------------------------------------------------------------------------------


def promotions_follow_blob(*, blob: Model, before: str) -> None:
    """Called inside the verification that changed a blob's state, before it records: open requests of versions
    with those bytes are invalidated when they are found corrupt, and weighed again when they become verified (an
    approved request waiting only for its integrity gate is applied then)."""
    if blob.state == before:
        return
    open_requests = PromotionRequest.objects.filter(
        state=PromotionRequest.State.OPEN, model_version__artifact_version__blob=blob
    ).order_by("registered_model_id", "pk")
    if blob.state == Blob.State.CORRUPT:
        # Archiving corrupt bytes is still wanted: only requests that would put them to use are invalidated. A
        # rollback's review stays open: the change was made, and reviewers must still judge it.
        open_requests = open_requests.exclude(target_stage=Stage.ARCHIVED).exclude(
            kind=PromotionRequest.Kind.ROLLBACK_REVIEW
        )
    else:
        # Weighed again only where someone approved already: the others have no decision to record gates for.
        open_requests = open_requests.filter(decisions__decision=PromotionDecision.Decision.APPROVE).distinct()
    # Opened inside the verification's own change set, this one joins it: written with the check's, events first.
    with ChangeSet() as changes:
        for request in open_requests:
            model_lock(request.registered_model_id)
            locked = _loaded(request)
            if _expired(locked, changes) or locked.state != PromotionRequest.State.OPEN:
                continue
            if blob.state == Blob.State.CORRUPT:
                _close(
                    locked,
                    PromotionRequest.State.INVALIDATED,
                    f"The bytes of {locked.model_version.artifact_version} ({blob.prefixed_digest}) were found "
                    "corrupt.",
                    by=None,
                    changes=changes,
                )
            elif locked.kind == PromotionRequest.Kind.PROMOTION:
                _weigh(locked, actor=None, changes=changes)


# Break glass -------------------------------------------------------------------------------------------------------


def model_rollback(
    *, registered_model: Model, rolled_back_by: AbstractBaseUser, justification: str
) -> PromotionRequest:
    """Restore the version that was in production before the current one, at once (maintainers only).

    The current production version is archived, the change is marked break-glass in the history and the audit
    log, and a review request opens that reviewers must approve afterwards under the production policy (its gates
    are shown, not enforced: the change is made). Bytes found corrupt are never restored.
    """
    justification = _clean_text(justification, field_name="justification", limit=MAX_JUSTIFICATION_CHARS, required=True)

    with transaction.atomic(), ChangeSet() as changes:
        model = model_lock(registered_model.pk)
        if not can(rolled_back_by, Verb.MANAGE, model.project):
            raise NotAllowed(f"An emergency rollback of '{model.name}' needs the maintainer role on its project.")
        current = _production_now(model.pk)
        left_production = (
            StageTransition.objects.filter(registered_model=model, from_stage=Stage.PRODUCTION)
            # A version rolled back out of production was taken out for a reason: a second rollback goes further
            # back instead of restoring it.
            .exclude(cause=StageTransition.Cause.ROLLBACK)
            .exclude(model_version=current)
            .select_related(
                "model_version__artifact_version__blob",
                "model_version__artifact_version__run",
                "model_version__artifact_version__artifact",
            )
            .order_by("-changed_at", "-id")
            .first()
        )
        if left_production is None:
            raise Conflict(f"'{model.name}' has no earlier production version to restore.")
        previous = left_production.model_version
        previous.registered_model = model
        unseen = [
            version
            for version in (current, previous)
            if version is not None and not can(rolled_back_by, Verb.VIEW, version.artifact_version.artifact)
        ]
        if unseen:
            # Named by nothing: the maintainer may not know these versions exist.
            raise Conflict(
                f"This rollback of '{model.name}' would move a version of a restricted artifact you have no role on; "
                "ask a maintainer of that artifact to roll back."
            )
        blob = previous.artifact_version.blob
        if blob.state == Blob.State.CORRUPT:
            raise Conflict(
                f"v{previous.number}'s bytes ({blob.prefixed_digest}) are corrupt; they cannot be restored to "
                "production. Repair them by uploading the same bytes again."
            )
        # The rollback's own entry comes first in the log, before what it caused on the way: those are recorded in a
        # change set of their own, which joins this one when it ends, after the rollback's entry (core/changes.py).
        with ChangeSet() as caused:
            _invalidate_open(
                previous,
                "An emergency rollback restored it to production.",
                stages=[Stage.PRODUCTION],
                keep=None,
                changes=caused,
            )
            policy = policy_current(model.project, Stage.PRODUCTION)
            now = timezone.now()
            review = PromotionRequest.objects.create(
                registered_model=model,
                model_version=previous,
                kind=PromotionRequest.Kind.ROLLBACK_REVIEW,
                target_stage=Stage.PRODUCTION,
                justification=justification,
                digest=blob.digest,
                policy_version=policy.version,
                approvals_required=policy.approvals_required,
                gates_at_request=gates_evaluate(policy, previous, current_production=None, now=now),
                requested_by=rolled_back_by,
                requested_at=now,
                expires_at=now + timedelta(hours=policy.request_ttl_hours),
            )
            if current is not None:
                current.registered_model = model
                _move(
                    current,
                    Stage.ARCHIVED,
                    cause=StageTransition.Cause.ROLLBACK,
                    request=review,
                    actor=rolled_back_by,
                    changes=caused,
                    break_glass=True,
                )
            _move(
                previous,
                Stage.PRODUCTION,
                cause=StageTransition.Cause.ROLLBACK,
                request=review,
                actor=rolled_back_by,
                changes=caused,
                break_glass=True,
            )
            promotion_event(caused, EventType.PROMOTION_REQUESTED, review, approvals=0, actor=rolled_back_by)
            changes.audit(
                AuditAction.REGISTERED_MODEL_ROLLED_BACK,
                obj=model,
                actor=rolled_back_by,
                changes={
                    "break_glass": True,
                    "production": [current.number if current else None, previous.number],
                    "review_request": review.pk,
                },
            )
        changes.audit(
            AuditAction.PROMOTION_REQUEST_OPENED,
            obj=review,
            actor=rolled_back_by,
            changes={"kind": review.kind, "break_glass": True},
        )
    return review


# Imports from another registry -------------------------------------------------------------------------------------


def model_version_stage_import(
    *, model_version: ModelVersion, stage: str, imported_from: str, imported_by: AbstractBaseUser
) -> tuple[ModelVersion, bool]:
    """Record the stage a version held in the registry it was imported from (`provenant import mlflow`): moved at
    once, in the stage history as `imported` with its source, never as a promotion nobody approved.

    Only a maintainer of the project may import a stage, and only while the model's stages have moved only by
    imports: once a promotion, a replacement or a rollback has moved one of its versions here, its stages are
    governed here and an import would bypass the reviewers. Importing the stage a version is in already records
    nothing (False). A second version cannot be imported into production: the model's production version is named.
    """
    imported_from = imported_from_clean(imported_from)
    if stage not in TARGET_STAGES and stage != Stage.ARCHIVED:
        raise InvalidInput("An imported stage is staging, production or archived.", field="stage")
    with transaction.atomic(), ChangeSet() as changes:
        model = model_lock(model_version.registered_model_id)
        if not can(imported_by, Verb.MANAGE, model.project):
            raise NotAllowed(
                f"Importing the stages of '{model.name}' needs the maintainer role on project '{model.project.slug}'."
            )
        version = ModelVersion.objects.select_related("artifact_version__artifact").get(pk=model_version.pk)
        version.registered_model = model
        if version.stage == stage:
            return version, False
        governed = (
            StageTransition.objects.filter(registered_model=model)
            .exclude(cause=StageTransition.Cause.IMPORTED)
            .select_related("model_version")
            .order_by("changed_at", "id")
            .first()
        )
        if governed is not None:
            raise Conflict(
                f"The stages of '{model.name}' are governed in Provenant since "
                f"{governed.changed_at:%Y-%m-%d %H:%M} UTC ({governed.get_cause_display().lower()}, "
                f"v{governed.model_version.number}): an imported stage would bypass its reviewers. "
                "Open a promotion request instead.",
                field="stage",
            )
        if stage == Stage.PRODUCTION and (current := _production_now(model.pk, excluding=version)) is not None:
            raise Conflict(
                f"v{current.number} of '{model.name}' is in production already; a model has one production version. "
                "Import the production stage of one version only.",
                field="stage",
            )
        _move(
            version,
            stage,
            cause=StageTransition.Cause.IMPORTED,
            request=None,
            actor=imported_by,
            changes=changes,
            imported_from=imported_from,
        )
    return version, True
