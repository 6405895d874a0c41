from django.apps import AppConfig


class ArtifactsConfig(AppConfig):
    """Content-addressed blobs, datasets, runs, artifact versions and the lineage between them."""

    name = "artifacts"
    default_auto_field = "django.db.models.BigAutoField"
