from django.conf import settings
from django.db import models

from artifacts.access.querysets import ProjectScopedQuerySet
from core.models.base import WriteOnceModel


class VersionTombstoneQuerySet(ProjectScopedQuerySet):
    """A tombstone is seen by whoever may see its project; the version it stands for says which one."""

    project_path = "project_id"


class VersionTombstone(WriteOnceModel):
    """What stays of a deleted version: the version row itself (digest, size, run, lineage) never goes, and this
    says who deleted its bytes, when and why, so downloads answer 410 Gone with the reason and lineage shows it as
    deleted rather than missing.

    A version is deleted once and for ever (a unique version per tombstone, and a trigger refuses updates and
    deletes). The lifecycle plan and rule that deleted it are kept as data, because the catalog sits below the
    governance area that plans (the audit log names rows the same way).
    """

    project = models.ForeignKey("artifacts.Project", on_delete=models.PROTECT, related_name="+")
    artifact_version = models.OneToOneField(
        "artifacts.ArtifactVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="tombstone"
    )
    dataset_version = models.OneToOneField(
        "artifacts.DatasetVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="tombstone"
    )
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who applied the deletion; empty when a project's schedule applied its plan.",
    )
    deleted_at = models.DateTimeField()
    reason = models.TextField(help_text="Why, in words a person downloading the version is shown.")
    rule = models.CharField(max_length=64, blank=True, help_text="The retention rule that selected it, if one did.")
    plan_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The lifecycle plan that deleted it, if one did."
    )

    objects = VersionTombstoneQuerySet.as_manager()

    class Meta:
        ordering = ["-deleted_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(artifact_version__isnull=False, dataset_version__isnull=True)
                | models.Q(artifact_version__isnull=True, dataset_version__isnull=False),
                name="tombstone_names_one_version",
            ),
            models.CheckConstraint(condition=~models.Q(reason=""), name="tombstone_has_reason"),
        ]

    def __str__(self) -> str:
        return f"deleted {self.artifact_version_id or self.dataset_version_id}"

    @property
    def deleted_by_label(self) -> str:
        """Who deleted the version, in words: a username, or the schedule that applied a plan."""
        return self.deleted_by.get_username() if self.deleted_by_id else "the project's retention schedule"

    @property
    def summary(self) -> str:
        """When, by whom, under which rule and why, in one sentence for an error message."""
        rule = f" under retention rule '{self.rule}'" if self.rule else ""
        plan = f" (plan {self.plan_id})" if self.plan_id else ""
        return f"deleted on {self.deleted_at:%Y-%m-%d %H:%M} UTC by {self.deleted_by_label}{rule}{plan}: {self.reason}"
