"""Background work for the lifecycle: the scheduled planning run and the application of plans.

Both acknowledge their message only when done and are handed back when their worker dies (`acks_late`,
`reject_on_worker_lost`), so each may run twice: planning again supersedes the plan it made, and applying again
resumes where the last attempt stopped (governance/lifecycle/services/plans.py).
"""

import logging

from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import OperationalError

from core.errors import DomainError
from core.jobs import enqueue_on_commit
from governance.lifecycle.jobs import APPLY_RETENTION_PLAN
from governance.lifecycle.models import RetentionPlan
from governance.lifecycle.selectors import projects_with_rules, retention_policy_current
from governance.lifecycle.services.plans import retention_plan_apply, retention_plan_create

logger = logging.getLogger(__name__)

#: Errors that pass: the database or the storage refusing for a while. Applying again resumes.
TRANSIENT_ERRORS = (OperationalError, OSError, BotoCoreError, ClientError)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def apply_retention_plan(plan_id: int, applied_by_id: int | None = None) -> str | None:
    """Apply plan `plan_id` to its end, as user `applied_by_id` (None: the project's schedule); answer its state,
    None when it is gone. A plan applied already, or superseded, is left as it is."""
    plan = RetentionPlan.objects.select_related("project").filter(pk=plan_id).first()
    if plan is None or plan.state in (RetentionPlan.State.APPLIED, RetentionPlan.State.SUPERSEDED):
        return plan.state if plan else None
    applied_by = get_user_model().objects.filter(pk=applied_by_id).first() if applied_by_id else None
    return retention_plan_apply(plan=plan, applied_by=applied_by).state


@shared_task(acks_late=True, reject_on_worker_lost=True)
def plan_retention() -> list[int]:
    """Resume the application of plans that stopped half way, plan every project whose rules in force hold a rule,
    and queue the plan's application where the project opted in (`auto_apply`); answer the new plans' ids. A
    project's failure is logged and the others are planned all the same; the next scheduled run plans it again."""
    # A plan whose application stopped (its task out of retries, its worker lost for good) is resumed here.
    for stalled in RetentionPlan.objects.filter(state=RetentionPlan.State.APPLYING).values_list("pk", flat=True):
        enqueue_on_commit(APPLY_RETENTION_PLAN, stalled, None)
    made = []
    for project in projects_with_rules().iterator():
        policy = retention_policy_current(project)
        if not policy.rules:
            continue
        try:
            plan = retention_plan_create(project=project, created_by=None, trigger=RetentionPlan.Trigger.SCHEDULE)
        except DomainError as error:
            logger.warning("Retention of project %s was not planned: %s", project.slug, error.message)
            continue
        made.append(plan.pk)
        if policy.auto_apply:
            enqueue_on_commit(APPLY_RETENTION_PLAN, plan.pk, None)
    return made
