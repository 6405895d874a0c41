"""Background work of the supply-chain area. Tasks take ids, re-fetch, and call one service; each acknowledges its
message only once finished and may run twice, safely (see artifacts/tasks.py)."""

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings

from artifacts.models import Blob
from artifacts.storage.reads import TRANSIENT_STORAGE_ERRORS
from artifacts.storage.tiers import NotReadableNow
from governance.supplychain.formats import SCANNER_VERSION
from governance.supplychain.models import BlobScan, VersionSignature
from governance.supplychain.services.scans import blob_scan, blobs_rescan_enqueue
from governance.supplychain.services.signatures import signature_verify

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_STORAGE_ERRORS,
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=5,
)
def scan_blob(blob_id: int, requested_at: str | None = None) -> str | None:
    """Scan a verified blob's bytes and record the verdict; return it, None if nothing was scanned.

    `requested_at` (ISO 8601): a scan by the current scanner that began at or after it answers already, so a
    redelivered or duplicate task does nothing.
    """
    blob = Blob.objects.filter(pk=blob_id).first()
    if blob is None:
        return None
    if requested_at:
        done = BlobScan.objects.filter(
            blob=blob, scanner_version=SCANNER_VERSION, started_at__gte=datetime.fromisoformat(requested_at)
        ).first()
        if done is not None:
            logger.info("Blob %s was scanned after this scan was requested; nothing to do.", blob.prefixed_digest)
            return done.verdict
    scan = blob_scan(blob=blob)
    return scan.verdict if scan else None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def rescan_outdated_blobs(batch_size: int | None = None) -> int:
    """Queue scans of the next batch of blobs with no scan by the current scanner version; return how many."""
    size = batch_size or settings.PROVENANT_RESCAN_BATCH_SIZE
    return len(blobs_rescan_enqueue(outdated_only=True, limit=size))


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_STORAGE_ERRORS,
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=5,
)
def verify_signature(signature_id: int, requested_at: str | None = None) -> bool | None:
    """Check a version's signature against its bytes and the trusted keys; return the verdict, None if skipped.

    `requested_at` (ISO 8601): a signature checked at or after it has its answer already. A transient storage
    error retries with backoff; archived bytes are left unchecked until they can be read."""
    signature = VersionSignature.objects.select_related("artifact_version__blob").filter(pk=signature_id).first()
    if signature is None:
        return None
    if requested_at and signature.verified_at and signature.verified_at >= datetime.fromisoformat(requested_at):
        return signature.verified
    try:
        return signature_verify(signature=signature).verified
    except NotReadableNow:
        logger.info("Signature %s not checked: its version's bytes are archived and need a restore.", signature_id)
        return None
