"""The event catalogue: every event type Provenant emits, and the JSON Schema of its payload.

Payloads are versioned: `version` in the envelope is EVENT_SCHEMA_VERSION. Within a version fields are only ever
added, never renamed, retyped or removed; a change that would break a receiver gets a new version. The schemas are
served at GET /api/v1/webhooks/event-types/ and every payload the tests emit is validated against them.
"""

from django.db import models

EVENT_SCHEMA_VERSION = 1


class EventType(models.TextChoices):
    ARTIFACT_VERSION_PUBLISHED = "artifact_version.published", "An artifact version was published"
    ARTIFACT_VERSION_DELETED = "artifact_version.deleted", "An artifact version was deleted (its record stays)"
    BLOB_VERIFIED = "blob.verified", "Stored bytes were proved to match their digest (first proof, or after repair)"
    BLOB_CORRUPT = "blob.corrupt", "Stored bytes no longer match their digest, or are missing"
    BLOB_SCANNED = "blob.scanned", "Stored bytes were scanned for their format and for code run on load"
    PROMOTION_REQUESTED = "promotion.requested", "A promotion of a model version was requested"
    PROMOTION_APPROVED = "promotion.approved", "A promotion request was approved"
    PROMOTION_REJECTED = "promotion.rejected", "A promotion request was rejected"
    PROMOTION_CLOSED = "promotion.closed", "A promotion request closed undecided: withdrawn, expired or invalidated"
    MODEL_VERSION_STAGE_CHANGED = "model_version.stage_changed", "A model version moved to another stage"
    ACCESS_REVIEW_COMPLETED = "access_review.completed", "An access review's last item was decided"
    LEGAL_HOLD_PLACED = "legal_hold.placed", "A legal hold was placed: what it covers is neither archived nor deleted"
    LEGAL_HOLD_RELEASED = "legal_hold.released", "A legal hold was released"
    VERSION_SIGNATURE_UPLOADED = "version_signature.uploaded", "A model signature was attached to a version"
    VERSION_SIGNATURE_CHECKED = (
        "version_signature.checked",
        "A version's model signature was checked: verified by a trusted key, or not and why",
    )
    WEBHOOK_TEST = "webhook.test", "A test event sent by hand to one endpoint"


#: Types an endpoint subscribes to; `webhook.test` goes only to the endpoint it was sent to, whatever it subscribes.
SUBSCRIBABLE_TYPES = [choice for choice in EventType.values if choice != EventType.WEBHOOK_TEST]

# Building blocks ----------------------------------------------------------------------------------------------

_ID = {"type": "integer"}
_URL = {"type": "string", "format": "uri"}
_TIME = {"type": "string", "format": "date-time"}
_DIGEST = {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}


def _object(properties: dict, *, nullable: bool = False) -> dict:
    schema = {"type": "object", "properties": properties, "required": sorted(properties)}
    return {"oneOf": [schema, {"type": "null"}]} if nullable else schema


PROJECT = _object({"id": _ID, "slug": {"type": "string"}, "name": {"type": "string"}, "url": _URL})
ACTOR = _object(
    {
        "kind": {"enum": ["user", "system"]},
        "id": {"type": ["integer", "null"]},
        "username": {"type": ["string", "null"]},
        "label": {"type": "string"},
    }
)
ARTIFACT = _object({"id": _ID, "name": {"type": "string"}, "kind": {"type": "string"}, "url": _URL})
ARTIFACT_VERSION = _object(
    {
        "id": _ID,
        "number": _ID,
        "digest": _DIGEST,
        "size": _ID,
        "media_type": {"type": "string"},
        "created_at": _TIME,
        "url": _URL,
        "download_url": _URL,
    }
)
RUN = _object(
    {"id": _ID, "external_id": {"type": "string"}, "code_commit": {"type": "string"}, "url": _URL}, nullable=True
)
BLOB = _object(
    {"digest": _DIGEST, "size": _ID, "state": {"enum": ["pending", "verified", "corrupt"]}, "verified_at": _TIME}
)
SCAN = _object(
    {
        "id": _ID,
        "detected_format": {"enum": ["pickle", "pytorch", "joblib", "numpy", "safetensors", "onnx", "gguf", "unknown"]},
        "scanner": {"type": "string"},
        "scanner_version": {"type": "string"},
        "verdict": {"enum": ["clean", "suspicious", "unsafe", "error", "not_applicable"]},
        "findings_count": _ID,
        "scanned_at": _TIME,
    }
)
VERSION_REF = _object(
    {"id": _ID, "artifact": {"type": "string"}, "number": _ID, "url": _URL},
)
MODEL_VERSION = _object(
    {
        "id": _ID,
        "model": {"type": "string"},
        "version": _ID,
        "stage": {"enum": ["none", "staging", "production", "archived"]},
        "artifact_version": VERSION_REF,
        "url": _URL,
    }
)
PROMOTION = _object(
    {
        "id": _ID,
        "kind": {"enum": ["promotion", "rollback_review"]},
        "target_stage": {"enum": ["staging", "production", "archived"]},
        "state": {"enum": ["open", "approved", "rejected", "withdrawn", "expired", "invalidated"]},
        "requested_by": {"type": "string"},
        "approvals": _ID,
        "approvals_required": _ID,
        "url": _URL,
    }
)
LEGAL_HOLD = _object(
    {
        "id": _ID,
        "scope": {"enum": ["project", "artifact", "artifact_version", "dataset", "dataset_version"]},
        # What the hold names inside its project (null for the whole project): its id and its name ("proj/model",
        # "proj/model@v3").
        "target": _object({"id": _ID, "label": {"type": "string"}}, nullable=True),
        "reason": {"type": "string"},
        "placed_by": {"type": "string"},
        "placed_at": _TIME,
        "active": {"type": "boolean"},
        "released_by": {"type": ["string", "null"]},
        "released_at": {"oneOf": [_TIME, {"type": "null"}]},
        "release_reason": {"type": "string"},
        "url": _URL,
    }
)

TOMBSTONE = _object(
    {
        "deleted_at": _TIME,
        "deleted_by": {"type": ["string", "null"]},
        "reason": {"type": "string"},
        "rule": {"type": "string"},
        "plan_id": {"type": ["integer", "null"]},
    }
)

SIGNATURE = _object(
    {
        "id": _ID,
        "method": {"enum": ["key", "certificate"]},
        "verified": {"type": "boolean"},
        "trusted_key": {"oneOf": [_object({"id": _ID, "name": {"type": "string"}}), {"type": "null"}]},
        "detail": {"type": "string"},
        "verified_at": {"oneOf": [_TIME, {"type": "null"}]},
    }
)

DATA_SCHEMAS: dict[str, dict] = {
    EventType.ARTIFACT_VERSION_PUBLISHED: _object(
        {"artifact": ARTIFACT, "artifact_version": ARTIFACT_VERSION, "run": RUN}
    ),
    EventType.ARTIFACT_VERSION_DELETED: _object(
        {"artifact": ARTIFACT, "artifact_version": ARTIFACT_VERSION, "deleted": TOMBSTONE}
    ),
    EventType.BLOB_VERIFIED: _object(
        {"blob": BLOB, "artifact_versions": {"type": "array", "items": VERSION_REF}, "repaired": {"type": "boolean"}}
    ),
    EventType.BLOB_CORRUPT: _object(
        {
            "blob": BLOB,
            "artifact_versions": {"type": "array", "items": VERSION_REF},
            "found": _object({"digest": {"oneOf": [_DIGEST, {"type": "null"}]}, "size": _ID}),
        }
    ),
    EventType.BLOB_SCANNED: _object(
        {"blob": BLOB, "artifact_versions": {"type": "array", "items": VERSION_REF}, "scan": SCAN}
    ),
    EventType.PROMOTION_REQUESTED: _object({"promotion_request": PROMOTION, "model_version": MODEL_VERSION}),
    EventType.PROMOTION_APPROVED: _object({"promotion_request": PROMOTION, "model_version": MODEL_VERSION}),
    EventType.PROMOTION_REJECTED: _object({"promotion_request": PROMOTION, "model_version": MODEL_VERSION}),
    EventType.PROMOTION_CLOSED: _object(
        {"promotion_request": PROMOTION, "model_version": MODEL_VERSION, "reason": {"type": "string"}}
    ),
    EventType.MODEL_VERSION_STAGE_CHANGED: _object(
        {
            "model_version": MODEL_VERSION,
            "from_stage": {"enum": ["none", "staging", "production", "archived"]},
            "to_stage": {"enum": ["none", "staging", "production", "archived"]},
            "cause": {"enum": ["promotion", "replaced", "rollback", "imported"]},
            "break_glass": {"type": "boolean"},
        }
    ),
    EventType.ACCESS_REVIEW_COMPLETED: _object(
        {
            "access_review": _object(
                {
                    "id": _ID,
                    "title": {"type": "string"},
                    "opened_at": _TIME,
                    "completed_at": _TIME,
                    "items": _ID,
                    "kept": _ID,
                    "revoked": _ID,
                }
            )
        }
    ),
    EventType.LEGAL_HOLD_PLACED: _object({"legal_hold": LEGAL_HOLD}),
    EventType.LEGAL_HOLD_RELEASED: _object({"legal_hold": LEGAL_HOLD}),
    EventType.VERSION_SIGNATURE_UPLOADED: _object({"signature": SIGNATURE, "artifact_version": VERSION_REF}),
    EventType.VERSION_SIGNATURE_CHECKED: _object({"signature": SIGNATURE, "artifact_version": VERSION_REF}),
    EventType.WEBHOOK_TEST: _object({"endpoint": _object({"id": _ID, "url": _URL}), "message": {"type": "string"}}),
}


def payload_schema(event_type: str) -> dict:
    """The JSON Schema of a whole delivery body of `event_type`: the envelope with its `data`."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": event_type,
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^msg_[0-9a-f]{24}$"},
            "type": {"const": event_type},
            "version": {"const": EVENT_SCHEMA_VERSION},
            "timestamp": _TIME,
            "project": PROJECT,
            "actor": ACTOR,
            "data": DATA_SCHEMAS[event_type],
        },
        "required": ["actor", "data", "id", "project", "timestamp", "type", "version"],
    }
