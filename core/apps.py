from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Mechanisms every area shares and no domain owns: errors, validators, the audit log and its recorder, the
    event outbox, the API and admin bases."""

    name = "core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core import checks  # noqa: F401 (registers the deploy checks)
        from core.audit import signals  # noqa: F401 (connects the login and task receivers)
