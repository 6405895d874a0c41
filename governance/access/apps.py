from django.apps import AppConfig


class AccessConfig(AppConfig):
    """API tokens and the periodic access reviews that recertify who may do what."""

    name = "governance.access"
    label = "access"
    default_auto_field = "django.db.models.BigAutoField"
