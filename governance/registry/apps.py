from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """The model registry: registered models, versions, stages, aliases, and the promotion requests that move them."""

    name = "governance.registry"
    label = "registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from artifacts.signals import blob_state_changed
        from governance.registry.receivers import follow_blob

        blob_state_changed.connect(follow_blob, dispatch_uid="promotions_follow_blob")
