"""Access reviews: a campaign snapshots every grant in scope, and a reviewer keeps or revokes each one.

An item copies what the grant was when the campaign opened (who, which role, on what, granted when and by
whom, the grantee's last activity in the project), so the report still says what was reviewed after the grant
itself is revoked or its user deleted. Services (`governance/access/services/reviews.py`) write both models;
database triggers keep a snapshot and a recorded decision from being rewritten.
"""

from datetime import timedelta
from typing import Self

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from artifacts.access.querysets import ProjectScopedQuerySet
from artifacts.access.roles import Role
from artifacts.access.rule import User, is_unrestricted
from artifacts.models import Artifact, ArtifactScopedQuerySet, Project, RoleGrant


class AccessReviewCampaignQuerySet(ProjectScopedQuerySet):
    """`where(user, verb)`: campaigns on a project where `user` holds `verb` (an all-projects campaign is on none,
    so only a superuser's)."""

    def visible_to(self, user: User) -> Self:
        """Campaigns with an item `user` may see (every campaign for a superuser): a reviewer sees an
        all-projects campaign for the share of it they review or whose projects they may see."""
        if is_unrestricted(user):
            return self
        return self.filter(Exists(AccessReviewItem.objects.visible_to(user).filter(campaign=OuterRef("pk"))))

    def overdue(self) -> Self:
        return self.filter(AccessReviewCampaign.overdue_condition())


class AccessReviewCampaign(models.Model):
    """One review of who holds which role, on one project or on all of them, to be finished by a due date."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        COMPLETED = "completed", "Completed"

    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="access_reviews",
        help_text="Empty: every project's grants are reviewed.",
    )
    title = models.CharField(max_length=200)
    due_at = models.DateTimeField()
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when the schedule opened it.",
    )
    opened_at = models.DateTimeField(default=timezone.now)
    scheduled = models.BooleanField(default=False, help_text="Opened by the periodic task rather than a person.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    completed_at = models.DateTimeField(null=True, blank=True, help_text="When the last item was decided.")

    objects = AccessReviewCampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-id"]
        verbose_name = "access review"
        constraints = [
            models.CheckConstraint(condition=Q(state__in=["open", "completed"]), name="access_review_state_known"),
            models.CheckConstraint(
                condition=Q(state="open", completed_at__isnull=True) | Q(state="completed", completed_at__isnull=False),
                name="access_review_completed_when_completed_at",
            ),
            models.CheckConstraint(condition=Q(due_at__gt=F("opened_at")), name="access_review_due_after_opening"),
            # The schedule opens a campaign only while none of its own is open; this makes two beat runs racing
            # each other (or a task delivered twice) open one, not two.
            models.UniqueConstraint(
                fields=["scheduled"],
                condition=Q(scheduled=True, state="open"),
                name="access_review_one_open_scheduled",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @staticmethod
    def overdue_condition() -> Q:
        return Q(state=AccessReviewCampaign.State.OPEN, due_at__lte=timezone.now())

    @property
    def scope_label(self) -> str:
        return f"project {self.project.slug}" if self.project_id else "all projects"

    @property
    def is_overdue(self) -> bool:
        return self.state == self.State.OPEN and self.due_at <= timezone.now()


class AccessReviewItemQuerySet(ArtifactScopedQuerySet):
    """An item is on its grant's object, as the grant is (RoleGrantQuerySet): `where(user, verb)` asks for the verb on
    the artifact, or, for a project-wide grant, on the project."""

    project_path = "project_id"
    artifact_path = "artifact_id"

    def visible_to(self, user: User) -> Self:
        """Superusers see every item; others the items they review and those on projects they may see."""
        if is_unrestricted(user):
            return self
        if not user.is_active:
            return self.none()
        return self.filter(Q(reviewer_id=user.pk) | Q(project_id__in=Project.objects.visible_to(user).values("pk")))

    def unused(self) -> Self:
        return self.filter(AccessReviewItem.unused_condition())

    def pending(self) -> Self:
        return self.filter(decision=AccessReviewItem.Decision.PENDING)


class AccessReviewItem(models.Model):
    """One grant as it stood when its campaign opened, the reviewer who decides on it, and the decision.

    A revocation needs a comment: it takes access away from someone who will ask why, and the auditor reading
    the report asks the same. Keeping a grant confirms what is already so; a required comment there would
    only collect "ok" on every row of a bulk keep, so it is optional.
    """

    class Decision(models.TextChoices):
        PENDING = "pending", "Pending"
        KEEP = "keep", "Keep"
        REVOKE = "revoke", "Revoke"

    campaign = models.ForeignKey(AccessReviewCampaign, on_delete=models.PROTECT, related_name="items")
    grant = models.ForeignKey(
        RoleGrant,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="review_items",
        help_text="The grant reviewed; empty once it is revoked (the snapshot below keeps what it was).",
    )
    # The snapshot, copied from the grant when the campaign opened.
    grantee_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    grantee_group = models.ForeignKey(Group, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    grantee_label = models.CharField(
        "grantee", max_length=200, help_text="`user alice` or `group analysts`, as granted."
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    artifact = models.ForeignKey(
        Artifact,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty for a project-wide grant.",
    )
    object_label = models.CharField("on", max_length=300, help_text="`project churn` or `artifact churn/classifier`.")
    granted_at = models.DateTimeField()
    granted_by_label = models.CharField(
        "granted by", max_length=150, blank=True, help_text="Username of who granted it, if known."
    )
    last_activity_at = models.DateTimeField(
        "last activity",
        null=True,
        blank=True,
        help_text="The grantee's latest act in the project that the audit log records (or run, version or upload); "
        "empty if none, or for a group.",
    )
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_reviews")
    self_review = models.BooleanField(
        default=False,
        help_text="Nobody else could be assigned: the reviewer holds this grant or is in the group that does.",
    )
    # The decision.
    decision = models.CharField(max_length=16, choices=Decision.choices, default=Decision.PENDING)
    comment = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    grant_already_revoked = models.BooleanField(
        default=False, help_text="The grant had been revoked elsewhere before this decision was recorded."
    )

    objects = AccessReviewItemQuerySet.as_manager()

    class Meta:
        ordering = ["campaign", "project", "grantee_label", "id"]
        indexes = [
            models.Index(fields=["campaign", "decision"], name="access_review_item_progress"),
            models.Index(fields=["reviewer", "decision"], name="access_review_item_reviewer"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=["pending", "keep", "revoke"]), name="access_review_item_decision_known"
            ),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="access_review_item_role_known"),
            models.CheckConstraint(condition=~Q(grantee_label=""), name="access_review_item_grantee_named"),
            models.CheckConstraint(
                condition=Q(decision="pending", decided_at__isnull=True, decided_by__isnull=True)
                | (~Q(decision="pending") & Q(decided_at__isnull=False, decided_by__isnull=False)),
                name="access_review_item_decided_by_someone",
            ),
            models.CheckConstraint(
                condition=~Q(decision="revoke") | ~Q(comment=""),
                name="access_review_item_revoke_has_comment",
                violation_error_message="Say why the grant is revoked: a revocation needs a comment.",
            ),
            models.UniqueConstraint(fields=["campaign", "grant"], name="access_review_item_grant_once"),
        ]

    def __str__(self) -> str:
        return f"{self.role} for {self.grantee_label} on {self.object_label}"

    @staticmethod
    def unused_condition() -> Q:
        """No known activity, or none within PROVENANT_ACCESS_REVIEW_UNUSED_DAYS before the campaign opened.

        Measured from the opening, like the activity itself: a campaign's flags do not change while it runs.
        """
        window = timedelta(days=settings.PROVENANT_ACCESS_REVIEW_UNUSED_DAYS)
        return Q(last_activity_at__isnull=True) | Q(last_activity_at__lt=F("campaign__opened_at") - window)

    @property
    def is_unused(self) -> bool:
        if self.last_activity_at is None:
            return True
        window = timedelta(days=settings.PROVENANT_ACCESS_REVIEW_UNUSED_DAYS)
        return self.last_activity_at < self.campaign.opened_at - window

    @property
    def is_decided(self) -> bool:
        return self.decision != self.Decision.PENDING
