"""Background work for the artifact store. Tasks take ids, re-fetch, and call one service.

Every task here acknowledges its message only once it has finished (`acks_late`), and hands it back when the
worker process dies under it (`reject_on_worker_lost`); a message whose whole worker vanished (SIGKILL, a lost
machine) is redelivered by the broker after PROVENANT_CELERY_VISIBILITY_TIMEOUT. So each may run twice, and
each is safe to. They are routed to a queue by name (CELERY_TASK_ROUTES in config/settings/celery.py).
"""

import logging
from datetime import datetime

from celery import shared_task

from artifacts.models import Blob, UploadSession
from artifacts.services import blob_verify
from artifacts.services.integrity import blob_scrub
from artifacts.services.lifecycle import blob_collect, blobs_collect
from artifacts.services.uploads import upload_session_verify_direct, upload_sessions_expire
from artifacts.storage.reads import TRANSIENT_STORAGE_ERRORS

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_STORAGE_ERRORS,
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=5,
)
def verify_blob(blob_id: int, requested_at: str | None = None) -> str | None:
    """Re-hash a stored blob and record whether it is intact; return its state, None if it is gone.

    `requested_at` (ISO 8601) is when the check was asked for: a blob whose last verification began at or after
    it has the answer already, so a redelivered or duplicate task does nothing. Without it the blob is always
    re-hashed. A transient read error retries with backoff and leaves the blob's state as it was.
    """
    blob = Blob.objects.filter(pk=blob_id).first()
    if blob is None:
        return None
    if requested_at and blob.verified_at and blob.verified_at >= datetime.fromisoformat(requested_at):
        logger.info(
            "Blob %s was verified at %s, after this check was requested (%s); nothing to do.",
            blob.prefixed_digest,
            blob.verified_at.isoformat(),
            requested_at,
        )
        return blob.state
    return blob_verify(blob=blob).state


@shared_task(acks_late=True, reject_on_worker_lost=True)
def scrub_blobs(byte_budget: int) -> int:
    """Queue re-verification of the next `byte_budget` bytes of the store, least recently proved first.

    Celery beat runs it (CELERY_BEAT_SCHEDULE). It does not retry: the next scheduled run takes the same blobs.
    """
    return len(blob_scrub(byte_budget=byte_budget))


@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_upload_sessions() -> int:
    """End idle upload sessions and remove partial data nobody owns. Safe to run twice: the second finds
    nothing left to end."""
    return upload_sessions_expire()


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_STORAGE_ERRORS,
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=5,
)
def verify_direct_upload(session_id: str) -> str | None:
    """Check the digest of a direct upload's bytes before they become a blob. Returns early when the
    session is gone or no longer waiting for this check (it already ran)."""
    session = UploadSession.objects.select_related("project", "created_by").filter(pk=session_id).first()
    if session is None or session.state != UploadSession.State.VERIFYING:
        return None
    return upload_session_verify_direct(session=session).state


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_STORAGE_ERRORS,
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=5,
)
def collect_blob(blob_id: int) -> bool:
    """Remove a blob's bytes once no live version uses them (queued by each version deletion). Safe to run twice:
    the second finds them collected, or in use again, and does nothing. A storage error rolls back and retries."""
    return blob_collect(blob_id=blob_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def collect_garbage() -> int:
    """Collect every blob no live version uses any more (CELERY_BEAT_SCHEDULE). It does not retry: the next run
    takes whatever this one left."""
    return blobs_collect()
