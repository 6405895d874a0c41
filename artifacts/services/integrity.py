"""Re-proving stored bytes: verification of one blob (and, as it grows, scrubbing the store)."""

import logging

from django.db import transaction
from django.utils import timezone

from artifacts.models import Blob
from artifacts.storage.reads import hash_stored_blob

logger = logging.getLogger(__name__)


@transaction.atomic
def blob_verify(*, blob: Blob) -> Blob:
    """Re-hash the stored bytes and record whether they still match the digest.

    Hashing happens before the row lock is taken so a long verification never holds a lock; the result
    is written under the lock.
    """
    try:
        actual, size = hash_stored_blob(blob.storage_key)
    except FileNotFoundError:
        # The bytes are gone: that is corruption. Any other read error is transient and propagates, so the
        # task retries instead of condemning good bytes over a network blip.
        actual, size = None, 0
    blob = Blob.objects.select_for_update().get(pk=blob.pk)
    blob.state = Blob.State.VERIFIED if actual == blob.digest and size == blob.size else Blob.State.CORRUPT
    blob.verified_at = timezone.now()
    blob.save(update_fields=["state", "verified_at"])
    if blob.state == Blob.State.CORRUPT:
        logger.error("Blob %s is corrupt: stored bytes hash to %s (%d bytes).", blob.prefixed_digest, actual, size)
    return blob
