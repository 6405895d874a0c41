"""Blob bytes: receiving them against a stated digest, storing them once, re-proving them, and recording
who read them."""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from artifacts.jobs import VERIFY_BLOB
from artifacts.models import ArtifactVersion, Blob, Project, ProjectBlob, storage_key_for
from artifacts.selectors import blob_held_by
from artifacts.storage import blob_storage
from artifacts.storage.writes import DigestMismatch, TruncatedBody, receive
from core.audit.actions import AuditAction
from core.audit.recorder import AuditObject
from core.changes import ChangeSet
from core.errors import Conflict, InvalidInput
from core.jobs import enqueue_on_commit
from core.metrics import UPLOADED_BYTES
from core.services import digest_hex

logger = logging.getLogger(__name__)


def blob_store(
    *,
    project: Project,
    stream: BinaryIO,
    expected_digest: str,
    uploaded_by: AbstractBaseUser,
    declared_length: int | None,
) -> tuple[Blob, bool]:
    """Receive a whole file for `project` in one request, hashing it as it is written, and keep it only if
    it hashes to the digest the client stated.

    Returns the blob and whether its bytes were new to the store. Bytes the store already holds are only
    hashed (the client proves it has them) and not written again. Nothing is kept when the digest does not
    match or the body is empty or shorter than announced. A blob found corrupt is repaired by a good upload
    of the same bytes and queued for verification again.
    """
    expected = digest_hex(expected_digest, "digest")
    if declared_length is None:
        raise InvalidInput(
            "Send the file with a Content-Length header; for a stream of unknown length use an upload session.",
            code="length_required",
        )
    if declared_length == 0:
        raise InvalidInput("The body is empty: send the file's bytes.", code="empty")
    key = storage_key_for(expected)
    write = needs_bytes(expected)
    with received_bytes_errors():
        receive(key=key, stream=stream, length=declared_length, expected_digest=expected, discard=not write)
    return record_received_blob(
        project=project, digest=expected, size=declared_length, uploaded_by=uploaded_by, wrote_bytes=write
    )


def needs_bytes(digest: str) -> bool:
    """Whether an upload of these bytes must write them: they are new, collected, missing from storage, or corrupt.

    A hint only, read without a lock: the garbage collector may remove held bytes right after it answered, which
    `record_received_blob` finds under the blob's row lock (and refuses, so the client sends them again).
    """
    existing = Blob.objects.filter(digest=digest).first()
    return (
        existing is None
        or existing.is_collected
        or existing.state == Blob.State.CORRUPT
        or not blob_storage().exists(existing.storage_key)
    )


class BlobCollected(Conflict):
    """The bytes were removed from storage by the garbage collector (HTTP 409): the client sends them again."""

    code = "blob_collected"

    def __init__(self, blob: Blob, *, project: Project | None = None, before: str = "") -> None:
        upload = f"PUT /api/v1/projects/{project.slug}/blobs/{blob.prefixed_digest}" if project is not None else "a PUT"
        super().__init__(
            f"The bytes of {blob.prefixed_digest} were removed from storage once no version used them any more; "
            f"nothing was recorded. Upload the file again ({upload} or an upload session){before}.",
            field="digest",
        )


def blob_locked_stored(blob: Blob, *, project: Project | None = None) -> Blob:
    """`blob` re-read under its row lock, refused if its bytes were collected: what a new version may point at.

    Call inside the transaction that makes a version reference the blob. The garbage collector takes the same
    lock and re-checks for live versions after it (services.lifecycle.blob_collect), so either it sees this
    version and keeps the bytes, or this sees `collected_at` and refuses: never a version pointing at nothing.
    """
    locked = Blob.objects.select_for_update(no_key=True).get(pk=blob.pk)
    if locked.is_collected:
        raise BlobCollected(locked, project=project, before=", then publish again")
    return locked


@contextmanager
def received_bytes_errors() -> Iterator[None]:
    """What the storage layer reports about received bytes, as errors a client can act on."""
    try:
        yield
    except TruncatedBody as error:
        raise InvalidInput(
            f"The body ended after {error.received} of the {error.expected} bytes announced; nothing of it was "
            "kept. Send it again.",
            code="truncated",
        ) from None
    except DigestMismatch as error:
        raise InvalidInput(
            f"The bytes received hash to sha256:{error.actual}, not the sha256:{error.expected} stated; "
            "nothing was stored. Check that the file did not change while uploading.",
            field="digest",
            code="digest_mismatch",
        ) from None


def record_received_blob(
    *,
    project: Project,
    digest: str,
    size: int,
    uploaded_by: AbstractBaseUser,
    wrote_bytes: bool,
    completing: Callable[[], None] | None = None,
) -> tuple[Blob, bool]:
    """Record bytes that are now complete at their key: the blob (once) and the project's claim on it.

    `completing` is the rest of the act that received them (ending an upload session, which it records), run
    in the same transaction once the rows are written: it commits or rolls back with the blob, and what it records
    joins the blob's change set, ahead of the blob's own entries.

    Precondition: the bytes are at `storage_key_for(digest)` and hashed to `digest` (when `wrote_bytes`; else
    the store held them when the upload began).

    Bytes the garbage collector removed meanwhile are found under the blob's row lock: if this upload wrote them
    and they are still there the blob is stored again (and verified again); else BlobCollected, nothing recorded.
    """
    try:
        with transaction.atomic(), ChangeSet() as changes:
            blob, created, repaired = _blob_record(changes, digest=digest, size=size, wrote_bytes=wrote_bytes)
            claim, claimed = ProjectBlob.objects.get_or_create(
                project=project, blob=blob, defaults={"uploaded_by": uploaded_by}
            )
            if completing is not None:
                completing()
            _blob_receipt_record(changes, claim, created=created, repaired=repaired, claimed=claimed, actor=uploaded_by)
    except BaseException:
        # Bytes written for a digest that no row describes would be an orphan: remove them, unless a
        # concurrent upload of the same bytes committed its row meanwhile.
        if wrote_bytes and not Blob.objects.filter(digest=digest).exists():
            blob_storage().delete(storage_key_for(digest))
        raise
    UPLOADED_BYTES.inc(size)
    return blob, created


def _blob_record(changes: ChangeSet, *, digest: str, size: int, wrote_bytes: bool) -> tuple[Blob, bool, bool]:
    """The blob row for these bytes, whether they are new to the store (a new row, or collected bytes stored
    again), and whether a good upload just repaired them."""
    blob, created = Blob.objects.select_for_update(no_key=True).get_or_create(digest=digest, defaults={"size": size})
    if not created and blob.size != size:
        raise Conflict(f"sha256:{digest} is recorded with {blob.size} bytes, not {size}.")
    if not created and blob.is_collected:
        # The collector deletes the object while holding this lock, so what storage shows now is final: a write
        # that landed before its delete is gone, one after it is there. Bytes that were only hashed (held when
        # the upload began) were never written.
        if not (wrote_bytes and blob_storage().exists(blob.storage_key)):
            raise BlobCollected(blob)
        changes.update(blob, collected_at=None, state=Blob.State.PENDING, verified_at=None)
        created = True
    if wrote_bytes:
        # The bytes were written anew, in the bucket's default class: an archival of the object they replace no
        # longer holds (artifacts/services/tiers.py). Nothing changes for a blob that was never archived.
        changes.update(blob, storage_class="", archived_at=None, restore_requested_at=None)
    repaired = not created and wrote_bytes and blob.state == Blob.State.CORRUPT
    if repaired:
        changes.update(blob, state=Blob.State.PENDING, verified_at=None)
    if created or blob.state == Blob.State.PENDING:
        # robust: the upload has committed, so a broker that is down must not turn it into an error. The blob
        # stays pending, which downloads tolerate, and the next upload of the same bytes queues it again.
        enqueue_on_commit(VERIFY_BLOB, blob.pk, robust=True)
    return blob, created, repaired


def _blob_receipt_record(
    changes: ChangeSet, claim: ProjectBlob, *, created: bool, repaired: bool, claimed: bool, actor: AbstractBaseUser
) -> None:
    """Log what receiving the bytes changed: new bytes stored, corrupt bytes replaced, or a project's new claim
    on bytes the store already held. Bytes a project already held, received again, change nothing and leave
    no entry (the upload only proved the client has them)."""
    blob, project = claim.blob, claim.project
    in_project = AuditObject(
        type="blob", id=str(blob.pk), label=blob.prefixed_digest, project_id=project.pk, project_label=project.slug
    )
    if created:
        changes.audit(
            AuditAction.BLOB_STORED,
            obj=in_project,
            actor=actor,
            changes={"digest": blob.prefixed_digest, "size": blob.size, "state": blob.state, "project": project.slug},
        )
    elif repaired:
        changes.audit(
            AuditAction.BLOB_REPAIRED,
            obj=in_project,
            actor=actor,
            changes={"state": [Blob.State.CORRUPT, blob.state], "project": project.slug},
        )
    if claimed and not created:
        changes.audit(
            AuditAction.PROJECT_BLOB_CLAIMED,
            obj=claim,
            actor=actor,
            changes={"digest": blob.prefixed_digest, "size": blob.size, "project": project.slug},
        )


def require_project_blob(project: Project, digest: str, field: str, user: AbstractBaseUser) -> Blob:
    """The project's blob `user` names for a new version; bytes they may not read cannot be republished."""
    blob = blob_held_by(project, digest, user)
    if blob is None:
        raise InvalidInput(
            f"No blob sha256:{digest} has been uploaded to project '{project.slug}'. "
            f"Upload it first with PUT /api/v1/projects/{project.slug}/blobs/sha256:{digest}.",
            field=field,
            code="unknown_blob",
        )
    return blob


def blob_read_record(
    *,
    blob: Blob,
    through: ArtifactVersion | Project,
    byte_range: tuple[int, int] | None = None,
    presigned: bool = False,
) -> None:
    """Log a read of `blob`'s bytes by the current request's user: a whole download, one byte range
    (`byte_range` = first byte, end exclusive), or the issue of a presigned URL for them (`presigned`).

    `through` is what the bytes were read as: an artifact version (its artifact and project must be loaded), so
    the artifact's history shows who downloaded it, or a project's blob. Call before the bytes are sent: the
    entry says they were handed out, which stays true if the client stops reading half-way.
    """
    changes: dict = {"digest": blob.prefixed_digest, "size": blob.size}
    if isinstance(through, ArtifactVersion):
        project, artifact_id, label = through.artifact.project, through.artifact_id, f"{through} ({blob})"
        changes["artifact_version"] = through.pk
    else:
        project, artifact_id, label = through, None, f"{through.slug}@{blob}"
    if byte_range is not None:
        first, end = byte_range
        changes["range"] = {"first": first, "last": end - 1, "length": end - first}
    read = AuditObject(
        type="blob",
        id=str(blob.pk),
        label=label,
        project_id=project.pk,
        project_label=project.slug,
        artifact_id=artifact_id,
    )
    with transaction.atomic(), ChangeSet() as recorded:
        recorded.audit(
            AuditAction.BLOB_PRESIGNED_URL_ISSUED if presigned else AuditAction.BLOB_DOWNLOADED,
            obj=read,
            changes=changes,
        )
