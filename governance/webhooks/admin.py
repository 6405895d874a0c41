"""Webhook endpoints, their secrets, deliveries and attempts, and the events behind them, in the admin.

Endpoints are added, edited, rotated, tested and deleted through the webhook services, by the maintainers of their
project; their deliveries (with every attempt) and the events are a record, shown read-only to the project's
maintainers and auditors, and a delivery is re-sent through its service.
"""

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db import models
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.safestring import SafeString

from artifacts.access.roles import Verb
from artifacts.access.rule import can
from core.accounts import require_step_up
from core.admin import (
    ServiceWrittenAdmin,
    ViewOnlyMixin,
    admin_link,
    changelist_link,
    json_block,
    skipped,
    yes_no_filter,
)
from core.audit.recorder import format_time
from core.errors import DomainError
from core.events import SUBSCRIBABLE_TYPES, EventType
from core.models import Event
from governance.webhooks import outbound
from governance.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from governance.webhooks.selectors import events_visible_to
from governance.webhooks.services import (
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_test,
    webhook_endpoint_update,
    webhook_secret_rotate,
)

FailingFilter = yes_no_filter("failing", lambda: Q(failing_since__isnull=False))

# Webhooks -------------------------------------------------------------------------------------------------


class WebhookEndpointForm(forms.ModelForm):
    """Register an endpoint in a project one maintains, or change where it points, what it receives and whether it
    is on. The project is chosen once."""

    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="Where deliveries are POSTed.")
    event_types = forms.MultipleChoiceField(
        choices=[(event_type, EventType(event_type).label) for event_type in SUBSCRIBABLE_TYPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="The events POSTed to this endpoint. A test event can be sent to it whatever it subscribes to.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("project", "url", "description", "event_types", "is_active")

    def clean_url(self) -> str:
        """The address guard the service applies, run here too so a refused URL is an error on this field, with
        everything typed kept, instead of a message over an emptied form."""
        url = self.cleaned_data["url"]
        if self.instance.pk is None or url != self.instance.url:
            try:
                outbound.destination_check(url)
            except outbound.DestinationRefused as refusal:
                raise forms.ValidationError(str(refusal)) from None
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceWrittenAdmin):
    """Where a project's events are POSTed. Every write is a webhook service call; a signing secret is shown once,
    in the message after the endpoint is added or its secret rotated, and never again.

    Staff need the model's permissions as for any admin page, and beyond them see the endpoints of the projects
    they maintain or audit; only maintainers (and superusers) change them."""

    form = WebhookEndpointForm
    # The form a read-only viewer gets is built from the model: its URL field takes the same scheme default.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("url", "project", "is_active", "failing_since", "disabled_reason", "created_at")
    list_filter = ("is_active", FailingFilter, ("project", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("project",)
    search_fields = ("url", "project__slug", "description")
    date_hierarchy = "created_at"
    fields = ("project", "url", "description", "event_types", "is_active")
    identity_fields = ("project",)
    detail_fields = (
        "disabled_reason",
        "disabled_at",
        "failing_since",
        "secret_hints",
        "created_by",
        "created_at",
        "updated_at",
        "deliveries",
    )
    actions = ["rotate_secrets", "send_test_events"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEndpoint]:
        return super().get_queryset(request).select_related("project", "created_by")

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> list[str]:
        if obj is None:
            return [name for name in self.fields if name != "is_active"]  # an endpoint starts switched on
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> tuple[str, ...]:
        if obj is not None and not self.has_change_permission(request, obj):
            return (*self.fields, *self.detail_fields)  # an auditor's view
        return super().get_readonly_fields(request, obj)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "project":
            # Only projects the user maintains are offered; any other is refused as if it did not exist.
            field.queryset = field.queryset.where(request.user, Verb.MANAGE)
        return field

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it deletes rows; an endpoint is deleted through its service
        return actions

    def has_change_permission(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or can(request.user, Verb.MANAGE, obj.project))

    def has_delete_permission(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> bool:
        allowed = admin.ModelAdmin.has_delete_permission(self, request, obj)
        return allowed and (obj is None or can(request.user, Verb.MANAGE, obj.project))

    def has_manage_permission(self, request: HttpRequest) -> bool:
        """Rotating and testing change an endpoint, so they take the model's change permission; each endpoint
        still needs the maintainer role on its project."""
        return self.has_change_permission(request)

    def create(self, request: HttpRequest, data: dict[str, Any]) -> WebhookEndpoint:
        endpoint, secret = webhook_endpoint_create(
            project=data["project"],
            url=data["url"],
            event_types=data["event_types"],
            description=data["description"],
            created_by=request.user,
        )
        self.message_user(
            request,
            f"Signing secret for {endpoint.url}: {secret} — copy it now, it is not shown again.",
            level=messages.SUCCESS,
        )
        return endpoint

    def update(self, request: HttpRequest, obj: WebhookEndpoint, data: dict[str, Any]) -> WebhookEndpoint:
        return webhook_endpoint_update(
            endpoint=obj,
            changed_by=request.user,
            url=data["url"],
            description=data["description"],
            event_types=data["event_types"],
            is_active=data["is_active"],
        )

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        webhook_endpoint_delete(endpoint=obj, deleted_by=request.user)

    def _each_managed(
        self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint], act: Callable[[WebhookEndpoint], str]
    ) -> None:
        """Run `act` on each endpoint the user maintains, saying what it did; refusals are reported as errors."""
        refusals = []
        for endpoint in queryset.select_related("project"):
            if not can(request.user, Verb.MANAGE, endpoint.project):
                refusals.append(f"{endpoint.url}: that takes the maintainer role on project {endpoint.project.slug}.")
                continue
            try:
                done = act(endpoint)
            except DomainError as error:
                refusals.append(f"{endpoint.url}: {error.message}")
            else:
                self.log_change(request, endpoint, done)
                self.message_user(request, f"{done}", level=messages.SUCCESS)
        if refusals:
            self.message_user(request, skipped(refusals), level=messages.ERROR)

    @admin.action(description="Rotate secret (the old one signs for the usual overlap)", permissions=["manage"])
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        require_step_up(request)  # rotating a signing secret: a fresh authentication first (core/accounts.py)

        def rotate(endpoint: WebhookEndpoint) -> str:
            secret, until = webhook_secret_rotate(endpoint=endpoint, rotated_by=request.user)
            return (
                f"New signing secret for {endpoint.url}: {secret} — copy it now, it is not shown again. "
                f"The previous secret keeps signing until {format_time(until)}."
            )

        self._each_managed(request, queryset, rotate)

    @admin.action(description="Send a test event", permissions=["manage"])
    def send_test_events(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        def send(endpoint: WebhookEndpoint) -> str:
            delivery = webhook_endpoint_test(endpoint=endpoint, sent_by=request.user)
            return f"Sent a test event to {endpoint.url} (delivery #{delivery.pk})."

        self._each_managed(request, queryset, send)

    def log_change(self, request: HttpRequest, obj: WebhookEndpoint, message: Any) -> Any:
        # The admin's own log must never keep a secret: what an action did is logged without it.
        if isinstance(message, str) and message.startswith("New signing secret"):
            message = "Rotated the signing secret."
        return super().log_change(request, obj, message)

    @admin.display(description="secrets signing now")
    def secret_hints(self, endpoint: WebhookEndpoint) -> str:
        live = endpoint.secrets.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        return ", ".join(f"{secret.hint}…" for secret in live.order_by("-id"))

    @admin.display(description="deliveries")
    def deliveries(self, endpoint: WebhookEndpoint) -> SafeString:
        return changelist_link(WebhookDelivery, "deliveries to this endpoint", endpoint__id__exact=endpoint.pk)


class WebhookAttemptInline(ViewOnlyMixin, admin.TabularInline):
    model = WebhookAttempt
    fields = (
        "number",
        "manual",
        "started_at",
        "duration_ms",
        "outcome",
        "status_code",
        "response_excerpt",
        "error",
    )
    readonly_fields = fields
    extra = 0


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """Each event's delivery to each endpoint, with every attempt: a record, never edited. A delivery is re-sent
    (same webhook-id, same body) through its service by a maintainer of the endpoint's project."""

    list_display = (
        "event_type",
        "webhook_id",
        "endpoint",
        "state",
        "attempt_count",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("state", "event__type", ("endpoint", admin.RelatedOnlyFieldListFilter))
    # The event and the endpoint of every row come in the page's one query.
    list_select_related = ("event", "endpoint")
    search_fields = ("=event__public_id", "endpoint__url")
    show_full_result_count = False
    fields = (
        "event_type",
        "webhook_id",
        "endpoint_link",
        "state",
        "attempt_count",
        "next_attempt_at",
        "created_at",
        "completed_at",
        "last_status_code",
        "last_error",
        "payload",
    )
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        return super().get_queryset(request).visible_to(request.user)

    def has_resend_permission(self, request: HttpRequest) -> bool:
        """Re-sending is the one change a delivery admits, so it takes the model's change permission; each
        delivery still needs the maintainer role on its endpoint's project."""
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}")

    @admin.action(description="Re-send selected deliveries", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        resent, refusals = [], []
        for delivery in queryset.select_related("event", "endpoint__project"):
            if not can(request.user, Verb.MANAGE, delivery.endpoint.project):
                refusals.append(
                    f"Re-sending to {delivery.endpoint.url} takes the maintainer role on project "
                    f"{delivery.endpoint.project.slug}."
                )
                continue
            try:
                webhook_delivery_resend(delivery=delivery, resent_by=request.user)
            except DomainError as error:
                refusals.append(error.message)
            else:
                resent.append(delivery.event.public_id)
        if resent:
            self.message_user(
                request, f"Re-sending {len(resent)} delivery(ies): {', '.join(resent)}.", level=messages.SUCCESS
            )
        if refusals:
            self.message_user(request, skipped(refusals), level=messages.ERROR)

    @admin.display(description="event type", ordering="event__type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    @admin.display(description="webhook id")
    def webhook_id(self, delivery: WebhookDelivery) -> str:
        return delivery.event.public_id

    @admin.display(description="endpoint")
    def endpoint_link(self, delivery: WebhookDelivery) -> SafeString | None:
        return admin_link(delivery.endpoint)

    @admin.display(description="payload")
    def payload(self, delivery: WebhookDelivery) -> SafeString:
        return json_block(json.loads(delivery.event.body))


@admin.register(Event)
class EventAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """The outbox: every event exactly as it was sent, read-only (the database refuses changes anyway), to the
    maintainers and auditors of its project."""

    list_display = ("type", "public_id", "project", "occurred_at")
    list_filter = ("type",)
    search_fields = ("=public_id",)
    show_full_result_count = False
    fields = ("type", "public_id", "schema_version", "project", "occurred_at", "body_pretty")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        return events_visible_to(request.user)

    @admin.display(description="project", ordering="project_slug")
    def project(self, event: Event) -> str:
        return event.project_slug

    @admin.display(description="body")
    def body_pretty(self, event: Event) -> SafeString:
        return json_block(json.loads(event.body))
