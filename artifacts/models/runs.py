from django.conf import settings
from django.db import models

from artifacts.access.querysets import ProjectScopedQuerySet
from core.validators import commit_validator, external_run_id_validator, validate_json_object, validate_metrics


class Run(models.Model):
    """One training or evaluation run: the code, parameters, environment and inputs that made its outputs.

    What the run *was* (code, parameters, environment, inputs) is fixed when it is recorded; only its
    progress (status, metrics, end time) moves, and a finished run stays finished. Why a run failed or was
    cancelled is said once, when it ends, and is frozen with the rest.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
    #: The statuses a failure reason may go with: a run that completed, or is still running, failed at nothing.
    UNSUCCESSFUL = (Status.FAILED, Status.CANCELLED)
    FAILURE_REASON_MAX = 1000

    project = models.ForeignKey("artifacts.Project", on_delete=models.PROTECT, related_name="runs")
    external_id = models.CharField(
        max_length=128,
        validators=[external_run_id_validator],
        help_text="The run's id in the pipeline or tracker that launched it; unique within the project.",
    )
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    code_repository = models.CharField(max_length=500, blank=True, help_text="Repository URL of the code that ran.")
    code_commit = models.CharField(
        max_length=64, blank=True, validators=[commit_validator], db_index=True, help_text="Commit that ran."
    )
    entry_point = models.CharField(max_length=500, blank=True, help_text="Script, module or command that ran.")
    parameters = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    metrics = models.JSONField(default=dict, blank=True, validators=[validate_metrics])
    environment = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_json_object],
        help_text="python_version, dependencies (list of requirement strings), hardware.",
    )
    failure_reason = models.CharField(
        max_length=FAILURE_REASON_MAX,
        blank=True,
        help_text="Why the run failed or was cancelled (an exception's type, an exit status), given when it ended.",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    input_dataset_versions = models.ManyToManyField(
        "artifacts.DatasetVersion",
        through="artifacts.RunDatasetInput",
        related_name="consumed_by_runs",
        blank=True,
    )
    input_artifact_versions = models.ManyToManyField(
        "artifacts.ArtifactVersion",
        through="artifacts.RunArtifactInput",
        related_name="consumed_by_runs",
        blank=True,
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="run_external_id_unique_in_project"),
            models.CheckConstraint(
                condition=models.Q(started_at__isnull=True)
                | models.Q(ended_at__isnull=True)
                | models.Q(ended_at__gte=models.F("started_at")),
                name="run_ends_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(code_commit="") | models.Q(code_commit__regex=r"^[0-9a-f]{7,64}$"),
                name="run_commit_shape",
            ),
            models.CheckConstraint(
                condition=models.Q(failure_reason="") | models.Q(status__in=("failed", "cancelled")),
                name="run_failure_reason_only_when_unsuccessful",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/runs/{self.external_id}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class RunDatasetInput(models.Model):
    """Lineage edge: a run consumed a dataset version."""

    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="dataset_inputs")
    dataset_version = models.ForeignKey("artifacts.DatasetVersion", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "dataset_version"], name="run_dataset_input_once")]

    def __str__(self) -> str:
        return f"dataset version {self.dataset_version_id} → run {self.run_id}"


class RunArtifactInput(models.Model):
    """Lineage edge: a run consumed an artifact version (a base model, a preprocessor, …)."""

    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="artifact_inputs")
    artifact_version = models.ForeignKey("artifacts.ArtifactVersion", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "artifact_version"], name="run_artifact_input_once")]

    def __str__(self) -> str:
        return f"artifact version {self.artifact_version_id} → run {self.run_id}"
