"""The audit log's vocabulary: every action an entry can name, what it records, and how it relates to the event
types webhooks carry.

Audit actions and event types are two vocabularies on purpose. The log records every act, in the words of the
object acted on (`promotion_request.approved_by_reviewer`: a reviewer's decision on a request, one entry per
reviewer), reads of bytes included; events announce to other systems the few changes they act on, in the words of
the process (`promotion.approved`: the request gained an approval), and a receiver relies on their names staying
put. Where an act is both recorded and announced, `RECORDED_AS` names the actions an event type's act is logged as.

`audit_record` refuses an action that is not declared here, so a new action cannot reach the log without a name
and a description in this list (which the schema's enums and the README's table are checked against).
"""

import difflib

from django.db import models

from core.events import EventType


class AuditAction(models.TextChoices):
    PROJECT_CREATED = "project.created", "A project was created (its creator becomes its first maintainer)"
    PROJECT_UPDATED = "project.updated", "A project's name or description changed"
    DATASET_CREATED = "dataset.created", "A dataset was created"
    DATASET_UPDATED = "dataset.updated", "A dataset's description changed"
    DATASET_VERSION_CREATED = "dataset_version.created", "A dataset version was pinned (a blob, or a URI and manifest)"
    RUN_CREATED = "run.created", "A run was recorded (its parameters' names, metrics, commit)"
    RUN_UPDATED = "run.updated", "A run's status, metrics or end time changed"
    ARTIFACT_CREATED = "artifact.created", "An artifact was created"
    ARTIFACT_UPDATED = "artifact.updated", "An artifact's description or restriction changed"
    ARTIFACT_VERSION_PUBLISHED = "artifact_version.published", "An artifact version was published"
    ARTIFACT_VERSION_DELETED = (
        "artifact_version.deleted",
        "An artifact version was deleted: its record stays as a tombstone (who, when, why, which rule or plan)",
    )
    DATASET_VERSION_DELETED = (
        "dataset_version.deleted",
        "A dataset version was deleted: its record stays as a tombstone (who, when, why, which rule or plan)",
    )
    BLOB_STORED = "blob.stored", "New bytes were stored under their digest"
    BLOB_REPAIRED = "blob.repaired", "Bytes found corrupt were received again, intact"
    PROJECT_BLOB_CLAIMED = "project_blob.claimed", "A project uploaded bytes the store already held"
    BLOB_VERIFIED = "blob.verified", "Stored bytes were read back and matched their digest (every check is logged)"
    BLOB_CORRUPT = "blob.corrupt", "Stored bytes no longer matched their digest, or were missing"
    BLOB_SCANNED = (
        "blob.scanned",
        "Stored bytes were scanned: the format detected, the verdict and the findings (imports, opcodes, headers)",
    )
    BLOB_COLLECTED = "blob.collected", "Bytes no live version used any more were removed from storage"
    BLOB_DOWNLOADED = "blob.downloaded", "Bytes were handed out: a whole download or a byte range"
    BLOB_PRESIGNED_URL_ISSUED = "blob.presigned_url_issued", "A presigned URL to the bytes was handed out"
    BLOB_ARCHIVED = "blob.archived", "Stored bytes were moved to a colder S3 storage class"
    BLOB_RESTORE_REQUESTED = "blob.restore_requested", "A restore was requested of archived bytes not readable at once"
    UPLOAD_SESSION_STARTED = "upload_session.started", "A resumable upload session was opened"
    UPLOAD_SESSION_SEALED = "upload_session.sealed", "An upload session received its last byte and is being checked"
    UPLOAD_SESSION_FINISHED = "upload_session.finished", "An upload session's bytes matched their digest and were kept"
    UPLOAD_SESSION_FAILED = "upload_session.failed", "An upload session's bytes did not match their digest"
    UPLOAD_SESSION_CANCELLED = "upload_session.cancelled", "An upload session was cancelled by its client"
    UPLOAD_SESSION_EXPIRED = "upload_session.expired", "An idle upload session expired and its partial data was removed"
    ROLE_GRANT_GRANTED = "role_grant.granted", "A role was granted to a user or group on a project or artifact"
    ROLE_GRANT_REVOKED = "role_grant.revoked", "A role grant was revoked"
    API_TOKEN_ISSUED = "api_token.issued", "An API token was issued (never its secret)"
    API_TOKEN_REVOKED = "api_token.revoked", "An API token was revoked"
    API_TOKEN_USED = (
        "api_token.used",
        "An API token was used from an address: one entry per token, address and hour, written by the first use",
    )
    SERVICE_ACCOUNT_CREATED = "service_account.created", "A user was made a service account owned by a project"
    SERVICE_ACCOUNT_DEACTIVATED = (
        "service_account.deactivated",
        "A service account was switched off by its project's maintainers: its tokens stop working",
    )
    ACCESS_REVIEW_OPENED = "access_review.opened", "An access review campaign was opened"
    ACCESS_REVIEW_ITEM_DECIDED = "access_review_item.decided", "A grant under review was kept or revoked"
    ACCESS_REVIEW_COMPLETED = "access_review.completed", "An access review's last item was decided"
    REGISTERED_MODEL_CREATED = "registered_model.created", "A model was registered"
    REGISTERED_MODEL_UPDATED = "registered_model.updated", "A model's owners, card or description changed"
    MODEL_VERSION_REGISTERED = "model_version.registered", "An artifact version was registered as a model version"
    MODEL_VERSION_STAGE_CHANGED = "model_version.stage_changed", "A model version moved to another stage"
    MODEL_ALIAS_SET = "model_alias.set", "A model alias was set or moved to a version"
    MODEL_ALIAS_DELETED = "model_alias.deleted", "A model alias was removed"
    REGISTERED_MODEL_ROLLED_BACK = (
        "registered_model.rolled_back",
        "A maintainer rolled production back to the previous version at once (break glass), opening its review",
    )
    PROMOTION_POLICY_CHANGED = "promotion_policy.changed", "A project's promotion policy got a new version"
    PROMOTION_REQUEST_OPENED = "promotion_request.opened", "A promotion was requested (or a rollback's review opened)"
    PROMOTION_REQUEST_APPROVED_BY_REVIEWER = (
        "promotion_request.approved_by_reviewer",
        "A reviewer approved a promotion request (one entry per reviewer)",
    )
    PROMOTION_REQUEST_REJECTED_BY_REVIEWER = (
        "promotion_request.rejected_by_reviewer",
        "A reviewer rejected a promotion request",
    )
    PROMOTION_REQUEST_COMMENTED = (
        "promotion_request.commented",
        "Someone added a comment to a promotion request's discussion (its id, not its text)",
    )
    PROMOTION_REQUEST_APPROVED = "promotion_request.approved", "A promotion request closed approved and was applied"
    PROMOTION_REQUEST_REJECTED = "promotion_request.rejected", "A promotion request closed rejected"
    PROMOTION_REQUEST_WITHDRAWN = "promotion_request.withdrawn", "A promotion request was withdrawn by its requester"
    PROMOTION_REQUEST_EXPIRED = "promotion_request.expired", "A promotion request expired undecided"
    PROMOTION_REQUEST_INVALIDATED = (
        "promotion_request.invalidated",
        "A promotion request was closed because its version changed stage or its bytes were found corrupt",
    )
    RETENTION_POLICY_CHANGED = "retention_policy.changed", "A project's retention rules got a new version"
    LEGAL_HOLD_PLACED = "legal_hold.placed", "A legal hold was placed on a project, an artifact, a dataset or a version"
    LEGAL_HOLD_RELEASED = "legal_hold.released", "A legal hold was released"
    RETENTION_PLAN_CREATED = (
        "retention_plan.created",
        "The retention rules were run: a plan lists what they would delete or archive, and what protects the rest",
    )
    RETENTION_PLAN_APPLIED = (
        "retention_plan.applied",
        "A retention plan was applied to its end (each deletion is logged as well)",
    )
    WEBHOOK_ENDPOINT_CREATED = "webhook_endpoint.created", "A webhook endpoint was registered"
    WEBHOOK_ENDPOINT_UPDATED = "webhook_endpoint.updated", "A webhook endpoint's URL, event types or state changed"
    WEBHOOK_ENDPOINT_SECRET_ROTATED = "webhook_endpoint.secret_rotated", "An endpoint's signing secret was rotated"
    WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled", "A failing webhook endpoint was disabled by the system"
    WEBHOOK_ENDPOINT_DELETED = "webhook_endpoint.deleted", "A webhook endpoint was deleted"
    WEBHOOK_DELIVERY_RESENT = "webhook_delivery.resent", "A webhook delivery was re-sent by hand"
    USER_LOGGED_IN = "user.logged_in", "A person signed in (portal or admin)"
    USER_LOGGED_OUT = "user.logged_out", "A person signed out"
    USER_LOGIN_FAILED = "user.login_failed", "A sign-in failed (the username tried, never the password)"
    USER_SESSION_EXPIRED = (
        "user.session_expired",
        "A session was ended by the server: idle too long, or open longer than the absolute limit (which, in changes)",
    )
    USER_REAUTHENTICATED = (
        "user.reauthenticated",
        "A signed-in person confirmed who they are again (password or second factor; the method in changes), as a "
        "step-up before a consequential act",
    )
    USER_MFA_ADDED = "user.mfa_added", "A person added a second factor (an authenticator app; its type in changes)"
    USER_MFA_REMOVED = "user.mfa_removed", "A person removed a second factor (its type in changes)"
    USER_MFA_RECOVERY_CODES_REGENERATED = (
        "user.mfa_recovery_codes_regenerated",
        "A person replaced their recovery codes with a new set (the old ones no longer work)",
    )
    USER_MFA_FAILED = (
        "user.mfa_failed",
        "A second-factor code was refused, at sign-in or re-authentication (the password had been accepted)",
    )
    USER_MFA_RECOVERY_CODE_USED = (
        "user.mfa_recovery_code_used",
        "A person signed in or re-authenticated with one of their recovery codes (each works once)",
    )
    VULNERABILITY_DATA_IMPORTED = (
        "vulnerability_data.imported",
        "An operator imported an OSV vulnerability archive (its SHA-256 and what it added, updated, skipped)",
    )
    AUDIT_LOG_EXPORTED = "audit_log.exported", "The log, whole or filtered, was exported (a filter is in changes)"
    TRUSTED_SIGNING_KEY_ADDED = (
        "trusted_signing_key.added",
        "A project began trusting a signing key or certificate chain for model signatures",
    )
    TRUSTED_SIGNING_KEY_REVOKED = (
        "trusted_signing_key.revoked",
        "A project stopped trusting a signing key (the signatures it verified no longer count)",
    )
    VERSION_SIGNATURE_UPLOADED = "version_signature.uploaded", "A model signature bundle was attached to a version"
    VERSION_SIGNATURE_CHECKED = (
        "version_signature.checked",
        "A model signature was checked against the version's bytes and the trusted keys (the verdict is in changes)",
    )
    PROVENANCE_ATTESTATION_READ = (
        "provenance_attestation.read",
        "A version's signed provenance attestation was handed out (made and signed on the first request)",
    )
    ATTESTATION_KEY_ROTATED = (
        "attestation_key.rotated",
        "The key that signs provenance attestations was replaced; the old one stays published, retired",
    )


#: Actions that hand out an artifact's bytes; recorded against the blob, through whichever endpoint served them.
READ_ACTIONS = (AuditAction.BLOB_DOWNLOADED, AuditAction.BLOB_PRESIGNED_URL_ISSUED)


#: Every action of a kind: the prefixes the entries filter takes (`promotion_request.`), each ending with a dot.
ACTION_PREFIXES: list[str] = sorted({f"{action.split('.')[0]}." for action in AuditAction.values})

#: For each event type, the audit actions the same act is recorded as (an event type is never an audit action's
#: name by accident only: some, such as `artifact_version.published`, are both). `webhook.test` is not recorded.
RECORDED_AS: dict[str, list[str]] = {
    EventType.ARTIFACT_VERSION_PUBLISHED: [AuditAction.ARTIFACT_VERSION_PUBLISHED],
    EventType.ARTIFACT_VERSION_DELETED: [AuditAction.ARTIFACT_VERSION_DELETED],
    EventType.BLOB_VERIFIED: [AuditAction.BLOB_VERIFIED],
    EventType.BLOB_CORRUPT: [AuditAction.BLOB_CORRUPT],
    EventType.BLOB_SCANNED: [AuditAction.BLOB_SCANNED],
    EventType.PROMOTION_REQUESTED: [AuditAction.PROMOTION_REQUEST_OPENED],
    EventType.PROMOTION_APPROVED: [
        AuditAction.PROMOTION_REQUEST_APPROVED_BY_REVIEWER,
        AuditAction.PROMOTION_REQUEST_APPROVED,
    ],
    EventType.PROMOTION_REJECTED: [
        AuditAction.PROMOTION_REQUEST_REJECTED_BY_REVIEWER,
        AuditAction.PROMOTION_REQUEST_REJECTED,
    ],
    EventType.PROMOTION_CLOSED: [
        AuditAction.PROMOTION_REQUEST_WITHDRAWN,
        AuditAction.PROMOTION_REQUEST_EXPIRED,
        AuditAction.PROMOTION_REQUEST_INVALIDATED,
    ],
    EventType.MODEL_VERSION_STAGE_CHANGED: [AuditAction.MODEL_VERSION_STAGE_CHANGED],
    EventType.ACCESS_REVIEW_COMPLETED: [AuditAction.ACCESS_REVIEW_COMPLETED],
    EventType.LEGAL_HOLD_PLACED: [AuditAction.LEGAL_HOLD_PLACED],
    EventType.LEGAL_HOLD_RELEASED: [AuditAction.LEGAL_HOLD_RELEASED],
    EventType.VERSION_SIGNATURE_UPLOADED: [AuditAction.VERSION_SIGNATURE_UPLOADED],
    EventType.VERSION_SIGNATURE_CHECKED: [AuditAction.VERSION_SIGNATURE_CHECKED],
    EventType.WEBHOOK_TEST: [],
}

#: The other way round, for the glossary of actions: for each action, the event types announcing the same act (most
#: announce none: the log records far more than other systems are told).
ANNOUNCED_AS: dict[str, list[str]] = {
    action: [event for event, actions in RECORDED_AS.items() if action in actions] for action in AuditAction.values
}


class UndeclaredAuditAction(ValueError):
    """A programming error: the code tried to record an action `AuditAction` does not declare."""


def declared_action(action: str) -> AuditAction:
    """`action` as the declared member, or UndeclaredAuditAction naming where to declare it."""
    try:
        return AuditAction(action)
    except ValueError:
        raise UndeclaredAuditAction(
            f"Audit action {action!r} is not declared: add it, with what it records, to AuditAction in "
            "core/audit/actions.py (and to the README's table of audit actions)."
        ) from None


def action_filter_problem(value: str) -> str | None:
    """Why `value` selects nothing as the entries filter's `action`, with the nearest known names; None when it is
    a declared action or the prefix of a declared kind (`role_grant.`)."""
    if value in AuditAction.values or value in ACTION_PREFIXES:
        return None
    if value in RECORDED_AS:
        recorded = RECORDED_AS[value]
        how = (
            f"the log records that act as {', '.join(recorded)}"
            if recorded
            else "sending it is not recorded in the log"
        )
        return f"'{value}' is a webhook event type, not an audit action: {how}."
    event_kinds = sorted({event for event in RECORDED_AS if event.startswith(value)}) if value.endswith(".") else []
    if event_kinds:
        actions = sorted({action for event in event_kinds for action in RECORDED_AS[event]})
        kinds = sorted({f"'{action.split('.')[0]}.'" for action in actions})
        return (
            f"No audit action starts with '{value}': that is a prefix of webhook event types "
            f"({', '.join(event_kinds)}), whose acts the log records as {', '.join(actions)}. "
            f"For every action of those kinds use {' or '.join(kinds)}."
        )
    known = [*AuditAction.values, *ACTION_PREFIXES]
    nearest = difflib.get_close_matches(value, known, n=4, cutoff=0.5)
    kind = "prefix" if value.endswith(".") else "action"
    suggestion = f" Did you mean {' or '.join(nearest)}?" if nearest else ""
    return (
        f"No audit {kind} is named '{value}'.{suggestion} Give an action's exact name, or the kind followed by a "
        f"dot for all its actions ({', '.join(ACTION_PREFIXES)}); GET /api/v1/schema/ lists every action."
    )
