"""What the catalog's events say: a version published, a blob checked. Given to the change's ChangeSet, which
writes them through core.outbox."""

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Model

from artifacts.models import ArtifactVersion, Blob, Project, VersionTombstone
from core.audit.recorder import format_time
from core.changes import ChangeSet
from core.events import EventType
from core.outbox import api_url

#: The versions a blob event lists, at most: a blob shared by more is named by its digest, which finds the rest.
BLOB_EVENT_VERSIONS = 100


# What each event says --------------------------------------------------------------------------------------------


def version_reference(version: Model) -> dict:
    return {
        "id": version.pk,
        "artifact": version.artifact.name,
        "number": version.number,
        "url": api_url("artifactversion-detail", version.pk),
    }


def _artifact_document(artifact: Model) -> dict:
    return {
        "id": artifact.pk,
        "name": artifact.name,
        "kind": artifact.kind,
        "url": api_url("artifact-detail", artifact.pk),
    }


def _artifact_version_document(version: Model) -> dict:
    blob = version.blob
    return {
        "id": version.pk,
        "number": version.number,
        "digest": blob.prefixed_digest,
        "size": blob.size,
        "media_type": version.media_type,
        "created_at": format_time(version.created_at),
        "url": api_url("artifactversion-detail", version.pk),
        "download_url": api_url("artifactversion-download", version.pk),
    }


def tombstone_document(tombstone: VersionTombstone) -> dict:
    """What a deleted version's answers say of its deletion: events, the API's `deleted`, a 410's body."""
    return {
        "deleted_at": format_time(tombstone.deleted_at),
        "deleted_by": tombstone.deleted_by.get_username() if tombstone.deleted_by_id else None,  # null: the schedule
        "reason": tombstone.reason,
        "rule": tombstone.rule,
        "plan_id": tombstone.plan_id,
    }


def artifact_version_deleted_event(
    changes: ChangeSet, version: Model, tombstone: VersionTombstone, *, actor: AbstractBaseUser | None
) -> None:
    changes.event(
        EventType.ARTIFACT_VERSION_DELETED,
        project=version.artifact.project,
        actor=actor,
        data={
            "artifact": _artifact_document(version.artifact),
            "artifact_version": _artifact_version_document(version),
            "deleted": tombstone_document(tombstone),
        },
    )


def artifact_version_published_event(changes: ChangeSet, version: Model, *, actor: AbstractBaseUser | None) -> None:
    artifact, run = version.artifact, version.run
    changes.event(
        EventType.ARTIFACT_VERSION_PUBLISHED,
        project=artifact.project,
        actor=actor,
        data={
            "artifact": _artifact_document(artifact),
            "artifact_version": _artifact_version_document(version),
            "run": None
            if run is None
            else {
                "id": run.pk,
                "external_id": run.external_id,
                "code_commit": run.code_commit,
                "url": api_url("run-detail", run.pk),
            },
        },
    )


def blob_checked_events(changes: ChangeSet, blob: Model, *, before: str, found: Mapping[str, Any]) -> None:
    """`blob.verified` when a blob becomes verified (its first proof, or proof after a repair) and `blob.corrupt`
    when it becomes corrupt, once for each project holding it. A re-check that confirms the state it had is
    audited but emits nothing: the scrub re-proves every blob periodically, and receivers want changes."""
    if blob.state == before:
        return
    corrupt = blob.state == Blob.State.CORRUPT
    blob_document = {
        "digest": blob.prefixed_digest,
        "size": blob.size,
        "state": blob.state,
        "verified_at": format_time(blob.verified_at),
    }
    projects = Project.objects.filter(blob_links__blob=blob).order_by("pk")
    for project in projects:
        versions = (
            ArtifactVersion.objects.filter(blob=blob, artifact__project=project)
            .select_related("artifact")
            .order_by("pk")[:BLOB_EVENT_VERSIONS]
        )
        data: dict[str, Any] = {"blob": blob_document, "artifact_versions": [version_reference(v) for v in versions]}
        if corrupt:
            data["found"] = dict(found)
        else:
            data["repaired"] = before == Blob.State.CORRUPT
        changes.event(EventType.BLOB_CORRUPT if corrupt else EventType.BLOB_VERIFIED, project=project, data=data)
