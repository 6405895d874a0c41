"""Background work for the audit log: signing tree heads as the log grows."""

from celery import shared_task
from django.db import OperationalError

from core.audit.recorder import tree_head_sign


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
