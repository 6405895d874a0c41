"""Background work for governance. Like artifacts/tasks.py: acknowledged late, safe to run twice, one service each."""

import logging

from celery import shared_task

from governance.webhooks.deliveries import deliveries_relay
from governance.webhooks.services import delivery_attempt

logger = logging.getLogger(__name__)


# No automatic retry: a delivery that fails is scheduled again in the database (the retry schedule), and one whose
# worker died is handed over again by the relay once its lease runs out, with the same webhook-id either way.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def deliver_webhook(delivery_id: int) -> str | None:
    """Make one attempt at a webhook delivery; a duplicate message finds nothing due and does nothing."""
    attempt = delivery_attempt(delivery_id)
    return None if attempt is None else attempt.outcome


@shared_task(acks_late=True, reject_on_worker_lost=True)
def relay_webhook_deliveries() -> int:
    """Hand due webhook deliveries to the workers (PROVENANT_WEBHOOK_RELAY_INTERVAL_SECONDS): retries whose time
    has come, and deliveries written while the broker was down or whose worker died."""
    return len(deliveries_relay())
