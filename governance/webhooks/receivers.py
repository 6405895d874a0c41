"""How webhooks follow the event outbox: every event written gets one delivery per endpoint subscribed to it."""

from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.db import transaction

from core.models import Event
from governance.webhooks.deliveries import deliveries_hand_off
from governance.webhooks.models import WebhookDelivery, WebhookEndpoint


def deliveries_for_events(
    sender, *, events: Sequence[Event], endpoints: Iterable[WebhookEndpoint] | None, **kwargs
) -> None:
    """Write the events' deliveries in their transaction (connected to core.outbox.event_written in apps.ready).

    Deliveries go to each event's project's active endpoints subscribed to its type, or to `endpoints` when given.
    The endpoints are read once for all the events (one query, not one per event).
    """
    if endpoints is None:
        active: dict[int, list[WebhookEndpoint]] = defaultdict(list)
        for endpoint in WebhookEndpoint.objects.filter(
            project_id__in={event.project_id for event in events}, is_active=True
        ).order_by("pk"):
            active[endpoint.project_id].append(endpoint)
        # Few endpoints per project: filtered here, because SQLite has no JSON containment lookup.
        pairs = [
            (event, endpoint)
            for event in events
            for endpoint in active.get(event.project_id, ())
            if event.type in endpoint.event_types
        ]
    else:
        endpoints = list(endpoints)
        pairs = [(event, endpoint) for event in events for endpoint in endpoints]
    # Marked handed already: the hand-off after the commit then needs no write of its own, and if this process dies
    # before it, the relay hands them over once PROVENANT_WEBHOOK_REQUEUE_AFTER_SECONDS have passed.
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                event=event, endpoint=endpoint, next_attempt_at=event.occurred_at, handed_at=event.occurred_at
            )
            for event, endpoint in pairs
        ]
    )
    if deliveries:
        ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: deliveries_hand_off(ids, marked=True))
