"""Deletion that keeps provenance: a deleted version keeps its row and gains a tombstone, and the garbage collector
removes bytes from storage once no live version in any project needs them.

Which versions may be deleted (retention rules, legal holds, promoted models) is the lifecycle area's judgement
(governance/lifecycle); this module only carries a deletion out and keeps the store consistent while it does.

Race safety rests on one row lock, the blob's. The collector (`blobs_collect_batch`; `blob_collect` is a batch of
one) takes it (FOR UPDATE, a batch's rows in id order), then asks whether a live version uses the blob, deletes the
object and sets `collected_at` while still holding it. Everything that makes a
version point at a blob (`services.blobs.blob_locked_stored`) or records received bytes
(`services.blobs.record_received_blob`) takes the same lock and then reads `collected_at`: so either the collector
runs first and the other sees the bytes gone (a publish is refused with `blob_collected`; an upload that wrote the
bytes after the delete stores the blob again, one whose write the delete removed is refused), or the other commits
first and the collector's check, issued after its lock, sees the new version. The collector's FOR UPDATE also
conflicts with the KEY SHARE lock PostgreSQL takes for any insert referencing the blob, a net under any path that
forgot the explicit lock. tests/integration/test_gc_races.py forces each interleaving on PostgreSQL.
"""

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from artifacts.events import artifact_version_deleted_event
from artifacts.jobs import COLLECT_BLOB
from artifacts.models import ArtifactVersion, Blob, DatasetVersion, Project, ProjectBlob, VersionTombstone
from artifacts.selectors import blobs_to_collect
from artifacts.storage import blob_storage, is_s3, s3_object_key
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
    A batch of one: `versions_delete` says how.
    """
    [tombstone] = versions_delete(
        deletions=[Deletion(version, reason, rule)], deleted_by=deleted_by, plan_id=plan_id, queue_collection=True
    )
    return tombstone


@dataclass(frozen=True)
class Deletion:
    """One version to delete, why, and under which retention rule (if one chose it)."""

    version: ArtifactVersion | DatasetVersion
    reason: str
    rule: str = ""


def versions_delete(
    *,
    deletions: Sequence[Deletion],
    deleted_by: AbstractBaseUser | None,
    plan_id: int | None = None,
    queue_collection: bool = True,
) -> list[VersionTombstone]:
    """Delete many versions in one transaction, each as `version_delete` deletes one; answer their tombstones in
    the order given (an existing one for a version deleted already, which records nothing).

    The versions' rows are locked in id order with one query per kind and the tombstones written with one INSERT;
    each deletion still has its own audit entry and event. `queue_collection=False` is for a caller that collects
    the blobs itself right after the commit (a retention plan's batch): beat's sweep is then the net if it dies
    between the two, rather than one queued task per blob.
    """
    for deletion in deletions:
        if not deletion.reason.strip():
            raise InvalidInput(
                "Say why the version is deleted: the reason is shown to whoever asks for it.", field="reason"
            )
    with transaction.atomic(), ChangeSet() as changes:
        locked = {
            **_locked(ArtifactVersion, "artifact__project", [d.version.pk for d in deletions if _is_artifact(d)]),
            **_locked(DatasetVersion, "dataset__project", [d.version.pk for d in deletions if not _is_artifact(d)]),
        }
        tombstones: dict[tuple[type, int], VersionTombstone] = {
            **{
                (ArtifactVersion, tombstone.artifact_version_id): tombstone
                for tombstone in VersionTombstone.objects.filter(artifact_version_id__in=_pks(locked, ArtifactVersion))
            },
            **{
                (DatasetVersion, tombstone.dataset_version_id): tombstone
                for tombstone in VersionTombstone.objects.filter(dataset_version_id__in=_pks(locked, DatasetVersion))
            },
        }
        now = timezone.now()
        made: list[VersionTombstone] = []
        for deletion in deletions:
            key = (type(deletion.version), deletion.version.pk)
            if key in tombstones:
                continue
            version = locked[key]
            kind = "artifact_version" if key[0] is ArtifactVersion else "dataset_version"
            project = version.artifact.project if kind == "artifact_version" else version.dataset.project
            tombstone = VersionTombstone(
                project=project,
                deleted_by=deleted_by,
                deleted_at=now,
                reason=deletion.reason.strip(),
                rule=deletion.rule,
                plan_id=plan_id,
                **{kind: version},
            )
            tombstones[key] = tombstone
            made.append(tombstone)
        VersionTombstone.objects.bulk_create(made)
        for tombstone in made:
            version = tombstone.artifact_version or tombstone.dataset_version
            recorded = {
                "reason": tombstone.reason,
                "rule": tombstone.rule,
                "plan_id": plan_id,
                "digest": version.blob.prefixed_digest if version.blob_id else None,
                "size": version.blob.size if version.blob_id else None,
            }
            if tombstone.artifact_version is not None:
                artifact_version_deleted_event(changes, version, tombstone, actor=deleted_by)
                changes.audit(AuditAction.ARTIFACT_VERSION_DELETED, obj=version, actor=deleted_by, changes=recorded)
            else:
                changes.audit(AuditAction.DATASET_VERSION_DELETED, obj=version, actor=deleted_by, changes=recorded)
        if queue_collection:
            blob_ids = {(tombstone.artifact_version or tombstone.dataset_version).blob_id for tombstone in made}
            for blob_id in sorted(blob_ids - {None}):
                # robust: the deletion stands without it; a later deletion or sweep asks again.
                enqueue_on_commit(COLLECT_BLOB, blob_id, robust=True)
    return [tombstones[(type(d.version), d.version.pk)] for d in deletions]


def _is_artifact(deletion: Deletion) -> bool:
    return isinstance(deletion.version, ArtifactVersion)


def _locked(model: type[ArtifactVersion] | type[DatasetVersion], project_path: str, pks: list[int]) -> dict:
    """The versions' rows, locked in id order (a concurrent batch waits rather than deadlocks), by (model, pk)."""
    if not pks:
        return {}
    rows = (
        model.objects.select_for_update(of=("self",), no_key=True)
        .select_related(project_path, "blob")
        .filter(pk__in=pks)
        .order_by("pk")
    )
    found = {(model, row.pk): row for row in rows}
    if len(found) < len(set(pks)):
        raise model.DoesNotExist(f"No {model._meta.verbose_name} with id {sorted(set(pks) - {k[1] for k in found})}.")
    return found


def _pks(locked: dict, model: type) -> list[int]:
    return [pk for kind, pk in locked if kind is model]


def blob_collect(*, blob_id: int) -> bool:
    """Remove the blob's bytes from storage if no live version in any project uses them and at least one deleted
    version did; answer whether they were removed. Safe to run twice, and against any concurrent upload or
    publish of the same bytes (see the module's docstring). A batch of one: `blobs_collect_batch` says how.

    Bytes only uploaded (held by a project, no version yet) are left alone: a deleted version is what makes bytes
    garbage. The storage object is deleted while the row lock is held, before `collected_at` commits: if the
    commit then fails the blob looks stored but is missing, which the scrub reports as corrupt and a new upload
    repairs, rather than the other way round (bytes present that the record says are gone, for ever).
    """
    return bool(blobs_collect_batch(blob_ids=[blob_id]))


# Keys one S3 DeleteObjects call takes at most.
DELETE_OBJECTS_MAX = 1000
# Blobs the sweep decides in one transaction: their uploads wait for it, so a few hundred, not all.
SWEEP_BATCH = 200


def blobs_collect_batch(*, blob_ids: Sequence[int]) -> list[int]:
    """Collect many blobs at once, with `blob_collect`'s guarantees; answer the ids whose bytes were removed.

    One transaction locks the blobs' rows in id order (an upload or publish locks one blob, so no cycle), then
    decides with set-based queries issued after the lock, removes the objects (on S3 with DeleteObjects, up to
    1000 keys a call), sets `collected_at` with one UPDATE and audits each blob once per project holding it. A key
    S3 reports it failed to delete is left uncollected (logged; the sweep asks again): the record never says gone
    of bytes still there. Applying a retention plan spends ~50 ms a blob when each takes its own transaction.
    """
    ids = sorted(set(blob_ids))
    if not ids:
        return []
    with transaction.atomic(), ChangeSet() as changes:
        blobs = [
            blob for blob in Blob.objects.select_for_update().filter(pk__in=ids).order_by("pk") if not blob.is_collected
        ]
        candidates = [blob.pk for blob in blobs]
        # Issued after the locks: a publish that committed while this waited is seen here.
        live = _users(candidates, deleted=False)
        deleted = _users(candidates, deleted=True)
        blobs = [blob for blob in blobs if blob.pk not in live and blob.pk in deleted]
        if not blobs:
            return []
        failed = _storage_delete([blob.storage_key for blob in blobs])
        blobs = [blob for blob in blobs if blob.storage_key not in failed]
        if not blobs:
            return []
        now = timezone.now()
        Blob.objects.filter(pk__in=[blob.pk for blob in blobs]).update(collected_at=now)
        projects: dict[int, list[Project]] = defaultdict(list)
        links = ProjectBlob.objects.filter(blob_id__in=[blob.pk for blob in blobs]).select_related("project")
        for link in links.order_by("blob_id", "project_id"):
            projects[link.blob_id].append(link.project)
        for blob in blobs:
            blob.collected_at = now
            for project in projects[blob.pk]:
                changes.audit(
                    AuditAction.BLOB_COLLECTED,
                    obj=AuditObject(
                        type="blob",
                        id=str(blob.pk),
                        label=blob.prefixed_digest,
                        project_id=project.pk,
                        project_label=project.slug,
                    ),
                    changes={"digest": blob.prefixed_digest, "size": blob.size, "collected_at": now},
                )
    logger.info("%d blobs collected (%d bytes freed).", len(blobs), sum(blob.size for blob in blobs))
    return [blob.pk for blob in blobs]


def _users(blob_ids: list[int], *, deleted: bool) -> set[int]:
    """The ids among `blob_ids` that a deleted (or live) artifact or dataset version uses."""
    used: set[int] = set()
    for model in (ArtifactVersion, DatasetVersion):
        rows = model.objects.filter(blob_id__in=blob_ids, tombstone__isnull=not deleted)
        # order_by(): the models' default ordering would join the project and artifact into the DISTINCT.
        used.update(rows.order_by().values_list("blob_id", flat=True).distinct())
    return used


def _storage_delete(keys: list[str]) -> set[str]:
    """Delete the objects at `keys`; answer the keys whose deletion failed (S3 reports them one by one)."""
    storage = blob_storage()
    if not is_s3(storage):
        for key in keys:
            storage.delete(key)
        return set()
    client = storage.connection.meta.client
    by_object = {s3_object_key(storage, key): key for key in keys}
    objects = list(by_object)
    failed: set[str] = set()
    for start in range(0, len(objects), DELETE_OBJECTS_MAX):
        chunk = objects[start : start + DELETE_OBJECTS_MAX]
        answer = client.delete_objects(
            Bucket=storage.bucket_name, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}
        )
        for error in answer.get("Errors", []):
            logger.error(
                "Deleting %s from bucket %s failed (%s: %s); its blob stays uncollected.",
                error.get("Key"),
                storage.bucket_name,
                error.get("Code"),
                error.get("Message"),
            )
            failed.add(by_object.get(error.get("Key"), error.get("Key")))
    return failed


def blobs_collect() -> int:
    """Collect every blob no live version uses any more; answer how many were removed. Each deletion queues its own
    collection; this sweep (beat's `collect-garbage`) catches those a broker outage dropped. The blobs are decided
    in batches of SWEEP_BATCH, each in its own transaction under its blobs' locks, by blobs_collect_batch."""
    ids = list(blobs_to_collect().values_list("pk", flat=True))
    return sum(
        len(blobs_collect_batch(blob_ids=ids[start : start + SWEEP_BATCH])) for start in range(0, len(ids), SWEEP_BATCH)
    )
