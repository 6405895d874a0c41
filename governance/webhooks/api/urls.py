from django.urls import path
from rest_framework.routers import SimpleRouter

from governance.webhooks.api import views as webhooks

# A SimpleRouter: the API's root view is artifacts' DefaultRouter's; a second one would shadow it.
router = SimpleRouter(trailing_slash=True)
router.register("endpoints", webhooks.WebhookEndpointViewSet, basename="webhookendpoint")
router.register("deliveries", webhooks.WebhookDeliveryViewSet, basename="webhookdelivery")

urlpatterns = [
    path("event-types/", webhooks.EventTypesView.as_view(), name="webhook-event-types"),
    *router.urls,
]
