"""Domain events and their delivery to webhook endpoints.

`Event` (core.models) is the transactional outbox: a service writes it in the transaction of the change it
reports, and the webhooks area adds one
`WebhookDelivery` for each endpoint subscribed at that moment, so an event exists if and only if its change
committed, and nothing about its delivery lives only in the broker. A delivery is pending until an attempt
succeeds or the retries run out; `next_attempt_at` says when a worker may next try it, and every try is kept
as a `WebhookAttempt`, written when the try begins, so one whose worker died is on record too.
"""

from typing import Self

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from artifacts.access.querysets import ProjectScopedQuerySet
from artifacts.access.roles import Verb
from artifacts.access.rule import User
from artifacts.models import Project
from core.models import Event


class ManagedOrAuditedQuerySet(ProjectScopedQuerySet):
    """A project's webhooks and the events sent to them are seen by whoever manages them or audits the project.
    Viewers do not see them: an endpoint's URL and its deliveries' answers are the receiver's business."""

    def visible_to(self, user: User) -> Self:
        return self.filter(self.access_condition(user, Verb.MANAGE) | self.access_condition(user, Verb.AUDIT))


class WebhookEndpointQuerySet(ManagedOrAuditedQuerySet):
    def visible_to(self, user: User) -> Self:
        """Endpoints `user` may see; deleted ones are kept (their deliveries are a record) but shown to nobody."""
        return super().visible_to(user).filter(deleted_at__isnull=True)


class WebhookDeliveryQuerySet(ManagedOrAuditedQuerySet):
    project_path = "endpoint__project_id"


class EventQuerySet(ManagedOrAuditedQuerySet):
    """The outbox's rows as the webhooks area reads them: `EventQuerySet(model=Event)`. An event names its project
    by id, and core, below the access rule, gives Event a plain manager."""


class WebhookEndpoint(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=300, blank=True)
    event_types = models.JSONField(help_text="The event types delivered to this endpoint.")
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Set by the first failed attempt after a success (or since creation), cleared by a success: an endpoint failing
    # since longer than PROVENANT_WEBHOOK_DISABLE_AFTER_HOURS is disabled.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Deleting keeps the row, switched off: an event written concurrently may still name it in a delivery, and
    # what was sent where stays on record.
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name = "webhook endpoint"
        constraints = [
            models.CheckConstraint(
                condition=Q(is_active=True, disabled_at__isnull=True) | Q(is_active=False, disabled_at__isnull=False),
                name="webhook_endpoint_disabled_at_iff_inactive",
            ),
            models.CheckConstraint(
                condition=Q(deleted_at__isnull=True) | Q(is_active=False), name="webhook_endpoint_deleted_is_inactive"
            ),
        ]

    def __str__(self) -> str:
        return self.url


class WebhookSecret(models.Model):
    """A signing secret, encrypted at rest. The current one has no `expires_at`; after a rotation the previous one
    keeps signing until it expires, so receivers can switch without missing a delivery."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="secrets")
    ciphertext = models.TextField()
    hint = models.CharField(max_length=16, help_text="The secret's first characters, to recognise it.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint"], condition=Q(expires_at__isnull=True), name="one_current_webhook_secret"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hint}…"


class WebhookDelivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    # When a worker may next try it; while an attempt runs, when that attempt is given up for lost.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When it was last handed to the broker, cleared when a worker takes it: the relay hands it again if no worker
    # took it (a message lost with the broker).
    handed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # Set by a resend, so the attempt it causes is recorded as manual.
    resend_requested = models.BooleanField(default=False)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="one_delivery_per_event_and_endpoint"),
            models.CheckConstraint(
                condition=Q(state="pending", next_attempt_at__isnull=False, completed_at__isnull=True)
                | (~Q(state="pending") & Q(next_attempt_at__isnull=True, completed_at__isnull=False)),
                name="webhook_delivery_due_iff_pending",
            ),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(state="pending"), name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "-id"], name="webhook_delivery_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


class WebhookAttempt(models.Model):
    class Outcome(models.TextChoices):
        SENDING = "sending", "Sending"
        SUCCEEDED = "succeeded", "2xx answer"
        FAILED = "failed", "Failed"
        REFUSED = "refused", "Refused by the address guard"
        LOST = "lost", "Lost with its worker"

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    manual = models.BooleanField(default=False, help_text="Made by a resend, not by the retry schedule.")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="one_attempt_per_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"
