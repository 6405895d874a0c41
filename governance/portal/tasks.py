"""Background work of the portal: the daily e-mail digest. Like the other areas' tasks: acknowledged late, safe to
run twice (a digest is sent at most once a person and day), one service."""

import logging

from celery import shared_task
from django.db import OperationalError

from governance.portal.services import inbox_digests_send

logger = logging.getLogger(__name__)


# A database briefly unreachable is retried with backoff: the digest is of the day, so it should still go today. A
# second run finds the digests already sent and sends only the missing ones.
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=1800,
    max_retries=6,
)
def send_inbox_digests() -> int:
    """E-mail each person what awaits them (CELERY_BEAT_SCHEDULE, PROVENANT_DIGEST_SCHEDULE); return how many."""
    sent = inbox_digests_send()
    logger.info("Sent %s inbox digest(s).", sent)
    return sent
