from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q

from artifacts.access.querysets import ProjectScopedQuerySet
from artifacts.access.roles import meta_permissions
from artifacts.access.rule import User, artifact_ids_where, artifacts_where, is_unrestricted, projects_where
from core.models.base import WriteOnceModel
from core.validators import NAME_SHAPE, media_type_validator, name_validator, validate_json_object


class ArtifactQuerySet(ProjectScopedQuerySet):
    def access_condition(self, user: User, verb: str) -> Q:
        """Rules 2 and 3 on the artifact's own columns: its project's roles unless it is restricted, and its own."""
        return artifacts_where(user, verb)


class Artifact(models.Model):
    """A named series of files in a project (a model, its checkpoints, a report…), versioned immutably."""

    class Kind(models.TextChoices):
        MODEL = "model", "Model"
        CHECKPOINT = "checkpoint", "Checkpoint"
        PREPROCESSOR = "preprocessor", "Preprocessor"
        EVALUATION_REPORT = "evaluation_report", "Evaluation report"
        CONFIG = "config", "Config"
        OTHER = "other", "Other"

    project = models.ForeignKey("artifacts.Project", on_delete=models.PROTECT, related_name="artifacts")
    name = models.CharField(max_length=128, validators=[name_validator], help_text="Cannot change once created.")
    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    description = models.TextField(blank=True)
    restricted = models.BooleanField(
        default=False,
        help_text="Project-wide roles do not reach a restricted artifact; only grants on the artifact itself do.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ArtifactQuerySet.as_manager()

    class Meta:
        ordering = ["project", "name"]
        permissions = meta_permissions("artifact")
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="artifact_name_unique_in_project"),
            models.CheckConstraint(condition=NAME_SHAPE, name="artifact_name_shape"),
            models.CheckConstraint(
                condition=models.Q(
                    kind__in=["model", "checkpoint", "preprocessor", "evaluation_report", "config", "other"]
                ),
                name="artifact_kind_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"


class ArtifactScopedQuerySet(ProjectScopedQuerySet):
    """Rows that belong to one artifact (its versions, the registry's model versions and the requests and moves of
    those), reached through `artifact_path`: a role on the artifact's project, unless it is restricted, or on the
    artifact itself gives its verbs on them (rules 2 and 3). It sits next to the artifact table it reads.

    Where a row may name no artifact (a grant or an audit entry about a project as a whole), declare `project_path`
    too: such a row takes the verbs held on its project.
    """

    #: The lookup from a row to its artifact's id: `artifact_id` for a version.
    artifact_path: ClassVar[str]
    project_path: ClassVar[str | None] = None

    def access_condition(self, user: User, verb: str) -> Q:
        on_artifact = artifact_ids_where(user, verb, self.artifact_path, Artifact.objects.all())
        if self.project_path is None or is_unrestricted(user):
            return on_artifact
        on_project = projects_where(user, verb, self.project_path) & Q(**{f"{self.artifact_path}__isnull": True})
        return on_project | on_artifact


class ArtifactVersionQuerySet(ArtifactScopedQuerySet):
    artifact_path = "artifact_id"


class ArtifactVersion(WriteOnceModel):
    """One immutable version of an artifact: its bytes (a blob), the run that produced them, and when.

    Number, blob and producing run never change: services never update, the model refuses to save an
    existing row, and a trigger makes the database refuse any UPDATE.
    """

    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(help_text="1, 2, 3… in publishing order within the artifact.")
    blob = models.ForeignKey("artifacts.Blob", on_delete=models.PROTECT, related_name="artifact_versions")
    run = models.ForeignKey(
        "artifacts.Run",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="produced_artifact_versions",
        help_text="The run that produced these bytes.",
    )
    media_type = models.CharField(max_length=255, default="application/octet-stream", validators=[media_type_validator])
    metadata = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    license = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="The SPDX license expression the publisher declared (normalized, e.g. 'Apache-2.0 OR MIT'); empty: "
        "none declared. Promotion policies may hold it to an allowlist.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ArtifactVersionQuerySet.as_manager()

    class Meta:
        ordering = ["artifact", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["artifact", "number"], name="artifact_version_number_unique"),
            # Publishing the same bytes under the same artifact again finds this row instead of a new one.
            models.UniqueConstraint(fields=["artifact", "blob"], name="artifact_version_blob_once"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="artifact_version_number_positive"),
        ]
        indexes = [
            # An artifact's newest versions by id, read from the index alone: how a user who sees few artifacts
            # gets a page of the newest-first list (selectors.artifact_versions_in_page).
            models.Index(fields=["artifact", "id"], name="artifact_version_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.artifact}@v{self.number}"
