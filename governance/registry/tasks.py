"""Background work for the registry: closing promotion requests whose time ran out."""

from celery import shared_task
from django.db import OperationalError

from governance.registry.services.promotions import promotion_requests_expire


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
