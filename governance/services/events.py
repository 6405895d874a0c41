"""Domain events: written in the transaction of the change they report (the transactional outbox), with a delivery
for every endpoint subscribed at that moment, and handed to the workers once that transaction commits.

Services call `event_emit` (through the `*_event` helpers below) just before their `audit_record`: an event exists
if and only if its change committed. Before, not after: the audit append locks the log's head row until the commit,
so nothing that may wait on another lock (an event's insert takes a share lock on its project) may follow it.

When the broker is down the hand-off fails quietly and the relay (`deliveries_relay`, a beat task) hands the
deliveries over when it is back: nothing is lost in between.
"""

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Model, Q
from django.urls import reverse
from django.utils import timezone

from governance.events import EVENT_SCHEMA_VERSION, EventType
from governance.models import Event, WebhookDelivery, WebhookEndpoint
from governance.services.audit import acting_party, format_time

logger = logging.getLogger(__name__)

#: The versions a blob event lists, at most: a blob shared by more is named by its digest, which finds the rest.
BLOB_EVENT_VERSIONS = 100


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
    endpoints: Iterable[WebhookEndpoint] | None = None,
) -> Event:
    """Write an event and its deliveries in the current transaction; they go to the workers once it commits.

    Deliveries go to the project's active endpoints subscribed to `event_type`, or to `endpoints` when given (a
    test event to one endpoint).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_emit must run inside the transaction of the change it reports.")
    event = Event(type=event_type, schema_version=EVENT_SCHEMA_VERSION, project=project)
    event.body = body_bytes(
        {
            "id": event.public_id,
            "type": event_type,
            "version": EVENT_SCHEMA_VERSION,
            "timestamp": format_time(event.occurred_at),
            "project": project_document(project),
            "actor": _actor_document(actor),
            "data": data,
        }
    ).decode()
    event.save(force_insert=True)
    if endpoints is None:
        # Few endpoints per project: filtered here, because SQLite has no JSON containment lookup.
        endpoints = [
            endpoint
            for endpoint in WebhookEndpoint.objects.filter(project=project, is_active=True)
            if event_type in endpoint.event_types
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
    return event


def deliveries_hand_off(delivery_ids: list[int], *, marked: bool = False) -> list[int]:
    """Queue a delivery task for each id and return those queued. When the broker refuses, the rest stay for the
    relay: marked handed before each message is sent (`marked`: they were when written), unmarked if it could not
    be, so none is ever lost."""
    from governance.tasks import deliver_webhook

    if not delivery_ids:
        return []
    if not marked:
        pending = WebhookDelivery.objects.filter(pk__in=delivery_ids, state=WebhookDelivery.State.PENDING)
        pending.update(handed_at=timezone.now())
    handed: list[int] = []
    for delivery_id in delivery_ids:
        try:
            deliver_webhook.apply_async((delivery_id,), retry=False)
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


# What each event says --------------------------------------------------------------------------------------------


def _version_reference(version: Model) -> dict:
    return {
        "id": version.pk,
        "artifact": version.artifact.name,
        "number": version.number,
        "url": api_url("artifactversion-detail", version.pk),
    }


def artifact_version_published_event(version: Model, *, actor: AbstractBaseUser | None) -> Event:
    artifact, blob, run = version.artifact, version.blob, version.run
    return event_emit(
        EventType.ARTIFACT_VERSION_PUBLISHED,
        project=artifact.project,
        actor=actor,
        data={
            "artifact": {
                "id": artifact.pk,
                "name": artifact.name,
                "kind": artifact.kind,
                "url": api_url("artifact-detail", artifact.pk),
            },
            "artifact_version": {
                "id": version.pk,
                "number": version.number,
                "digest": blob.prefixed_digest,
                "size": blob.size,
                "media_type": version.media_type,
                "created_at": format_time(version.created_at),
                "url": api_url("artifactversion-detail", version.pk),
                "download_url": api_url("artifactversion-download", version.pk),
            },
            "run": None
            if run is None
            else {
                "id": run.pk,
                "external_id": run.external_id,
                "code_commit": run.code_commit,
                "url": api_url("run-detail", run.pk),
            },
        },
    )


def blob_checked_events(blob: Model, *, before: str, found: Mapping[str, Any]) -> list[Event]:
    """`blob.verified` when a blob becomes verified (its first proof, or proof after a repair) and `blob.corrupt`
    when it becomes corrupt, once for each project holding it. A re-check that confirms the state it had is
    audited but emits nothing: the scrub re-proves every blob periodically, and receivers want changes."""
    Blob = apps.get_model("artifacts", "Blob")
    ArtifactVersion = apps.get_model("artifacts", "ArtifactVersion")
    if blob.state == before:
        return []
    corrupt = blob.state == Blob.State.CORRUPT
    blob_document = {
        "digest": blob.prefixed_digest,
        "size": blob.size,
        "state": blob.state,
        "verified_at": format_time(blob.verified_at),
    }
    events = []
    projects = apps.get_model("artifacts", "Project").objects.filter(blob_links__blob=blob).order_by("pk")
    for project in projects:
        versions = (
            ArtifactVersion.objects.filter(blob=blob, artifact__project=project)
            .select_related("artifact")
            .order_by("pk")[:BLOB_EVENT_VERSIONS]
        )
        data: dict[str, Any] = {"blob": blob_document, "artifact_versions": [_version_reference(v) for v in versions]}
        if corrupt:
            data["found"] = dict(found)
        else:
            data["repaired"] = before == Blob.State.CORRUPT
        events.append(
            event_emit(EventType.BLOB_CORRUPT if corrupt else EventType.BLOB_VERIFIED, project=project, data=data)
        )
    return events


def access_review_completed_events(campaign: Model) -> list[Event]:
    """One event for each project the campaign covered, counting that project's items."""
    AccessReviewItem = apps.get_model("governance", "AccessReviewItem")
    Project = apps.get_model("artifacts", "Project")
    counts: dict[int, dict[str, int]] = {}
    for project_id, decision in AccessReviewItem.objects.filter(campaign=campaign).values_list(
        "project_id", "decision"
    ):
        tally = counts.setdefault(project_id, {"items": 0, "kept": 0, "revoked": 0})
        tally["items"] += 1
        tally["kept"] += decision == AccessReviewItem.Decision.KEEP
        tally["revoked"] += decision == AccessReviewItem.Decision.REVOKE
    return [
        event_emit(
            EventType.ACCESS_REVIEW_COMPLETED,
            project=project,
            data={
                "access_review": {
                    "id": campaign.pk,
                    "title": campaign.title,
                    "opened_at": format_time(campaign.opened_at),
                    "completed_at": format_time(campaign.completed_at),
                    **counts[project.pk],
                }
            },
        )
        for project in Project.objects.filter(pk__in=counts).order_by("pk")
    ]


def model_version_document(version: Model) -> dict:
    return {
        "id": version.pk,
        "model": version.registered_model.name,
        "version": version.number,
        "stage": version.stage,
        "artifact_version": _version_reference(version.artifact_version),
        "url": api_url("modelversion-detail", version.pk),
    }


def promotion_event(
    event_type: str, request: Model, *, approvals: int, actor: AbstractBaseUser | None, reason: str | None = None
) -> Event:
    """`promotion.requested`, `.approved` (each approval, with the count that now stands, and once more when a
    request approved earlier is applied), `.rejected`, or `.closed` (withdrawn, expired, invalidated: `reason`)."""
    return event_emit(
        event_type,
        project=request.registered_model.project,
        actor=actor,
        data=({"reason": reason} if reason is not None else {})
        | {
            "promotion_request": {
                "id": request.pk,
                "kind": request.kind,
                "target_stage": request.target_stage,
                "state": request.state,
                "requested_by": request.requested_by.get_username(),
                "approvals": approvals,
                "approvals_required": request.approvals_required,
                "url": api_url("promotionrequest-detail", request.pk),
            },
            "model_version": model_version_document(request.model_version),
        },
    )


def stage_changed_event(version: Model, *, from_stage: str, break_glass: bool, actor: AbstractBaseUser | None) -> Event:
    return event_emit(
        EventType.MODEL_VERSION_STAGE_CHANGED,
        project=version.registered_model.project,
        actor=actor,
        data={
            "model_version": model_version_document(version),
            "from_stage": from_stage,
            "to_stage": version.stage,
            "break_glass": break_glass,
        },
    )
