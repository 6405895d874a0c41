from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit log as people read it: the API, the admin, exports and proofs (the log itself is core's)."""

    name = "governance.audit"
    label = "audit"
    default_auto_field = "django.db.models.BigAutoField"
