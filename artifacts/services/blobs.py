"""Blob bytes: receiving them against a stated digest, storing them once, and re-proving them."""

import logging
from typing import BinaryIO

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from artifacts.models import Blob, Project, ProjectBlob, storage_key_for
from artifacts.services._shared import digest_hex
from artifacts.storage import blob_storage
from artifacts.storage.writes import ReceivedBytes, write_blob
from governance.errors import Conflict, InvalidInput

logger = logging.getLogger(__name__)


def blob_store(
    *,
    project: Project,
    stream: BinaryIO,
    expected_digest: str,
    uploaded_by: AbstractBaseUser,
    declared_length: int | None = None,
) -> tuple[Blob, bool]:
    """Receive bytes for `project`, check them against the digest the client stated, store them once.

    Returns the blob and whether the bytes were new to the store. Nothing is kept when the digest does
    not match or the body is empty or shorter than announced. A blob found corrupt is repaired by a good
    upload of the same bytes and queued for verification again.
    """
    expected = digest_hex(expected_digest, "digest")
    with ReceivedBytes(stream, declared_length=declared_length) as received:
        if received.truncated:
            raise InvalidInput(
                f"The body ended after {received.size} of the {declared_length} bytes announced; send it again.",
                code="truncated",
            )
        if received.size == 0:
            raise InvalidInput("The body is empty: send the file's bytes.", code="empty")
        if received.digest != expected:
            raise InvalidInput(
                f"The bytes received hash to sha256:{received.digest}, not the sha256:{expected} stated; "
                "nothing was stored. Check that the file did not change while uploading.",
                field="digest",
                code="digest_mismatch",
            )
        key = storage_key_for(expected)
        existing = Blob.objects.filter(digest=expected).first()
        needs_bytes = existing is None or existing.state == Blob.State.CORRUPT or not blob_storage().exists(key)
        if needs_bytes:
            write_blob(key, received)
    try:
        with transaction.atomic():
            blob, created = _blob_record(digest=expected, size=received.size, repaired=needs_bytes)
            ProjectBlob.objects.get_or_create(project=project, blob=blob, defaults={"uploaded_by": uploaded_by})
    except BaseException:
        # Bytes written for a digest that no row describes would be an orphan: remove them, unless a
        # concurrent upload of the same bytes committed its row meanwhile.
        if needs_bytes and not Blob.objects.filter(digest=expected).exists():
            blob_storage().delete(key)
        raise
    return blob, created


def _blob_record(*, digest: str, size: int, repaired: bool) -> tuple[Blob, bool]:
    from artifacts.tasks import verify_blob

    blob, created = Blob.objects.select_for_update().get_or_create(digest=digest, defaults={"size": size})
    if not created and blob.size != size:
        raise Conflict(f"sha256:{digest} is recorded with {blob.size} bytes, not {size}.")
    if not created and repaired and blob.state == Blob.State.CORRUPT:
        blob.state = Blob.State.PENDING
        blob.verified_at = None
        blob.save(update_fields=["state", "verified_at"])
    if created or blob.state == Blob.State.PENDING:
        # robust: the upload has committed, so a broker that is down must not turn it into an error. The blob
        # stays pending, which downloads tolerate, and the next upload of the same bytes queues it again.
        transaction.on_commit(lambda: verify_blob.delay(blob.pk), robust=True)
    return blob, created


def require_project_blob(project: Project, digest: str, field: str) -> Blob:
    blob = Blob.objects.filter(digest=digest, project_links__project=project).first()
    if blob is None:
        raise InvalidInput(
            f"No blob sha256:{digest} has been uploaded to project '{project.slug}'. "
            f"Upload it first with PUT /api/v1/projects/{project.slug}/blobs/sha256:{digest}.",
            field=field,
            code="unknown_blob",
        )
    return blob
