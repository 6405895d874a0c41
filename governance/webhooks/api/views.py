"""Webhooks over the API: endpoints (maintainers manage them, auditors read them), their deliveries with every
attempt, re-sending by hand, and the catalogue of event types with their payload schemas.

A project's viewers and contributors do not see its endpoints at all (404): an endpoint's URL and its receivers'
answers are not theirs to read.
"""

from datetime import timedelta

import django_filters
from django.db.models import Prefetch, Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from artifacts.access.api_permission import AuthenticatedWithinTokenScope
from artifacts.access.roles import Verb
from artifacts.api.base import ResourceViewSet, require
from core.accounts import require_step_up
from core.events import EVENT_SCHEMA_VERSION, SUBSCRIBABLE_TYPES, EventType, payload_schema
from core.filters import BooleanFilter
from core.validators import MAX_ID
from governance.webhooks import services
from governance.webhooks.api import serializers as s
from governance.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookSecret


def _with_live_secrets(endpoints):
    live = WebhookSecret.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
    return endpoints.prefetch_related(Prefetch("secrets", queryset=live.order_by("-id"), to_attr="live_secrets"))


class WebhookEndpointFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug", help_text="A project's slug.")
    is_active = BooleanFilter()

    class Meta:
        model = WebhookEndpoint
        fields = ["project", "is_active"]


class WebhookDeliveryFilter(django_filters.FilterSet):
    endpoint = django_filters.NumberFilter(
        field_name="endpoint_id", min_value=1, max_value=MAX_ID, help_text="An endpoint's id."
    )
    project = django_filters.CharFilter(field_name="endpoint__project__slug", help_text="A project's slug.")
    state = django_filters.ChoiceFilter(choices=WebhookDelivery.State.choices)
    event_type = django_filters.ChoiceFilter(field_name="event__type", choices=EventType.choices)
    webhook_id = django_filters.CharFilter(field_name="event__public_id", help_text="The event's webhook-id.")

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "project", "state", "event_type", "webhook_id"]


@extend_schema(tags=["webhooks"])
class WebhookEndpointViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ResourceViewSet
):
    queryset = WebhookEndpoint.objects.select_related("project", "created_by").order_by("-id")
    filterset_class = WebhookEndpointFilter
    output_serializer_class = s.WebhookEndpointSerializer
    input_serializer_classes = {
        "create": s.WebhookEndpointCreateSerializer,
        "partial_update": s.WebhookEndpointUpdateSerializer,
        "rotate_secret": s.SecretRotationSerializer,
    }
    required_verbs = {
        "partial_update": Verb.MANAGE,
        "destroy": Verb.MANAGE,
        "rotate_secret": Verb.MANAGE,
        "send_test": Verb.MANAGE,
    }
    not_allowed_message = "{method} is not offered here: change an endpoint with PATCH."

    def get_queryset(self):
        return _with_live_secrets(super().get_queryset())

    @extend_schema(request=s.WebhookEndpointCreateSerializer, responses={201: s.WebhookEndpointCreatedSerializer})
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        require(request.user, Verb.MANAGE, data["project"])
        endpoint, secret = services.webhook_endpoint_create(created_by=request.user, **data)
        endpoint = self.get_queryset().get(pk=endpoint.pk)
        endpoint.secret = secret
        body = s.WebhookEndpointCreatedSerializer(endpoint, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.WebhookEndpointUpdateSerializer, responses=s.WebhookEndpointSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        endpoint = self.get_object()
        data = self.validated_input()
        return self.write(lambda: services.webhook_endpoint_update(endpoint=endpoint, changed_by=request.user, **data))

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        services.webhook_endpoint_delete(endpoint=instance, deleted_by=self.request.user)

    @extend_schema(request=s.SecretRotationSerializer, responses=s.SecretRotatedSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        """A new secret, shown once; the old one keeps signing alongside it for `overlap_hours`."""
        endpoint = self.get_object()
        require_step_up(request)
        data = self.validated_input()
        hours = data.get("overlap_hours")
        secret, until = services.webhook_secret_rotate(
            endpoint=endpoint, rotated_by=request.user, overlap=None if hours is None else timedelta(hours=hours)
        )
        endpoint = self.get_queryset().get(pk=endpoint.pk)
        context = self.get_serializer_context()
        return Response(
            s.SecretRotatedSerializer(
                {"secret": secret, "previous_secret_signs_until": until, "endpoint": endpoint}, context=context
            ).data
        )

    @extend_schema(request=None, responses={202: s.WebhookDeliverySerializer})
    @action(detail=True, methods=["post"], url_path="test")
    def send_test(self, request: Request, pk: str) -> Response:
        """Send a `webhook.test` event to this endpoint alone; follow the returned delivery to see its attempts."""
        delivery = services.webhook_endpoint_test(endpoint=self.get_object(), sent_by=request.user)
        delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery.pk)
        body = s.WebhookDeliverySerializer(delivery, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["webhooks"])
class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = WebhookDelivery.objects.select_related("event", "endpoint").order_by("-id")
    filterset_class = WebhookDeliveryFilter
    output_serializer_class = s.WebhookDeliverySerializer
    required_verbs = {"resend": Verb.MANAGE}
    not_allowed_message = "{method} is not offered: deliveries are a record; re-send one with POST …/resend/."

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.prefetch_related("attempts") if self.action == "retrieve" else queryset

    def get_serializer_class(self):
        return s.WebhookDeliveryDetailSerializer if self.action == "retrieve" else super().get_serializer_class()

    def retrieve(self, request: Request, pk: str) -> Response:
        body = s.WebhookDeliveryDetailSerializer(self.get_object(), context=self.get_serializer_context()).data
        return Response(body)

    def permission_target(self, obj: WebhookDelivery):
        return obj.endpoint.project

    @extend_schema(request=None, responses={202: s.WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, pk: str) -> Response:
        """Send this delivery again, with the same webhook-id and body, whatever its state."""
        delivery = services.webhook_delivery_resend(delivery=self.get_object(), resent_by=request.user)
        delivery = self.get_queryset().get(pk=delivery.pk)
        body = s.WebhookDeliverySerializer(delivery, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["webhooks"], responses=s.EventTypeSerializer(many=True))
class EventTypesView(APIView):
    """Every event type, and the JSON Schema of its body: what a receiver can rely on."""

    permission_classes = [AuthenticatedWithinTokenScope]

    def get(self, request: Request) -> Response:
        types = [
            {
                "type": event_type.value,
                "description": event_type.label,
                "subscribable": event_type.value in SUBSCRIBABLE_TYPES,
                "version": EVENT_SCHEMA_VERSION,
                "schema": payload_schema(event_type.value),
            }
            for event_type in EventType
        ]
        return Response(s.EventTypeSerializer(types, many=True).data)
