"""Background work for the artifact store. Tasks take ids, re-fetch, and call one service."""

from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task

from artifacts.models import Blob
from artifacts.services import blob_verify


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OSError, BotoCoreError, ClientError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=5,
)
def verify_blob(blob_id: int) -> str | None:
    """Re-hash a stored blob. Safe to run twice: a second run re-checks and records the same result."""
    blob = Blob.objects.filter(pk=blob_id).first()
    if blob is None:
        return None
    return blob_verify(blob=blob).state
