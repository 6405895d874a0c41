"""What the supply-chain area's events say: a blob scanned, a signature attached to a version and the server's
verdict on it. Given to the change's ChangeSet, which writes them through core.outbox."""

from typing import Any

from artifacts.events import BLOB_EVENT_VERSIONS, version_reference
from artifacts.models import ArtifactVersion, Blob, Project
from core.audit.recorder import format_time
from core.changes import ChangeSet
from core.events import EventType
from governance.supplychain.models import BlobScan, VersionSignature


def scan_document(scan: BlobScan) -> dict[str, Any]:
    """A scan as events and the audit log summarise it: the findings themselves are in the API and the portal."""
    return {
        "id": scan.pk,
        "detected_format": scan.detected_format,
        "scanner": scan.scanner,
        "scanner_version": scan.scanner_version,
        "verdict": scan.verdict,
        "findings_count": scan.findings_count,
        "scanned_at": format_time(scan.scanned_at),
    }


def blob_scanned_events(changes: ChangeSet, blob: Blob, scan: BlobScan) -> None:
    """`blob.scanned`, once for each project holding the blob, naming its versions there (as `blob.verified` does):
    every scan is announced, a rescan too, since a newer scanner may change the verdict a gate reads."""
    blob_document = {
        "digest": blob.prefixed_digest,
        "size": blob.size,
        "state": blob.state,
        "verified_at": format_time(blob.verified_at),
    }
    for project in Project.objects.filter(blob_links__blob=blob).order_by("pk"):
        versions = (
            ArtifactVersion.objects.filter(blob=blob, artifact__project=project)
            .select_related("artifact")
            .order_by("pk")[:BLOB_EVENT_VERSIONS]
        )
        changes.event(
            EventType.BLOB_SCANNED,
            project=project,
            data={
                "blob": blob_document,
                "artifact_versions": [version_reference(v) for v in versions],
                "scan": scan_document(scan),
            },
        )


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
