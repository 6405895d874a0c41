"""Domain events: written in the transaction of the change they report (the transactional outbox), with a delivery
for every endpoint subscribed at that moment, and handed to the workers once that transaction commits.

Services give their events to the change's ChangeSet (core/changes.py), through the `*_event` helpers of their
area (artifacts/events.py, governance/registry/events.py, governance/access/events.py); the set writes them with
`event_emit` before the change's audit entries: an event exists if and only if its change committed. Before, not
after: the audit append locks the log's head row until the commit, so nothing that may wait on another lock (the
deliveries written with an event take share locks on the endpoints they reference) may follow it.

Core knows no subscriber: `event_written` is sent inside the same transaction, and the webhooks area answers it
by writing one delivery per subscribed endpoint (governance/webhooks/receivers.py), so an event and its deliveries
commit together or not at all.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Model
from django.dispatch import Signal
from django.urls import reverse

from core.audit.recorder import acting_party, format_time
from core.events import EVENT_SCHEMA_VERSION
from core.models import Event

#: Sent with `events` (just written, in order) and `endpoints` (None, or the only endpoints to deliver them to)
#: inside the transaction of the change; a receiver that raises undoes the change with it.
event_written = Signal()


def api_url(name: str, *args: Any) -> str:
    """An absolute link into the API, under PROVENANT_PUBLIC_URL (events are often written with no request)."""
    return settings.PROVENANT_PUBLIC_URL + reverse(f"api:{name}", args=args)


def body_bytes(document: Mapping[str, Any]) -> bytes:
    """The one serialisation of an event: sorted keys, no spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _actor_document(actor: AbstractBaseUser | None) -> dict:
    party = acting_party(actor)
    user = party["kind"] == "user"
    return {
        "kind": "user" if user else "system",
        "id": party["user_id"],
        "username": party["label"] if user else None,
        "label": party["label"],
    }


def project_document(project: Model) -> dict:
    return {
        "id": project.pk,
        "slug": project.slug,
        "name": project.name,
        "url": api_url("project-detail", project.slug),
    }


def event_emit(
    event_type: str,
    *,
    project: Model,
    data: Mapping[str, Any],
    actor: AbstractBaseUser | None = None,
    endpoints: Iterable[Model] | None = None,
) -> Event:
    """Write an event in the current transaction and tell its subscribers (`event_written`) in it too.

    `endpoints`, when given, are the only webhook endpoints to deliver to (a test event to one endpoint); by default
    the webhooks area delivers to the project's active endpoints subscribed to `event_type`.
    """
    [event] = events_emit([EventSpec(event_type, project, data, actor)], endpoints=endpoints)
    return event


@dataclass(frozen=True)
class EventSpec:
    """One event to write, as `event_emit` takes it."""

    type: str
    project: Model
    data: Mapping[str, Any]
    actor: AbstractBaseUser | None = None


def events_emit(specs: Sequence[EventSpec], *, endpoints: Iterable[Model] | None = None) -> list[Event]:
    """Write the events in order, as `event_emit` does each, with one INSERT and one `event_written` for them all:
    a change that reports hundreds of acts (a retention plan's batch) asks for its subscribers once, not per act."""
    if not specs:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_emit must run inside the transaction of the change it reports.")
    actors: dict[int | None, dict] = {}
    events = []
    for spec in specs:
        key = spec.actor.pk if spec.actor is not None else None
        actor = actors.get(key) or actors.setdefault(key, _actor_document(spec.actor))
        event = Event(type=spec.type, schema_version=EVENT_SCHEMA_VERSION, project_id=spec.project.pk)
        event.body = body_bytes(
            {
                "id": event.public_id,
                "type": spec.type,
                "version": EVENT_SCHEMA_VERSION,
                "timestamp": format_time(event.occurred_at),
                "project": project_document(spec.project),
                "actor": actor,
                "data": spec.data,
            }
        ).decode()
        events.append(event)
    Event.objects.bulk_create(events)
    event_written.send(sender=Event, events=events, endpoints=endpoints)
    return events
