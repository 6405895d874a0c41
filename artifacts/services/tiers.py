"""Storage tiers: moving a blob's bytes to a colder S3 storage class (archival), and asking S3 to restore bytes
archived in a class that cannot be read at once.

Archival changes where the bytes are kept, never the bytes: the digest, size and verification state stand, and
every version using them stays what it was. Bytes in GLACIER_IR, STANDARD_IA, ONEZONE_IA or INTELLIGENT_TIERING
download as before (ranges, presigned redirects); bytes in GLACIER or DEEP_ARCHIVE answer 409 `restore_required`
until a restore (blob_restore_request) has made a temporary copy readable.

With blobs in a local folder there are no storage classes: archival is a no-op that answers False and records
nothing, so a retention plan's archive items apply the same way on either storage and simply move no bytes.
"""

import logging

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from artifacts.models import Blob
from artifacts.selectors import BlobReadability, blob_readability
from artifacts.storage import blob_storage, is_s3
from artifacts.storage.tiers import object_change_class, object_restore, object_tier
from core.audit.actions import AuditAction
from core.changes import ChangeSet
from core.errors import Conflict, InvalidInput, NotFound
from core.s3 import ARCHIVE_STORAGE_CLASSES

logger = logging.getLogger(__name__)

#: How long a restored copy may stay readable: S3 bills the copy (at STANDARD's price) besides the archived object.
MAX_RESTORE_DAYS = 30


def _blob(blob_id: int) -> Blob:
    blob = Blob.objects.filter(pk=blob_id).first()
    if blob is None:
        raise NotFound(f"No blob with id {blob_id}.")
    return blob


def blob_archive(*, blob_id: int, storage_class: str | None = None) -> bool:
    """Move the blob's bytes to `storage_class` (default PROVENANT_ARCHIVE_STORAGE_CLASS) and record it; answer
    whether this call moved or recorded anything.

    Idempotent: bytes already recorded in that class answer False with nothing done. Also False, with nothing
    done: blobs in a local folder (no storage classes: the documented no-op), bytes already collected or missing,
    and quarantined (corrupt) bytes, which stay where a repair's upload finds them. Bytes in GLACIER or
    DEEP_ARCHIVE can move to another class only through a restored copy: without one this raises Conflict.

    Call it outside any transaction: the copy (server-side, no byte through this process) takes minutes for a large
    object, and nothing is locked meanwhile; only the result is written, under the blob's row lock. A copy that
    finds the class already changed (an earlier call that failed before recording) only records it.
    """
    target = storage_class or settings.PROVENANT_ARCHIVE_STORAGE_CLASS
    if target not in ARCHIVE_STORAGE_CLASSES:
        raise InvalidInput(
            f"'{target}' is not a storage class archival moves bytes to: use one of "
            f"{', '.join(ARCHIVE_STORAGE_CLASSES)}.",
            field="storage_class",
        )
    blob = _blob(blob_id)
    if not is_s3(blob_storage()):
        # A folder on disk has one class. Archival there is a no-op by design (README, "Storage tiers").
        return False
    if blob.storage_class == target or blob.is_collected or blob.state == Blob.State.CORRUPT:
        return False
    try:
        current = object_tier(blob.storage_key)
        if current.storage_class != target:
            if not current.readable:
                raise Conflict(
                    f"Blob {blob.prefixed_digest} is archived in {current.storage_class}, which S3 copies only from "
                    "a restored copy: restore it first, then archive it again.",
                    code="restore_required",
                )
            object_change_class(blob.storage_key, target)
    except FileNotFoundError:
        logger.warning("Blob %s was not archived: nothing is stored at %s.", blob.prefixed_digest, blob.storage_key)
        return False
    with transaction.atomic(), ChangeSet() as changes:
        blob = Blob.objects.select_for_update(no_key=True).get(pk=blob_id)
        if blob.storage_class == target or blob.is_collected:
            # Another archival recorded it meanwhile, or the collector removed the bytes after the copy.
            return False
        changed = changes.update(blob, storage_class=target, archived_at=timezone.now(), restore_requested_at=None)
        changes.audit(
            AuditAction.BLOB_ARCHIVED, obj=blob, changes=changed | {"digest": blob.prefixed_digest, "size": blob.size}
        )
    logger.info("Blob %s archived to %s (%d bytes).", blob.prefixed_digest, target, blob.size)
    return True


def blob_restore_request(*, blob_id: int, requested_by: AbstractBaseUser | None, days: int = 7) -> BlobReadability:
    """Ask S3 to restore the blob's archived bytes for `days` days, so they can be downloaded; answer where they
    stand afterwards.

    Only bytes in a class that needs it (GLACIER, DEEP_ARCHIVE) are restored; for any other, a local folder
    included, and for bytes whose restored copy is readable already, nothing is done and the answer says they are
    readable. Idempotent while a restore runs: asking again records nothing and costs nothing (S3 answers
    RestoreAlreadyInProgress). A request that starts a restore is recorded (`restore_requested_at`) and audited,
    with who asked: restores are billed.
    """
    if not 1 <= days <= MAX_RESTORE_DAYS:
        raise InvalidInput(
            f"A restored copy stays readable from 1 to {MAX_RESTORE_DAYS} days, not {days}.", field="days"
        )
    blob = _blob(blob_id)
    if blob.is_collected:
        raise Conflict(
            f"The bytes of blob {blob.prefixed_digest} were removed from storage: there is nothing to restore. "
            "Upload the same file again to store them.",
            code="blob_collected",
        )
    readability = blob_readability(blob)
    if readability.readable or readability.restore_in_progress:
        return readability
    try:
        started = object_restore(blob.storage_key, days=days)
    except FileNotFoundError:
        raise Conflict(
            f"Nothing is stored for blob {blob.prefixed_digest}: there is nothing to restore. Upload the same file "
            "again to store it.",
            code="blob_missing",
        ) from None
    if started:
        with transaction.atomic(), ChangeSet() as changes:
            blob = Blob.objects.select_for_update(no_key=True).get(pk=blob_id)
            changed = changes.update(blob, restore_requested_at=timezone.now())
            changes.audit(
                AuditAction.BLOB_RESTORE_REQUESTED,
                obj=blob,
                actor=requested_by,
                changes=changed
                | {"digest": blob.prefixed_digest, "storage_class": readability.storage_class, "days": days},
            )
        logger.info("Restore of blob %s asked for %d days.", blob.prefixed_digest, days)
    # What S3 says now: a restore that runs, or (S3 servers that restore at once) one already done.
    return blob_readability(blob)
