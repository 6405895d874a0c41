from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The portal for reviewers and auditors: server-rendered pages over the areas' selectors and services."""

    name = "governance.portal"
    label = "portal"
    default_auto_field = "django.db.models.BigAutoField"
