from django.conf import settings
from django.db import models

from artifacts.access.querysets import ProjectScopedQuerySet
from core.models.base import WriteOnceModel
from core.validators import DIGEST_PREFIX, NAME_SHAPE, name_validator, validate_json_object, validate_sha256_hex


class Dataset(models.Model):
    """A named dataset in a project; its content lives in immutable DatasetVersions."""

    project = models.ForeignKey("artifacts.Project", on_delete=models.PROTECT, related_name="datasets")
    name = models.CharField(max_length=128, validators=[name_validator], help_text="Cannot change once created.")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="dataset_name_unique_in_project"),
            models.CheckConstraint(condition=NAME_SHAPE, name="dataset_name_shape"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"


class DatasetVersionQuerySet(ProjectScopedQuerySet):
    project_path = "dataset__project_id"


class DatasetVersion(WriteOnceModel):
    """An immutable snapshot of a dataset: either a file stored here (a blob) or data kept elsewhere,
    pinned by the digest of its manifest."""

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(help_text="1, 2, 3… in publishing order within the dataset.")
    blob = models.ForeignKey(
        "artifacts.Blob", on_delete=models.PROTECT, null=True, blank=True, related_name="dataset_versions"
    )
    uri = models.CharField(max_length=1024, blank=True, help_text="Location of data kept outside Provenant.")
    manifest_digest = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_sha256_hex],
        help_text="SHA-256 of the manifest that pins the external data.",
    )
    run = models.ForeignKey(
        "artifacts.Run",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="produced_dataset_versions",
        help_text="The run that produced this snapshot, if one did.",
    )
    row_count = models.BigIntegerField(null=True, blank=True)
    schema = models.JSONField(default=dict, blank=True, validators=[validate_json_object], help_text="Column summary.")
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DatasetVersionQuerySet.as_manager()

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_number_unique"),
            models.UniqueConstraint(
                fields=["dataset", "blob"],
                condition=models.Q(blob__isnull=False),
                name="dataset_version_blob_once",
            ),
            models.UniqueConstraint(
                fields=["dataset", "manifest_digest"],
                condition=~models.Q(manifest_digest=""),
                name="dataset_version_manifest_once",
            ),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="dataset_version_number_positive"),
            models.CheckConstraint(
                condition=(models.Q(blob__isnull=False) & models.Q(uri="") & models.Q(manifest_digest=""))
                | (
                    models.Q(blob__isnull=True) & ~models.Q(uri="") & models.Q(manifest_digest__regex=r"^[0-9a-f]{64}$")
                ),
                name="dataset_version_blob_or_external",
            ),
            models.CheckConstraint(
                condition=models.Q(row_count__isnull=True) | models.Q(row_count__gte=0),
                name="dataset_version_row_count_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset}@v{self.number}"

    @property
    def content_digest(self) -> str:
        """The digest that pins this snapshot's content: its blob's, or its external manifest's."""
        return f"{DIGEST_PREFIX}{self.blob.digest if self.blob_id else self.manifest_digest}"
