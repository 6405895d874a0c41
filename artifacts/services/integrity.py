"""Re-proving stored bytes: verifying one blob, and scrubbing the store a budget of bytes at a time."""

import logging
from collections.abc import Iterator
from itertools import chain

from django.db import transaction
from django.utils import timezone

from artifacts.events import blob_checked_events
from artifacts.jobs import VERIFY_BLOB
from artifacts.models import Blob
from artifacts.signals import blob_state_changed
from artifacts.storage.reads import hash_stored_blob
from artifacts.storage.tiers import NotReadableNow
from core.audit.actions import AuditAction
from core.changes import ChangeSet
from core.errors import InvalidInput
from core.jobs import enqueue
from core.s3 import RESTORE_STORAGE_CLASSES

logger = logging.getLogger(__name__)

SCRUB_FETCH_SIZE = 2000


def blob_verify(*, blob: Blob) -> Blob:
    """Re-hash the stored bytes and record whether they still match the digest.

    Call it outside any transaction: reading a large blob takes minutes, and nothing is locked or held open
    meanwhile; only the result is written, under the blob's row lock. Missing bytes are corruption. Any other
    read error (a network blip, throttling, a timeout) propagates with nothing recorded, so the caller retries
    instead of condemning good bytes. A result never replaces one from a verification that began later.
    """
    started_at = timezone.now()
    try:
        actual, size = hash_stored_blob(blob.storage_key)
    except FileNotFoundError:
        actual, size = None, 0
    except NotReadableNow:
        # Archived in GLACIER or DEEP_ARCHIVE and not restored: S3 refuses the read, which says nothing about the
        # bytes. Nothing is recorded; they are proved again when they can be read.
        logger.info(
            "Blob %s not verified: its bytes are archived in a class S3 reads only after a restore.",
            blob.prefixed_digest,
        )
        return blob
    with transaction.atomic(), ChangeSet() as changes:
        blob = Blob.objects.select_for_update(no_key=True).get(pk=blob.pk)
        if blob.is_collected:
            # The garbage collector removed the bytes on purpose (after this check was queued, or while it read):
            # missing is what they should be, not corruption.
            return blob
        if blob.verified_at is not None and blob.verified_at > started_at:
            # Another worker read the bytes after this one began (a duplicate task, a repair's re-check):
            # its answer is the more recent truth.
            return blob
        intact = actual == blob.digest and size == blob.size
        before = {"state": blob.state, "verified_at": blob.verified_at}
        changes.update(blob, state=Blob.State.VERIFIED if intact else Blob.State.CORRUPT, verified_at=started_at)
        found = {"digest": f"sha256:{actual}" if actual else None, "size": size}
        blob_checked_events(changes, blob, before=before["state"], found=found)
        if blob.state != before["state"]:
            # Receivers record their changes in this change set (core/changes.py), after the events above.
            blob_state_changed.send(sender=Blob, blob=blob, before=before["state"])
        # Every result is logged, a repeated "verified" too: the log is the evidence that the bytes were re-proved,
        # so the entry names both fields, changed or not.
        changes.audit(
            AuditAction.BLOB_VERIFIED if intact else AuditAction.BLOB_CORRUPT,
            obj=blob,
            changes={
                "state": [before["state"], blob.state],
                "verified_at": [before["verified_at"], blob.verified_at],
                "found": found,
            },
        )
    if intact:
        logger.info("Blob %s verified (%d bytes).", blob.prefixed_digest, size)
    elif actual is None:
        logger.error(
            "Blob %s is corrupt: nothing is stored at %s. Downloads of it are refused until the same bytes are "
            "uploaded again.",
            blob.prefixed_digest,
            blob.storage_key,
        )
    else:
        logger.error(
            "Blob %s is corrupt: the bytes stored at %s hash to sha256:%s (%d bytes, %d expected). Downloads of it "
            "are refused until the same bytes are uploaded again.",
            blob.prefixed_digest,
            blob.storage_key,
            actual,
            size,
            blob.size,
        )
    return blob


@transaction.atomic
def blob_scrub(*, byte_budget: int) -> list[int]:
    """Queue verification of the blobs proved least recently, up to `byte_budget` bytes; return their ids in order.

    Pending blobs come first (never proved; normally already queued, but a broker that was down at upload time
    leaves them waiting for this), oldest first, then verified blobs by when they were last verified. The
    choice stops at the first blob that would pass the budget rather than skipping to smaller ones, so order
    is kept, and always takes at least one: a blob larger than the budget is re-proved on its own turn, never
    starved. Corrupt blobs are left out: they stay quarantined until a good upload of the same bytes repairs
    them, which queues their verification itself. Collected blobs are left out too: their bytes were removed on
    purpose, and are not corrupt. So are blobs archived in a class S3 reads only after a restore (GLACIER,
    DEEP_ARCHIVE): a read would be refused, which proves nothing about the bytes, and, never re-proved, they would
    head the order and take the budget of every run.

    The tasks are queued once the surrounding transaction commits, stamped with this moment, so a copy of one
    that runs after the blob was proved again does nothing.
    """
    if byte_budget < 1:
        raise InvalidInput("The scrub's byte budget must be at least one byte.", field="byte_budget")
    chosen: list[int] = []
    total = 0
    for blob_id, size in _least_recently_proved():
        if chosen and total + size > byte_budget:
            break
        chosen.append(blob_id)
        total += size
    _queue_verification(chosen)
    logger.info("Scrub: %d blobs (%d bytes) queued for verification.", len(chosen), total)
    if archived := Blob.objects.filter(storage_class__in=RESTORE_STORAGE_CLASSES).count():
        logger.info("Scrub: %d blobs skipped: archived in a class S3 reads only after a restore.", archived)
    return chosen


@transaction.atomic
def blob_pending_enqueue() -> list[int]:
    """Queue verification of every pending blob, oldest first, once the surrounding transaction commits.

    For an operator after an outage of the broker or the workers; duplicates of tasks already queued are harmless.
    """
    pending = list(
        Blob.objects.filter(state=Blob.State.PENDING, collected_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    _queue_verification(pending)
    return pending


def _least_recently_proved() -> Iterator[tuple[int, int]]:
    """(id, size) of pending blobs by id, then of verified blobs by verified_at and id (index blob_scrub_order);
    none archived where a read needs a restore.

    Two walks rather than one ORDER BY verified_at NULLS FIRST: no index serves that on both PostgreSQL and SQLite.
    """
    stored = Blob.objects.filter(collected_at__isnull=True).exclude(storage_class__in=RESTORE_STORAGE_CLASSES)
    pending = stored.filter(state=Blob.State.PENDING).order_by("id")
    verified = stored.filter(state=Blob.State.VERIFIED).order_by("verified_at", "id")
    return chain.from_iterable(
        blobs.values_list("id", "size").iterator(chunk_size=SCRUB_FETCH_SIZE) for blobs in (pending, verified)
    )


def _queue_verification(blob_ids: list[int]) -> None:
    requested_at = timezone.now().isoformat()

    def queue() -> None:
        for blob_id in blob_ids:
            enqueue(VERIFY_BLOB, blob_id, requested_at)

    transaction.on_commit(queue)
