from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """Who may do what, and the record of what was done: tokens, permissions, registry, audit, webhooks."""

    name = "governance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from artifacts.signals import blob_state_changed
        from governance import checks, signals  # noqa: F401 (registers the checks, connects the receivers)

        blob_state_changed.connect(signals.follow_blob, dispatch_uid="promotions_follow_blob")
