from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    """Retention rules, the plans they produce, legal holds, archival to colder storage and storage accounting."""

    name = "governance.lifecycle"
    label = "lifecycle"
    default_auto_field = "django.db.models.BigAutoField"
