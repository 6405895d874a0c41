"""What the catalog's events say: a version published, a blob checked. Given to the change's ChangeSet, which
writes them through core.outbox."""

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Model

from artifacts.models import ArtifactVersion, Blob, Project
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


def artifact_version_published_event(changes: ChangeSet, version: Model, *, actor: AbstractBaseUser | None) -> None:
    artifact, blob, run = version.artifact, version.blob, version.run
    changes.event(
        EventType.ARTIFACT_VERSION_PUBLISHED,
        project=artifact.project,
        actor=actor,
        data={
            "artifact": {
                "id": artifact.pk,
                "name": artifact.name,
                "kind": artifact.kind,
                "url": api_url("artifact-detail", artifact.pk),
            },
            "artifact_version": {
                "id": version.pk,
                "number": version.number,
                "digest": blob.prefixed_digest,
                "size": blob.size,
                "media_type": version.media_type,
                "created_at": format_time(version.created_at),
                "url": api_url("artifactversion-detail", version.pk),
                "download_url": api_url("artifactversion-download", version.pk),
            },
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
