from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Webhook endpoints and the signed, retried delivery of events to them."""

    name = "governance.webhooks"
    label = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.outbox import event_written
        from governance.webhooks.receivers import deliveries_for_events

        event_written.connect(deliveries_for_events, dispatch_uid="webhooks_deliveries_for_events")
