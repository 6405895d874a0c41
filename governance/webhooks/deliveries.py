"""Handing webhook deliveries to the workers once their event's transaction commits, and again by the relay."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.jobs import enqueue
from governance.webhooks.jobs import DELIVER_WEBHOOK
from governance.webhooks.models import WebhookDelivery

logger = logging.getLogger(__name__)


def deliveries_hand_off(delivery_ids: list[int], *, marked: bool = False) -> list[int]:
    """Queue a delivery task for each id and return those queued. When the broker refuses, the rest stay for the
    relay: marked handed before each message is sent (`marked`: they were when written), unmarked if it could not
    be, so none is ever lost."""
    if not delivery_ids:
        return []
    if not marked:
        pending = WebhookDelivery.objects.filter(pk__in=delivery_ids, state=WebhookDelivery.State.PENDING)
        pending.update(handed_at=timezone.now())
    handed: list[int] = []
    for delivery_id in delivery_ids:
        try:
            enqueue(DELIVER_WEBHOOK, delivery_id, retry=False)
        except Exception as error:
            logger.warning(
                "Could not queue %d webhook deliveries (%s); the relay will hand them over when the broker is back.",
                len(delivery_ids) - len(handed),
                error,
            )
            WebhookDelivery.objects.filter(
                pk__in=[pk for pk in delivery_ids if pk not in set(handed)], state=WebhookDelivery.State.PENDING
            ).update(handed_at=None)
            break
        handed.append(delivery_id)
    return handed


def deliveries_relay(*, limit: int = 1000) -> list[int]:
    """Hand over the deliveries that are due and that no worker holds: new ones the broker was down for, retries
    whose time has come, and those whose message was lost or whose worker died mid-attempt."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.PROVENANT_WEBHOOK_REQUEUE_AFTER_SECONDS)
    due = (
        WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING, next_attempt_at__lte=now)
        .filter(Q(handed_at__isnull=True) | Q(handed_at__lt=stale))
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    return deliveries_hand_off(list(due))
