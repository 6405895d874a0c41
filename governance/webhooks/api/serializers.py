"""Webhook endpoints, deliveries and their attempts as the API shows them. Secrets appear in two answers only: the
endpoint's creation and a rotation."""

import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from artifacts.api.fields import ProjectField
from core.api.fields import JSONObjectField
from core.api.serializers import InputSerializer
from core.events import EVENT_SCHEMA_VERSION, SUBSCRIBABLE_TYPES, EventType
from governance.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

EVENT_TYPES_HELP = (
    f"Event types to deliver: {', '.join(SUBSCRIBABLE_TYPES)}. These are webhook event types, not audit actions "
    "(GET /api/v1/webhooks/event-types/ has each one's payload schema)."
)


@extend_schema_field({"type": "string", "enum": SUBSCRIBABLE_TYPES})
class SubscribableEventTypeField(serializers.CharField):
    """An event type an endpoint may subscribe to. Declared as an enum in the schema; an unknown name is refused by
    the service, whose message lists the known ones (a bare "not a valid choice" would not)."""


#: The envelope every delivery body shares; `data` differs per type (its JSON Schema is served by event-types/).
EVENT_PAYLOAD_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^msg_[0-9a-f]{24}$"},
        "type": {"type": "string", "enum": EventType.values},
        "version": {"type": "integer", "enum": [EVENT_SCHEMA_VERSION]},
        "timestamp": {"type": "string", "format": "date-time"},
        "project": {"type": "object"},
        "actor": {"type": "object"},
        "data": {"type": "object"},
    },
    "required": ["actor", "data", "id", "project", "timestamp", "type", "version"],
}


class WebhookEndpointSerializer(serializers.ModelSerializer):
    url = serializers.URLField(read_only=True, help_text="Where deliveries are POSTed.")
    self = serializers.HyperlinkedIdentityField(view_name="api:webhookendpoint-detail")
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    event_types = serializers.ListField(child=SubscribableEventTypeField(), read_only=True)
    secret_hints = serializers.SerializerMethodField(
        help_text="The first characters of each secret that signs now (two during a rotation's overlap)."
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "self",
            "project",
            "url",
            "description",
            "event_types",
            "is_active",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "secret_hints",
            "created_by",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_secret_hints(self, endpoint: WebhookEndpoint) -> list[str]:
        return [f"{secret.hint}…" for secret in endpoint.live_secrets]


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret (whsec_…). Shown this once: store it with the receiver."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookEndpointCreateSerializer(InputSerializer):
    project = ProjectField()
    url = serializers.URLField(max_length=2000)
    description = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    event_types = serializers.ListField(child=SubscribableEventTypeField(), help_text=EVENT_TYPES_HELP)


class WebhookEndpointUpdateSerializer(InputSerializer):
    url = serializers.URLField(max_length=2000, required=False)
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)
    event_types = serializers.ListField(child=SubscribableEventTypeField(), required=False, help_text=EVENT_TYPES_HELP)
    is_active = serializers.BooleanField(
        required=False, help_text="false stops deliveries; true resumes them (and clears why it was disabled)."
    )


class SecretRotationSerializer(InputSerializer):
    overlap_hours = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=720,
        help_text="How long the old secret keeps signing next to the new one (default 24; 0 retires it at once).",
    )


class SecretRotatedSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new signing secret. Shown this once.")
    previous_secret_signs_until = serializers.DateTimeField()
    endpoint = WebhookEndpointSerializer()


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "manual",
            "started_at",
            "duration_ms",
            "outcome",
            "status_code",
            "response_excerpt",
            "error",
        ]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    self = serializers.HyperlinkedIdentityField(view_name="api:webhookdelivery-detail")
    endpoint = serializers.PrimaryKeyRelatedField(read_only=True)
    endpoint_url = serializers.CharField(source="endpoint.url", read_only=True)
    webhook_id = serializers.CharField(source="event.public_id", read_only=True, help_text="Sent as webhook-id.")
    event_type = serializers.ChoiceField(choices=EventType.choices, source="event.type", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "self",
            "endpoint",
            "endpoint_url",
            "webhook_id",
            "event_type",
            "state",
            "attempt_count",
            "next_attempt_at",
            "created_at",
            "completed_at",
            "last_status_code",
            "last_error",
        ]


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    payload = serializers.SerializerMethodField(help_text="The body every attempt sends.")
    attempts = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "payload", "attempts"]

    @extend_schema_field(EVENT_PAYLOAD_SCHEMA)
    def get_payload(self, delivery: WebhookDelivery) -> dict:
        return json.loads(delivery.event.body)


class EventTypeSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=EventType.choices)
    description = serializers.CharField()
    subscribable = serializers.BooleanField()
    version = serializers.IntegerField(help_text="The payload schema's version, sent in every body as `version`.")
    schema = JSONObjectField(help_text="JSON Schema (2020-12) of the whole body.")
