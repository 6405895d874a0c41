"""Background work of the supply-chain area. Tasks take ids, re-fetch, and call one service; each may run twice
(acks_late) and is safe to."""

import logging
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task

from artifacts.storage.tiers import NotReadableNow
from governance.supplychain.models import VersionSignature
from governance.supplychain.services.signatures import signature_verify

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OSError, BotoCoreError, ClientError),
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
