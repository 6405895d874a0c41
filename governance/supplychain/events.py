"""What the supply chain's events say: a signature attached to a version, and the server's verdict on it."""

from artifacts.events import version_reference
from core.audit.recorder import format_time
from core.changes import ChangeSet
from core.events import EventType
from governance.supplychain.models import VersionSignature


def signature_document(signature: VersionSignature) -> dict:
    key = signature.trusted_key
    return {
        "id": signature.pk,
        "method": signature.method,
        "verified": signature.verified,
        "trusted_key": {"id": key.pk, "name": key.name} if key is not None else None,
        "detail": signature.detail,
        "verified_at": format_time(signature.verified_at) if signature.verified_at else None,
    }


def signature_events(changes: ChangeSet, signature: VersionSignature, event_type: str, *, actor=None) -> None:
    """`version_signature.uploaded` or `version_signature.checked`, to the version's project."""
    assert event_type in (EventType.VERSION_SIGNATURE_UPLOADED, EventType.VERSION_SIGNATURE_CHECKED)
    version = signature.artifact_version
    changes.event(
        event_type,
        project=version.artifact.project,
        data={"signature": signature_document(signature), "artifact_version": version_reference(version)},
        actor=actor,
    )
