"""Background work for access reviews. Like artifacts/tasks.py: acknowledged late, safe to run twice, one
service each."""

import logging

from celery import shared_task
from django.db import OperationalError

from governance.access.services import campaign_open_scheduled

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
