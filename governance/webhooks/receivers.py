"""How webhooks follow the event outbox: every event written gets one delivery per endpoint subscribed to it."""

from collections.abc import Iterable

from django.db import transaction

from core.models import Event
from governance.webhooks.deliveries import deliveries_hand_off
from governance.webhooks.models import WebhookDelivery, WebhookEndpoint


def deliveries_for_event(sender, *, event: Event, endpoints: Iterable[WebhookEndpoint] | None, **kwargs) -> None:
    """Write the event's deliveries in its transaction (connected to core.outbox.event_written in apps.ready).

    Deliveries go to the project's active endpoints subscribed to the event's type, or to `endpoints` when given.
    """
    if endpoints is None:
        # Few endpoints per project: filtered here, because SQLite has no JSON containment lookup.
        endpoints = [
            endpoint
            for endpoint in WebhookEndpoint.objects.filter(project_id=event.project_id, is_active=True)
            if event.type in endpoint.event_types
        ]
    # Marked handed already: the hand-off after the commit then needs no write of its own, and if this process dies
    # before it, the relay hands them over once PROVENANT_WEBHOOK_REQUEUE_AFTER_SECONDS have passed.
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                event=event, endpoint=endpoint, next_attempt_at=event.occurred_at, handed_at=event.occurred_at
            )
            for endpoint in endpoints
        ]
    )
    if deliveries:
        ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: deliveries_hand_off(ids, marked=True))
