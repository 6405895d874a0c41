"""Background work for the lifecycle: the hourly storage snapshots (governance/lifecycle/services/snapshots.py)."""

from celery import shared_task
from django.db import OperationalError

from governance.lifecycle.services.snapshots import storage_snapshots_take_hourly


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=5,
    queue="default",
)
def take_storage_snapshots() -> int:
    """Snapshot every project not yet snapshotted this hour and prune old hourly snapshots; return how many were
    taken. Idempotent within the hour: a redelivered or doubled run writes nothing more."""
    return len(storage_snapshots_take_hourly())
