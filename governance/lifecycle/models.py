"""Lifecycle: what a project keeps, archives and deletes, decided as data and applied only through plans.

Rules are versioned like promotion policies (a new row per change, never rewritten). Running the rules writes a plan:
one item per version a rule selected, saying what will be done and why, or what protects it and by what. Only
applying a plan acts, item by item, so applying twice or after a crash finishes the work without doing any twice.
"""

from typing import Self

from django.conf import settings
from django.db import models

from artifacts.access.querysets import ProjectScopedQuerySet
from artifacts.access.roles import Verb
from artifacts.access.rule import User
from artifacts.models import Artifact, ArtifactVersion, Blob, Dataset, DatasetVersion, Project


class RetentionPolicy(models.Model):
    """One version of a project's retention rules; the newest is in force. Changed by maintainers, audited.

    `rules` is a list of rules, each `{"name", "action": "archive"|"delete", "kinds", "run_statuses",
    "older_than_days", "keep_last_versions", "keep_last_runs", "stages"}` (governance.lifecycle.rules checks the
    shape). A version is selected by the first rule whose every criterion holds.
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="retention_policies")
    version = models.PositiveIntegerField()
    rules = models.JSONField(default=list, blank=True)
    auto_apply = models.BooleanField(
        default=False,
        help_text="Apply each scheduled plan without waiting for a maintainer (the project opts in).",
    )
    note = models.TextField(blank=True, help_text="Why the rules changed.")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField()

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["project", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="retention_policy_version_unique"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="retention_policy_version_positive"),
        ]
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"{self.project.slug} retention v{self.version}"


#: What a hold may name inside its project, besides the project as a whole.
HOLD_SCOPES = ("artifact", "artifact_version", "dataset", "dataset_version")


def _at_most_one_of(fields: tuple[str, ...]) -> models.Q:
    condition = models.Q()
    for index, first in enumerate(fields):
        for second in fields[index + 1 :]:
            condition &= ~models.Q(**{f"{first}__isnull": False, f"{second}__isnull": False})
    return condition


class LegalHoldQuerySet(ProjectScopedQuerySet):
    def active(self) -> Self:
        return self.filter(released_at__isnull=True)

    def visible_to(self, user: User) -> Self:
        """Holds are seen by those who may place and release them, the project's maintainers and auditors: a
        hold's reason is often a matter its viewers and contributors are not party to."""
        return self.filter(self.access_condition(user, Verb.MANAGE) | self.access_condition(user, Verb.AUDIT))


class LegalHold(models.Model):
    """A hold on a project, an artifact, a dataset or one version: while it is active, nothing under it is archived
    or deleted, whatever the rules say. Placed and released by auditors and maintainers, with a reason."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="legal_holds")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    artifact_version = models.ForeignKey(
        ArtifactVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    dataset_version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.TextField()
    placed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    placed_at = models.DateTimeField()
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.TextField(blank=True)

    objects = LegalHoldQuerySet.as_manager()

    class Meta:
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(reason=""), name="legal_hold_has_reason"),
            # A hold names its project and at most one thing inside it.
            models.CheckConstraint(condition=_at_most_one_of(HOLD_SCOPES), name="legal_hold_one_scope"),
            models.CheckConstraint(
                condition=models.Q(released_at__isnull=True, released_by__isnull=True, release_reason="")
                | models.Q(released_at__isnull=False, released_by__isnull=False) & ~models.Q(release_reason=""),
                name="legal_hold_release_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"hold {self.pk} on {self.project.slug}"


class RetentionPlan(models.Model):
    """What one run of a project's rules would do, listed before anything is done.

    Applying walks its pending items; a plan that stopped half way is applied again to finish. A newer plan of the
    same project supersedes one never applied.
    """

    class State(models.TextChoices):
        PLANNED = "planned", "Planned"
        APPLYING = "applying", "Applying"
        APPLIED = "applied", "Applied"
        SUPERSEDED = "superseded", "Superseded"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Asked for by a person"
        SCHEDULE = "schedule", "The project's schedule"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="retention_plans")
    policy_version = models.PositiveIntegerField(help_text="The rules' version it was planned under.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PLANNED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    apply_started_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    versions_to_delete = models.PositiveIntegerField(default=0)
    versions_to_archive = models.PositiveIntegerField(default=0)
    versions_protected = models.PositiveIntegerField(default=0)
    bytes_selected = models.PositiveBigIntegerField(
        default=0, help_text="Bytes of the versions to delete or archive, each counted once per version."
    )
    bytes_reclaimable = models.PositiveBigIntegerField(
        default=0, help_text="Bytes that would leave storage: blobs no version outside the plan still needs."
    )

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one plan of a project is being applied at a time.
            models.UniqueConstraint(
                fields=["project"], condition=models.Q(state="applying"), name="retention_plan_one_applying"
            ),
            models.CheckConstraint(
                condition=~models.Q(state="applied") | models.Q(applied_at__isnull=False),
                name="retention_plan_applied_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"plan {self.pk} of {self.project.slug}"


class RetentionPlanItemQuerySet(ProjectScopedQuerySet):
    project_path = "plan__project_id"


class RetentionPlanItem(models.Model):
    """One version a rule selected: what the plan will do to it and why, or what protects it and by what."""

    class Action(models.TextChoices):
        DELETE = "delete", "Delete the bytes, keep a tombstone"
        ARCHIVE = "archive", "Move the bytes to a colder storage class"
        KEEP = "keep", "Kept: protected"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"

    plan = models.ForeignKey(RetentionPlan, on_delete=models.CASCADE, related_name="items")
    artifact_version = models.ForeignKey(
        ArtifactVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    dataset_version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")
    size = models.PositiveBigIntegerField()
    action = models.CharField(max_length=8, choices=Action.choices)
    rule = models.CharField(max_length=64, help_text="The rule that selected the version.")
    protected_by = models.TextField(blank=True, help_text="What protects a kept version, in words.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    outcome = models.TextField(blank=True, help_text="What applying did, or why it skipped the item.")
    done_at = models.DateTimeField(null=True, blank=True)

    objects = RetentionPlanItemQuerySet.as_manager()

    class Meta:
        ordering = ["plan", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(artifact_version__isnull=False, dataset_version__isnull=True)
                | models.Q(artifact_version__isnull=True, dataset_version__isnull=False),
                name="retention_item_names_one_version",
            ),
            models.CheckConstraint(
                condition=models.Q(action="keep") & ~models.Q(protected_by="") & ~models.Q(state="pending")
                | ~models.Q(action="keep") & models.Q(protected_by=""),
                name="retention_item_kept_says_why",
            ),
        ]
        indexes = [models.Index(fields=["plan", "state", "id"], name="retention_item_to_apply")]

    def __str__(self) -> str:
        return f"{self.action} {self.artifact_version_id or self.dataset_version_id} (plan {self.plan_id})"
