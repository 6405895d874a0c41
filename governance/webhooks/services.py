"""Webhook endpoints and the delivery of events to them.

Endpoints are managed here (checked against the address guard, their secrets shown once and rotated with an
overlap), and every delivery attempt runs through `delivery_attempt`: claim the delivery under its row lock, send
outside any transaction, record the result under the lock again. A worker that dies between claim and record
leaves the delivery due again once its lease runs out; the relay hands it to another worker, which sends it with
the same `webhook-id`, so receivers that de-duplicate see it once.

(Just over 600 lines, kept whole: secrets, endpoints and delivery share private helpers, the sealing of secrets at
rest and the disabling of a failing endpoint, and the delivery protocol above reads in one file.)
"""

import base64
import hashlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Model, Q
from django.utils import timezone

from artifacts.access.selectors import project_maintainers
from core.audit.actions import AuditAction
from core.changes import ChangeSet, diff, given
from core.crypto import webhook_signatures
from core.errors import Conflict, InvalidInput
from core.events import SUBSCRIBABLE_TYPES, EventType
from core.outbox import event_emit
from governance.webhooks import outbound
from governance.webhooks.deliveries import deliveries_hand_off
from governance.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookSecret

logger = logging.getLogger(__name__)

#: Random spread of each retry delay, so endpoints that failed together do not retry together.
RETRY_JITTER = 0.2
#: The longest a receiver's Retry-After may push a retry back.
MAX_RETRY_AFTER = timedelta(hours=24)
EXCERPT_CHARS = 2000


# Secrets at rest ---------------------------------------------------------------------------------------------


def _fernet() -> MultiFernet:
    """Secrets are encrypted with a key derived from SECRET_KEY; SECRET_KEY_FALLBACKS still decrypt after a change."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet(
        [
            Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"provenant-webhook-secret:{key}".encode()).digest()))
            for key in keys
        ]
    )


def _seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def _unseal(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise RuntimeError(
            "A webhook secret cannot be decrypted: DJANGO_SECRET_KEY changed without the old key in "
            "DJANGO_SECRET_KEY_FALLBACKS. Rotate the endpoint's secret."
        ) from None


def _new_secret(endpoint: WebhookEndpoint) -> str:
    plaintext = webhook_signatures.new_secret()
    WebhookSecret.objects.create(
        endpoint=endpoint,
        ciphertext=_seal(plaintext),
        hint=plaintext[: len(webhook_signatures.SECRET_PREFIX) + 4],
    )
    return plaintext


def signing_secrets(endpoint: WebhookEndpoint, *, at: datetime | None = None) -> list[str]:
    """The secrets that sign now: the current one, and the one it replaced while the overlap lasts. One that can no
    longer be decrypted is left out (and logged): the others still sign."""
    at = at or timezone.now()
    live = endpoint.secrets.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at)).order_by("-id")
    secrets = []
    for secret in live:
        try:
            secrets.append(_unseal(secret.ciphertext))
        except RuntimeError as error:
            logger.error("Webhook endpoint %s: secret %s… left out: %s", endpoint.pk, secret.hint, error)
    return secrets


# Endpoints --------------------------------------------------------------------------------------------------------


def _checked_url(url: str) -> str:
    if not url.isascii():
        raise InvalidInput(
            "Write the URL in ASCII: an international host name in its punycode form (xn--…), and the path "
            "percent-encoded.",
            field="url",
        )
    try:
        outbound.destination_check(url)
    except outbound.DestinationRefused as refusal:
        raise InvalidInput(str(refusal), field="url") from None
    return url


def _checked_event_types(event_types: list[str]) -> list[str]:
    if not event_types:
        raise InvalidInput(
            f"Subscribe to at least one event type: {', '.join(SUBSCRIBABLE_TYPES)}.", field="event_types"
        )
    unknown = sorted(set(event_types) - set(SUBSCRIBABLE_TYPES))
    if unknown:
        raise InvalidInput(
            f"Unknown event type {', '.join(map(repr, unknown))}. Known types: {', '.join(SUBSCRIBABLE_TYPES)}.",
            field="event_types",
        )
    return sorted(set(event_types))


#: What the log says about an endpoint: never its secret.
LOGGED_FIELDS = ("url", "description", "event_types", "is_active")


@transaction.atomic
def webhook_endpoint_create(
    *,
    project: Model,
    url: str,
    event_types: list[str],
    created_by: AbstractBaseUser | None,
    description: str = "",
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint and return it with its signing secret, which is never shown again."""
    endpoint = WebhookEndpoint.objects.create(
        project=project,
        url=_checked_url(url),
        event_types=_checked_event_types(event_types),
        description=description,
        created_by=created_by,
    )
    secret = _new_secret(endpoint)
    with ChangeSet() as changes:
        changes.audit(
            AuditAction.WEBHOOK_ENDPOINT_CREATED,
            obj=endpoint,
            actor=created_by,
            changes={name: getattr(endpoint, name) for name in LOGGED_FIELDS},
        )
    return endpoint, secret


def _locked(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return (
        WebhookEndpoint.objects.select_for_update(of=("self",), no_key=True)
        .select_related("project")
        .get(pk=endpoint.pk)
    )


@transaction.atomic
def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    changed_by: AbstractBaseUser | None,
    url: str | None = None,
    description: str | None = None,
    event_types: list[str] | None = None,
    is_active: bool | None = None,
) -> WebhookEndpoint:
    """Change what an endpoint receives, or switch it on or off. Switching a disabled endpoint back on clears the
    reason it was disabled; what failed meanwhile stays failed, to be re-sent by hand."""
    endpoint = _locked(endpoint)
    fields = given(description=description)
    if url is not None and url != endpoint.url:
        fields["url"] = _checked_url(url)
    if event_types is not None:
        fields["event_types"] = _checked_event_types(event_types)
    if is_active is not None and is_active != endpoint.is_active:
        if is_active:
            _checked_url(fields.get("url", endpoint.url))
            fields |= {"is_active": True, "disabled_at": None, "disabled_reason": "", "failing_since": None}
        else:
            fields |= _disable(endpoint, "Switched off by hand.")
    if not diff(endpoint, **fields):
        return endpoint  # what changes nothing moves no updated_at either
    with ChangeSet() as changes:
        changed = changes.update(endpoint, **fields, updated_at=timezone.now())
        changes.audit(
            AuditAction.WEBHOOK_ENDPOINT_UPDATED,
            obj=endpoint,
            actor=changed_by,
            changes={name: changed[name] for name in LOGGED_FIELDS if name in changed},
        )
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, deleted_by: AbstractBaseUser | None) -> None:
    """Delete an endpoint: it stops receiving and disappears from every list, and its secrets are destroyed.

    The row stays, switched off, with its deliveries and their attempts: a publish committing at this moment may
    already have written a delivery for it (PostgreSQL checks that reference at commit, so a removed row would fail
    the publish), and what was sent where remains on record.
    """
    endpoint = _locked(endpoint)
    if endpoint.deleted_at is not None:
        return
    facts = {name: getattr(endpoint, name) for name in LOGGED_FIELDS}
    fields = _disable(endpoint, "Deleted.") if endpoint.is_active else {}
    now = timezone.now()
    with ChangeSet() as changes:
        changes.update(endpoint, **fields, deleted_at=now, updated_at=now)
        endpoint.secrets.all().delete()
        changes.audit(AuditAction.WEBHOOK_ENDPOINT_DELETED, obj=endpoint, actor=deleted_by, changes=facts)


@transaction.atomic
def webhook_secret_rotate(
    *, endpoint: WebhookEndpoint, rotated_by: AbstractBaseUser | None, overlap: timedelta | None = None
) -> tuple[str, datetime]:
    """Give the endpoint a new secret and return it (shown once) with the moment the old one stops signing.

    Until then every delivery carries both signatures, so a receiver can switch to the new secret at its own pace.
    An overlap of zero retires the old secret at once (for a leaked one).
    """
    endpoint = _locked(endpoint)
    overlap = timedelta(hours=settings.PROVENANT_WEBHOOK_SECRET_OVERLAP_HOURS) if overlap is None else overlap
    if overlap < timedelta(0) or overlap > timedelta(days=30):
        raise InvalidInput("The overlap must be between 0 and 30 days.", field="overlap_hours")
    now = timezone.now()
    endpoint.secrets.filter(expires_at__lte=now).delete()
    retired_at = now + overlap
    # Every secret still signing stops by then: a rotation to replace a leaked secret retires all of them.
    endpoint.secrets.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=retired_at)).update(expires_at=retired_at)
    secret = _new_secret(endpoint)
    with ChangeSet() as changes:
        changes.audit(
            AuditAction.WEBHOOK_ENDPOINT_SECRET_ROTATED,
            obj=endpoint,
            actor=rotated_by,
            changes={"previous_secret_signs_until": retired_at},
        )
    return secret, retired_at


@transaction.atomic
def webhook_endpoint_test(*, endpoint: WebhookEndpoint, sent_by: AbstractBaseUser | None) -> WebhookDelivery:
    """Send a `webhook.test` event to this endpoint alone, to check the receiver and its signature handling."""
    endpoint = _locked(endpoint)
    if not endpoint.is_active:
        raise Conflict("This endpoint is disabled; switch it on before sending it a test event.")
    # A test event reports no change and records no entry, so it needs no change set: written at once, its
    # delivery is the answer.
    event = event_emit(
        EventType.WEBHOOK_TEST,
        project=endpoint.project,
        actor=sent_by,
        endpoints=[endpoint],
        data={
            "endpoint": {"id": endpoint.pk, "url": endpoint.url},
            "message": "A test event from Provenant: if its signature verifies, this endpoint is ready.",
        },
    )
    return event.deliveries.get()


@transaction.atomic
def webhook_delivery_resend(*, delivery: WebhookDelivery, resent_by: AbstractBaseUser | None) -> WebhookDelivery:
    """Send a delivery again, with the same `webhook-id` and body, whatever its state; its next attempt is manual."""
    delivery = (
        WebhookDelivery.objects.select_for_update(of=("self",), no_key=True)
        .select_related("endpoint", "event")
        .get(pk=delivery.pk)
    )
    if not delivery.endpoint.is_active:
        raise Conflict(
            f"Endpoint {delivery.endpoint.url} is disabled ({delivery.endpoint.disabled_reason}); switch it on "
            "before re-sending its deliveries."
        )
    if delivery.state == WebhookDelivery.State.PENDING and delivery.resend_requested:
        return delivery
    if delivery.attempts.filter(outcome=WebhookAttempt.Outcome.SENDING).exists() and (
        delivery.next_attempt_at is not None and delivery.next_attempt_at > timezone.now()
    ):
        raise Conflict("An attempt at this delivery is under way; re-send it once that attempt has finished.")
    before = delivery.state
    with ChangeSet() as changes:
        changes.update(
            delivery,
            state=WebhookDelivery.State.PENDING,
            next_attempt_at=timezone.now(),
            completed_at=None,
            resend_requested=True,
        )
        # The state is named even when it stays pending: the entry says where the delivery stood when re-sent.
        changes.audit(
            AuditAction.WEBHOOK_DELIVERY_RESENT,
            obj=delivery.endpoint,
            actor=resent_by,
            changes={"delivery": delivery.pk, "event": delivery.event.public_id, "state": [before, delivery.state]},
        )
    transaction.on_commit(lambda: deliveries_hand_off([delivery.pk]))
    return delivery


def _disable(endpoint: WebhookEndpoint, reason: str) -> dict[str, Any]:
    """Fail what an endpoint being switched off still had pending, and answer the fields that switch it off (the
    caller holds its lock and saves them)."""
    now = timezone.now()
    endpoint.deliveries.filter(state=WebhookDelivery.State.PENDING).update(
        state=WebhookDelivery.State.FAILED,
        next_attempt_at=None,
        handed_at=None,
        completed_at=now,
        last_error=f"Not sent: the endpoint was disabled ({reason})"[:500],
    )
    return {"is_active": False, "disabled_at": now, "disabled_reason": reason[:500]}


def _disable_for_failures(endpoint: WebhookEndpoint, reason: str) -> None:
    """The system disables an endpoint that fails (an active one, locked), and tells the people who can fix it."""
    with ChangeSet() as changes:
        changes.update(endpoint, **_disable(endpoint, reason), updated_at=timezone.now())
        changes.audit(
            AuditAction.WEBHOOK_ENDPOINT_DISABLED,
            obj=endpoint,
            changes={"is_active": [True, False], "disabled_reason": reason},
        )
    recipients = sorted(
        {user.email for user in project_maintainers(endpoint.project) if user.email}
        | ({endpoint.created_by.email} if endpoint.created_by and endpoint.created_by.email else set())
    )
    if not recipients:
        logger.warning(
            "Webhook endpoint %s was disabled (%s) and nobody has an email address to tell.", endpoint.pk, reason
        )
        return
    subject = f"[Provenant] Webhook endpoint disabled in project {endpoint.project.slug}"
    message = (
        f"The webhook endpoint {endpoint.url} of project {endpoint.project.slug} was disabled: {reason}\n\n"
        "Deliveries to it have stopped. Once the receiver works again, switch the endpoint back on "
        f"(PATCH {settings.PROVENANT_PUBLIC_URL}/api/v1/webhooks/endpoints/{endpoint.pk}/ with is_active true, or "
        "in the admin) and re-send the failed deliveries you need."
    )

    def tell() -> None:
        send_mail(subject, message, None, recipients, fail_silently=False)

    transaction.on_commit(tell, robust=True)


# Attempts -------------------------------------------------------------------------------------------------------


def attempt_lease() -> timedelta:
    """How long a claimed attempt may run before its delivery is due again (its worker presumed dead)."""
    return timedelta(seconds=2 * settings.PROVENANT_WEBHOOK_TIMEOUT_SECONDS + 5)


#: Attempts lost with their worker beyond the retry schedule before a delivery is given up (one that kills its worker).
LOST_ATTEMPTS_ALLOWED = 3
LOST_ATTEMPT = "The worker stopped before this attempt's answer was recorded; the delivery was tried again."


@dataclass(frozen=True)
class _Claim:
    attempt_id: int
    delivery_id: int
    endpoint_id: int
    endpoint_failing: bool
    number: int
    manual: bool
    url: str
    message_id: str
    body: bytes
    secrets: list[str]


def _commit_without_waiting_for_disk() -> None:
    """Let the current transaction's commit return before its WAL is flushed (PostgreSQL's asynchronous commit).

    Why: an attempt commits twice (the claim, then the result), and waiting for each commit's flush to disk was about
    half of a delivery's time on the benchmark machine (commits of 2 ms and more under other I/O, against 0.1 ms
    without the wait). Nothing the attempt guarantees rests on that wait. The commit is visible to every other
    session as soon as it returns, so the lease and the lost-attempt record, which guard against a worker that dies,
    work as before. Only a crash of the database server itself within 3 x wal_writer_delay (600 ms by default) can
    undo it, and PostgreSQL then undoes whole transactions in commit order: a claim and its result, or the result
    alone. The delivery is then pending again and is sent again with the same `webhook-id` (at least once, as
    receivers already expect). The event and its deliveries are written by the change's own transaction, which keeps
    the server's setting, so no event is lost; nor is an audit entry (the failure path, which may disable an
    endpoint and audit it, keeps it too).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _claim(delivery_id: int) -> _Claim | None:
    """Take a due delivery for one attempt, committing at once so the lease holds whatever happens next."""
    now = timezone.now()
    with transaction.atomic():
        _commit_without_waiting_for_disk()
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",), no_key=True)
            .select_related("event", "endpoint")
            .filter(pk=delivery_id, state=WebhookDelivery.State.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if delivery is None:
            return None  # done, not due yet, or held by another worker: a duplicate message
        endpoint = delivery.endpoint
        if not endpoint.is_active:
            delivery.state, delivery.next_attempt_at, delivery.completed_at = delivery.State.FAILED, None, now
            delivery.last_error = f"Not sent: the endpoint was disabled ({endpoint.disabled_reason})"[:500]
            delivery.save(update_fields=["state", "next_attempt_at", "completed_at", "last_error"])
            return None
        secrets = signing_secrets(endpoint, at=now)
        gave_up = None
        if not secrets:
            gave_up = (
                "Not sent: the endpoint's signing secret cannot be decrypted (DJANGO_SECRET_KEY changed without the "
                "old key in DJANGO_SECRET_KEY_FALLBACKS). Rotate the secret, then re-send."
            )
        elif (
            delivery.attempt_count > len(settings.PROVENANT_WEBHOOK_RETRY_SCHEDULE) + LOST_ATTEMPTS_ALLOWED
            and not delivery.resend_requested
        ):
            gave_up = f"Given up after {delivery.attempt_count} attempts, the last ones lost with their worker."
        if gave_up is not None:
            delivery.attempts.filter(outcome=WebhookAttempt.Outcome.SENDING).update(
                outcome=WebhookAttempt.Outcome.LOST, error=LOST_ATTEMPT
            )
            delivery.state, delivery.next_attempt_at, delivery.completed_at = delivery.State.FAILED, None, now
            delivery.handed_at, delivery.last_error = None, gave_up
            delivery.save(update_fields=["state", "next_attempt_at", "completed_at", "handed_at", "last_error"])
            return None
        delivery.attempt_count += 1
        delivery.next_attempt_at = now + attempt_lease()
        delivery.handed_at = None
        manual, delivery.resend_requested = delivery.resend_requested, False
        delivery.save(update_fields=["attempt_count", "next_attempt_at", "handed_at", "resend_requested"])
        if delivery.attempt_count > 1:
            delivery.attempts.filter(outcome=WebhookAttempt.Outcome.SENDING).update(
                outcome=WebhookAttempt.Outcome.LOST, error=LOST_ATTEMPT
            )
        attempt = WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempt_count,
            manual=manual,
            started_at=now,
            outcome=WebhookAttempt.Outcome.SENDING,
        )
        return _Claim(
            attempt_id=attempt.pk,
            delivery_id=delivery.pk,
            endpoint_id=endpoint.pk,
            endpoint_failing=endpoint.failing_since is not None,
            number=delivery.attempt_count,
            manual=manual,
            url=endpoint.url,
            message_id=delivery.event.public_id,
            body=delivery.event.body.encode(),
            secrets=secrets,
        )


def retry_after(headers: dict[str, str], now: datetime) -> timedelta | None:
    """A receiver's Retry-After (seconds or an HTTP date) as a delay, capped at MAX_RETRY_AFTER."""
    raw = headers.get("retry-after", "").strip()
    if not raw:
        return None
    if raw.isascii() and raw.isdigit():
        delay = timedelta(seconds=min(int(raw[:12]), int(MAX_RETRY_AFTER.total_seconds())))
    else:
        try:
            delay = parsedate_to_datetime(raw) - now
        except (TypeError, ValueError, OverflowError):
            return None
    return min(max(delay, timedelta(0)), MAX_RETRY_AFTER)


def retry_delay(number: int, *, asked: timedelta | None = None) -> timedelta | None:
    """The wait after failed attempt `number` (1 is the first), with jitter, or None when retries are used up.
    A receiver that asked for a longer wait (Retry-After) gets it."""
    schedule = settings.PROVENANT_WEBHOOK_RETRY_SCHEDULE
    if number > len(schedule):
        return None
    base = schedule[number - 1]
    delay = timedelta(seconds=base * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER))
    return max(delay, asked) if asked is not None else delay


def delivery_attempt(delivery_id: int) -> WebhookAttempt | None:
    """Make one attempt at a due delivery, if no other worker holds it, and record it; None when there was nothing
    to do (a duplicate task, a delivery not due or already done).

    Call it outside any transaction: the request may take PROVENANT_WEBHOOK_TIMEOUT_SECONDS and holds nothing.
    """
    claim = _claim(delivery_id)
    if claim is None:
        return None
    timestamp = int(time.time())
    headers = webhook_signatures.headers(claim.secrets, claim.message_id, timestamp, claim.body)
    started_at = timezone.now()
    clock = time.monotonic()
    response, error, outcome = None, "", WebhookAttempt.Outcome.FAILED
    try:
        response = outbound.post(
            claim.url, headers=headers, body=claim.body, timeout=settings.PROVENANT_WEBHOOK_TIMEOUT_SECONDS
        )
    except outbound.DestinationRefused as refusal:
        error, outcome = str(refusal), WebhookAttempt.Outcome.REFUSED
    except outbound.OutboundError as failure:
        error = str(failure)
    except Exception as unexpected:  # recorded, so the retry schedule and disabling still apply
        logger.exception("Webhook delivery %s: unexpected error while sending", claim.delivery_id)
        error = f"Could not be sent: {type(unexpected).__name__}: {unexpected}"
    else:
        if 200 <= response.status < 300:
            outcome = WebhookAttempt.Outcome.SUCCEEDED
        elif 300 <= response.status < 400:
            error = f"Answered {response.status}: redirects are not followed; register the final URL."
        else:
            error = f"Answered {response.status}."
    duration_ms = response.duration_ms if response is not None else int((time.monotonic() - clock) * 1000)
    return _attempt_record(claim, started_at, duration_ms, outcome, response, error)


def _attempt_record(
    claim: _Claim,
    started_at: datetime,
    duration_ms: int,
    outcome: str,
    response: outbound.OutboundResponse | None,
    error: str,
) -> WebhookAttempt | None:
    """Write what the attempt found, and what follows for the delivery and its endpoint.

    A success, the common case, takes two UPDATEs and no lock beyond their rows: the delivery moves to succeeded
    only if it is still this attempt's (no resend or disabling came in between). A failure locks the endpoint, which
    may be disabled, then the delivery: one order for every path that takes both.
    """
    status = response.status if response is not None else None
    excerpt = response.excerpt.decode("utf-8", "replace")[:EXCERPT_CHARS] if response is not None else ""
    attempt = WebhookAttempt(
        pk=claim.attempt_id,
        delivery_id=claim.delivery_id,
        number=claim.number,
        manual=claim.manual,
        started_at=started_at,
        duration_ms=duration_ms,
        outcome=outcome,
        status_code=status,
        response_excerpt=excerpt,
        error=error[:500],
    )
    with transaction.atomic():
        if outcome == WebhookAttempt.Outcome.SUCCEEDED:
            _commit_without_waiting_for_disk()
        fields = ["started_at", "duration_ms", "outcome", "status_code", "response_excerpt", "error"]
        if not WebhookAttempt.objects.filter(pk=attempt.pk).update(**{f: getattr(attempt, f) for f in fields}):
            return None  # the endpoint was deleted meanwhile, with its deliveries and their attempts
        if outcome == WebhookAttempt.Outcome.SUCCEEDED:
            _record_success(claim, status)
        else:
            _record_failure(claim, started_at, status, response, error)
    return attempt


def _record_success(claim: _Claim, status: int | None) -> None:
    now = timezone.now()
    if claim.endpoint_failing:  # the endpoint's row first, as every path that locks both takes them
        WebhookEndpoint.objects.filter(pk=claim.endpoint_id).update(failing_since=None)
    deliveries = WebhookDelivery.objects.filter(pk=claim.delivery_id)
    mine = deliveries.filter(attempt_count=claim.number, state=WebhookDelivery.State.PENDING, resend_requested=False)
    if not mine.update(
        state=WebhookDelivery.State.SUCCEEDED,
        next_attempt_at=None,
        completed_at=now,
        last_status_code=status,
        last_error="",
    ):
        deliveries.update(last_status_code=status, last_error="")


def _record_failure(
    claim: _Claim, started_at: datetime, status: int | None, response: outbound.OutboundResponse | None, error: str
) -> None:
    now = timezone.now()
    endpoint = (
        WebhookEndpoint.objects.select_for_update(of=("self",), no_key=True)
        .select_related("project", "created_by")
        .filter(pk=claim.endpoint_id)
        .first()
    )
    if endpoint is None:
        return
    delivery = WebhookDelivery.objects.select_for_update(no_key=True).get(pk=claim.delivery_id)
    delivery.last_status_code, delivery.last_error = status, error[:500]
    if (
        delivery.attempt_count != claim.number
        or delivery.state != WebhookDelivery.State.PENDING
        or delivery.resend_requested
    ):
        # A resend or a disabling happened meanwhile: keep what they decided, with this attempt on record.
        delivery.save(update_fields=["last_status_code", "last_error"])
        return
    if status == 410:
        delivery.state, delivery.next_attempt_at, delivery.completed_at = delivery.State.FAILED, None, now
        delivery.save(update_fields=["last_status_code", "last_error", "state", "next_attempt_at", "completed_at"])
        _disable_for_failures(endpoint, "The receiver answered 410 Gone: it no longer wants these events.")
        return
    endpoint_changed = endpoint.failing_since is None
    if endpoint_changed:
        endpoint.failing_since = started_at
    delay = retry_delay(claim.number, asked=retry_after(response.headers, now) if response else None)
    if delay is None:
        delivery.state, delivery.next_attempt_at, delivery.completed_at = delivery.State.FAILED, None, now
    else:
        delivery.next_attempt_at = now + delay
    delivery.save(update_fields=["last_status_code", "last_error", "state", "next_attempt_at", "completed_at"])
    if now - endpoint.failing_since >= timedelta(hours=settings.PROVENANT_WEBHOOK_DISABLE_AFTER_HOURS):
        _disable_for_failures(
            endpoint,
            f"Every delivery has failed since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC "
            f"(the last: {error or status}).",
        )
    elif endpoint_changed:
        endpoint.save(update_fields=["failing_since"])
