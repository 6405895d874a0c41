"""Deletion that keeps provenance: a deleted version keeps its row and gains a tombstone, and the garbage collector
removes bytes from storage once no live version in any project needs them.

Which versions may be deleted (retention rules, legal holds, promoted models) is the lifecycle area's judgement
(governance/lifecycle); this module only carries a deletion out and keeps the store consistent while it does.

Race safety rests on one row lock, the blob's. `blob_collect` takes it (FOR UPDATE), then asks whether a live
version uses the blob, deletes the object and sets `collected_at` while still holding it. Everything that makes a
version point at a blob (`services.blobs.blob_locked_stored`) or records received bytes
(`services.blobs.record_received_blob`) takes the same lock and then reads `collected_at`: so either the collector
runs first and the other sees the bytes gone (a publish is refused with `blob_collected`; an upload that wrote the
bytes after the delete stores the blob again, one whose write the delete removed is refused), or the other commits
first and the collector's check, issued after its lock, sees the new version. The collector's FOR UPDATE also
conflicts with the KEY SHARE lock PostgreSQL takes for any insert referencing the blob, a net under any path that
forgot the explicit lock. tests/integration/test_gc_races.py forces each interleaving on PostgreSQL.
"""

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from artifacts.events import artifact_version_deleted_event
from artifacts.jobs import COLLECT_BLOB
from artifacts.models import ArtifactVersion, Blob, DatasetVersion, Project, VersionTombstone
from artifacts.selectors import blobs_to_collect
from artifacts.storage import blob_storage
from core.audit.actions import AuditAction
from core.audit.recorder import AuditObject
from core.changes import ChangeSet
from core.errors import InvalidInput
from core.jobs import enqueue_on_commit

logger = logging.getLogger(__name__)


def version_delete(
    *,
    version: ArtifactVersion | DatasetVersion,
    deleted_by: AbstractBaseUser | None,
    reason: str,
    rule: str = "",
    plan_id: int | None = None,
) -> VersionTombstone:
    """Delete `version`: it keeps its row (digest, size, run, lineage, history) and gains a tombstone saying who
    (`deleted_by`; None: a project's schedule), when and why; its downloads answer 410 Gone from then on.

    Idempotent: a version deleted already answers its existing tombstone and records nothing. Protections are not
    judged here (the lifecycle area does, before calling). Once the deletion commits, the blob's collection is
    queued; a caller that wants to know whether the bytes went calls `blob_collect` itself after its commit.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidInput(
            "Say why the version is deleted: the reason is shown to whoever asks for it.", field="reason"
        )
    with transaction.atomic(), ChangeSet() as changes:
        if isinstance(version, ArtifactVersion):
            version = (
                ArtifactVersion.objects.select_for_update(of=("self",), no_key=True)
                .select_related("artifact__project", "blob")
                .get(pk=version.pk)
            )
            project, kind = version.artifact.project, "artifact_version"
        else:
            version = (
                DatasetVersion.objects.select_for_update(of=("self",), no_key=True)
                .select_related("dataset__project", "blob")
                .get(pk=version.pk)
            )
            project, kind = version.dataset.project, "dataset_version"
        existing = VersionTombstone.objects.filter(**{kind: version}).first()
        if existing is not None:
            return existing
        tombstone = VersionTombstone.objects.create(
            project=project,
            deleted_by=deleted_by,
            deleted_at=timezone.now(),
            reason=reason,
            rule=rule,
            plan_id=plan_id,
            **{kind: version},
        )
        recorded = {
            "reason": reason,
            "rule": rule,
            "plan_id": plan_id,
            "digest": version.blob.prefixed_digest if version.blob_id else None,
            "size": version.blob.size if version.blob_id else None,
        }
        if kind == "artifact_version":
            artifact_version_deleted_event(changes, version, tombstone, actor=deleted_by)
            changes.audit(AuditAction.ARTIFACT_VERSION_DELETED, obj=version, actor=deleted_by, changes=recorded)
        else:
            changes.audit(AuditAction.DATASET_VERSION_DELETED, obj=version, actor=deleted_by, changes=recorded)
        if version.blob_id is not None:
            # robust: the deletion stands without it; a later deletion or sweep asks again.
            enqueue_on_commit(COLLECT_BLOB, version.blob_id, robust=True)
    return tombstone


def _live_versions_use(blob: Blob) -> bool:
    live_artifact = ArtifactVersion.objects.filter(blob=blob, tombstone__isnull=True)
    live_dataset = DatasetVersion.objects.filter(blob=blob, tombstone__isnull=True)
    return live_artifact.exists() or live_dataset.exists()


def _deleted_versions_use(blob: Blob) -> bool:
    deleted_artifact = ArtifactVersion.objects.filter(blob=blob, tombstone__isnull=False)
    deleted_dataset = DatasetVersion.objects.filter(blob=blob, tombstone__isnull=False)
    return deleted_artifact.exists() or deleted_dataset.exists()


def blob_collect(*, blob_id: int) -> bool:
    """Remove the blob's bytes from storage if no live version in any project uses them and at least one deleted
    version did; answer whether they were removed. Safe to run twice, and against any concurrent upload or
    publish of the same bytes (see the module's docstring).

    Bytes only uploaded (held by a project, no version yet) are left alone: a deleted version is what makes bytes
    garbage. The storage object is deleted while the row lock is held, before `collected_at` commits: if the
    commit then fails the blob looks stored but is missing, which the scrub reports as corrupt and a new upload
    repairs, rather than the other way round (bytes present that the record says are gone, for ever).
    """
    with transaction.atomic(), ChangeSet() as changes:
        blob = Blob.objects.select_for_update().filter(pk=blob_id).first()
        if blob is None or blob.is_collected:
            return False
        # Issued after the lock: a publish that committed while this waited is seen here.
        if _live_versions_use(blob) or not _deleted_versions_use(blob):
            return False
        blob_storage().delete(blob.storage_key)
        changes.update(blob, collected_at=timezone.now())
        for project in Project.objects.filter(blob_links__blob=blob).order_by("pk"):
            changes.audit(
                AuditAction.BLOB_COLLECTED,
                obj=AuditObject(
                    type="blob",
                    id=str(blob.pk),
                    label=blob.prefixed_digest,
                    project_id=project.pk,
                    project_label=project.slug,
                ),
                changes={"digest": blob.prefixed_digest, "size": blob.size, "collected_at": blob.collected_at},
            )
    logger.info("Blob %s collected (%d bytes freed).", blob.prefixed_digest, blob.size)
    return True


def blobs_collect() -> int:
    """Collect every blob no live version uses any more; answer how many were removed. Each deletion queues its own
    collection; this sweep (beat's `collect-garbage`) catches those a broker outage dropped. Each blob is decided
    in its own transaction, under its own lock, by blob_collect."""
    return sum(blob_collect(blob_id=blob_id) for blob_id in blobs_to_collect().values_list("pk", flat=True))
