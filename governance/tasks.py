"""Background work for governance. Like artifacts/tasks.py: acknowledged late, safe to run twice, one service each."""

import logging

from celery import shared_task
from django.db import OperationalError

from governance.services import campaign_open_scheduled
from governance.services.audit import tree_head_sign
from governance.services.events import deliveries_relay
from governance.services.promotions import promotion_requests_expire
from governance.services.webhooks import delivery_attempt

logger = logging.getLogger(__name__)


# The schedule comes round once a quarter, so a database that is briefly unreachable is retried, with backoff,
# rather than left for the next run. A refusal (nobody can review a project) is not retried: it needs a person.
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=3600,
    max_retries=8,
)
def open_scheduled_access_reviews() -> int | None:
    """Open the periodic access review (CELERY_BEAT_SCHEDULE, PROVENANT_ACCESS_REVIEW_SCHEDULE); return its id.

    One campaign covers every project rather than one per project: one report for the auditor, one due date,
    and each item still goes to its own project's maintainers. Nothing is opened (None) while the schedule's
    previous campaign is still open, so a redelivered task or an overdue review never adds a second one.
    """
    campaign = campaign_open_scheduled()
    if campaign is None:
        logger.info("No access review opened: the last scheduled one is still open, or there is no grant.")
        return None
    logger.info("Opened access review %s (%s), due %s.", campaign.pk, campaign.title, campaign.due_at.isoformat())
    return campaign.pk


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=5,
)
def sign_audit_tree_head() -> int | None:
    """Sign a tree head of the audit log if it has grown since the last (PROVENANT_AUDIT_TREE_HEAD_SCHEDULE);
    return the size it covers. Running twice signs once more at most: both heads are true."""
    head = tree_head_sign(only_if_grown=True)
    return None if head is None else head.tree_size


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


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=5,
)
def expire_promotion_requests() -> int:
    """Close open promotion requests whose policy's time to live ran out; return how many."""
    return promotion_requests_expire()
