"""The model registry and the gate to production: registered models, their versions and stages, the policies a
promotion must satisfy, the requests and reviewers' decisions that move a version, and the history of every move.

Stages change only through governance/registry/services/promotions.py. The database keeps the invariants that must hold
whatever writes: one production version per model (a partial unique index), one open request per version and
target stage, one decision per reviewer and request, and history, decisions, comments and policy versions that are
never rewritten (triggers).
"""

from typing import Self

from django.conf import settings
from django.db import models
from django.db.models import Q

from artifacts.access.querysets import ProjectScopedQuerySet
from artifacts.access.roles import Verb
from artifacts.access.rule import User, artifacts_granted, is_unrestricted
from artifacts.models import ArtifactScopedQuerySet, ArtifactVersion, Project
from core.validators import NAME_SHAPE, name_validator


class Stage(models.TextChoices):
    NONE = "none", "No stage"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"
    ARCHIVED = "archived", "Archived"


#: Stages a promotion request may aim at (every stage a version can be moved into).
TARGET_STAGES = [Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED]
TARGET_STAGE_CHOICES = [(stage.value, stage.label) for stage in TARGET_STAGES]


class RegisteredModelQuerySet(ProjectScopedQuerySet):
    def visible_to(self, user: User) -> Self:
        """Models in the projects the user reads, and models with a version the user reads through a grant on its
        artifact alone (the model's name, as rule 4 shows a project's). `where(user, verb)` is the project's verbs."""
        condition = self.access_condition(user, Verb.VIEW)
        if user.is_active and not is_unrestricted(user):
            through_artifact = ModelVersion.objects.filter(
                artifacts_granted(user, Verb.VIEW, "artifact_version__artifact_id")
            ).values("registered_model_id")
            condition |= Q(pk__in=through_artifact)
        return self.filter(condition)


class RegisteredModel(models.Model):
    """A model as the business knows it ("churn-classifier"): its versions, which one serves where, and its card."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="registered_models")
    name = models.CharField(max_length=128, validators=[name_validator], help_text="Cannot change once created.")
    description = models.TextField(blank=True)
    model_card = models.TextField(
        blank=True, help_text="Markdown: intended use, training data, evaluation, limitations. Policies may require it."
    )
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="owned_models", help_text="Who answers for this model."
    )
    metric_directions = models.JSONField(
        default=dict,
        blank=True,
        help_text='Which way each metric is better, as {"auc": "higher", "latency_ms": "lower"}: pages colour a '
        "change by it. A metric not named here takes the direction its policy threshold implies (>= higher).",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RegisteredModelQuerySet.as_manager()

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="registered_model_name_unique_in_project"),
            models.CheckConstraint(condition=NAME_SHAPE, name="registered_model_name_shape"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"


class ModelVersionQuerySet(ArtifactScopedQuerySet):
    """Model versions are seen and acted on exactly as the artifact versions they point to (restricted artifacts
    included)."""

    artifact_path = "artifact_version__artifact_id"


class ModelVersion(models.Model):
    """One version of a registered model: exactly one immutable artifact version (so one digest, one producing run
    with its datasets and commit), and the stage it is in now."""

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(help_text="1, 2, 3… in registration order within the model.")
    artifact_version = models.ForeignKey(ArtifactVersion, on_delete=models.PROTECT, related_name="model_versions")
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.NONE)
    stage_changed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["registered_model", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "number"], name="model_version_number_unique"),
            models.UniqueConstraint(
                fields=["registered_model", "artifact_version"], name="model_version_artifact_version_once"
            ),
            # The gate's last line: whatever races, a model has at most one version in production.
            models.UniqueConstraint(
                fields=["registered_model"],
                condition=Q(stage="production"),
                name="model_version_one_production_per_model",
            ),
            models.CheckConstraint(
                condition=Q(stage__in=["none", "staging", "production", "archived"]), name="model_version_stage_known"
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="model_version_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model}@v{self.number}"


class ModelAlias(models.Model):
    """A movable name for one version of a model (`champion`, `candidate`): cheap to move, every move audited."""

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="aliases")
    name = models.CharField(max_length=64, validators=[name_validator])
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField()
    imported_from = models.CharField(
        max_length=500,
        blank=True,
        help_text="Where the alias was copied from (another registry), when its last move was an import; "
        "empty when a person here set it.",
    )

    class Meta:
        ordering = ["registered_model", "name"]
        verbose_name_plural = "model aliases"
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "name"], name="model_alias_unique_in_model"),
            models.CheckConstraint(condition=NAME_SHAPE, name="model_alias_name_shape"),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model}@{self.name}"


class PromotionPolicy(models.Model):
    """What a promotion into one stage of one project's models must satisfy: one version of it, never edited.

    A change is a new row with the next `version`; requests name the version they were judged under. A project with
    no row for a stage uses the built-in default (DEFAULT_POLICIES in governance/registry/selectors.py, version 0).
    """

    class PreviousProduction(models.TextChoices):
        ARCHIVED = "archived", "Archived"
        STAGING = "staging", "Staging"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="promotion_policies")
    stage = models.CharField(max_length=16, choices=TARGET_STAGE_CHOICES)
    version = models.PositiveIntegerField()
    approvals_required = models.PositiveSmallIntegerField(
        help_text="Distinct reviewers who must approve; the requester never counts."
    )
    creator_may_approve = models.BooleanField(
        default=False, help_text="Whether whoever published the artifact version may approve its promotion."
    )
    require_verified_blob = models.BooleanField(default=True, help_text="Gate: the bytes are verified.")
    require_complete_lineage = models.BooleanField(
        default=True, help_text="Gate: a producing run with a code commit and at least one input dataset version."
    )
    require_model_card = models.BooleanField(default=False, help_text="Gate: the model card is not empty.")
    metric_thresholds = models.JSONField(
        default=list,
        blank=True,
        help_text='Gate: conditions on the producing run\'s metrics, as [{"metric": "accuracy", "operator": ">=", '
        '"value": 0.92}].',
    )
    min_hours_in_production = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Gate for production: the current production version has served at least this long (no flapping).",
    )
    allowed_licenses = models.JSONField(
        default=list,
        blank=True,
        help_text="Gate: the artifact version's declared SPDX license expression is satisfied by these identifiers, "
        'e.g. ["MIT", "Apache-2.0"] (empty: the gate is off).',
    )
    block_vulnerable_dependencies = models.BooleanField(
        default=False,
        help_text="Gate: no pinned dependency of the producing run's environment is affected by an imported OSV "
        "record.",
    )
    block_unsafe_formats = models.BooleanField(
        default=False,
        help_text="Gate: the bytes' format scan found nothing unsafe or suspicious (code run on loading a pickle, a "
        "header inconsistent with the file).",
    )
    allowed_formats = models.JSONField(
        default=list,
        blank=True,
        help_text='Gate: the format detected from the bytes is one of these, e.g. ["safetensors", "onnx"] (empty: the '
        "gate is off).",
    )
    require_trusted_signature = models.BooleanField(
        default=False, help_text="Gate: a model signature verified against the bytes by a key the project trusts."
    )
    request_ttl_hours = models.PositiveIntegerField(default=168, help_text="Open requests expire after this long.")
    previous_production_to = models.CharField(
        max_length=16,
        choices=PreviousProduction.choices,
        default=PreviousProduction.ARCHIVED,
        help_text="Where the production version goes when another replaces it.",
    )
    note = models.TextField(blank=True, help_text="Why the policy changed.")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    changed_at = models.DateTimeField()

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["project", "stage", "-version"]
        verbose_name_plural = "promotion policies"
        constraints = [
            models.UniqueConstraint(fields=["project", "stage", "version"], name="promotion_policy_version_unique"),
            models.CheckConstraint(
                condition=Q(approvals_required__gte=1, approvals_required__lte=20),
                name="promotion_policy_approvals_in_range",
            ),
            models.CheckConstraint(
                condition=Q(request_ttl_hours__gte=1, request_ttl_hours__lte=24 * 90),
                name="promotion_policy_ttl_in_range",
            ),
            models.CheckConstraint(
                condition=Q(stage__in=["staging", "production", "archived"]), name="promotion_policy_stage_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}: {self.stage} policy v{self.version}"


class PromotionRequestQuerySet(ArtifactScopedQuerySet):
    """A request is seen and decided as its model version's artifact version."""

    artifact_path = "model_version__artifact_version__artifact_id"

    def awaiting(self, reviewer: User) -> Self:
        """Open requests `reviewer` may decide and has not: reviewing the version's artifact, not the requester."""
        return (
            self.filter(state=PromotionRequest.State.OPEN)
            .where(reviewer, Verb.REVIEW)
            .exclude(requested_by=reviewer)
            .exclude(decisions__reviewer=reviewer)
        )


class PromotionRequest(models.Model):
    """A request to move one model version into a stage, judged by the stage's policy: gates first, then distinct
    reviewers' approvals. A break-glass rollback opens one too (`kind` rollback review), after the fact."""

    class Kind(models.TextChoices):
        PROMOTION = "promotion", "Promotion"
        ROLLBACK_REVIEW = "rollback_review", "Review of an emergency rollback"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"
        EXPIRED = "expired", "Expired"
        INVALIDATED = "invalidated", "Invalidated"

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="promotion_requests")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="promotion_requests")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PROMOTION)
    target_stage = models.CharField(max_length=16, choices=TARGET_STAGE_CHOICES)
    justification = models.TextField()
    digest = models.CharField(max_length=64, help_text="The version's SHA-256 when requested: what reviewers judged.")
    policy_version = models.PositiveIntegerField(help_text="The policy version it was judged under (0: the default).")
    approvals_required = models.PositiveSmallIntegerField()
    gates_at_request = models.JSONField(default=list, help_text="Each gate's result when the request was made.")
    gates_at_decision = models.JSONField(
        default=list, blank=True, help_text="Each gate's result the last time approval was weighed."
    )
    gates_weighed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When approval was last weighed (the time of `gates_at_decision`); empty before the first weighing, "
        "and for requests weighed before this time was kept.",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    close_reason = models.TextField(blank=True)

    objects = PromotionRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "target_stage"],
                condition=Q(state="open"),
                name="promotion_request_one_open_per_version_and_stage",
            ),
            models.CheckConstraint(
                condition=Q(state="open", closed_at__isnull=True) | (~Q(state="open") & Q(closed_at__isnull=False)),
                name="promotion_request_closed_when_not_open",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["open", "approved", "rejected", "withdrawn", "expired", "invalidated"]),
                name="promotion_request_state_known",
            ),
        ]
        indexes = [models.Index(fields=["state", "expires_at"], name="promotion_request_open_expiry")]

    def __str__(self) -> str:
        return f"#{self.pk}: {self.model_version} → {self.target_stage}"


class PromotionDecision(models.Model):
    """One reviewer's approval or rejection of one request, with their comment; never changed or removed."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    request = models.ForeignKey(PromotionRequest, on_delete=models.PROTECT, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["request", "decided_at", "id"]
        constraints = [
            # One person counts once, whatever roles they hold.
            models.UniqueConstraint(fields=["request", "reviewer"], name="promotion_decision_once_per_reviewer"),
            models.CheckConstraint(condition=Q(decision__in=["approve", "reject"]), name="promotion_decision_known"),
        ]

    def __str__(self) -> str:
        return f"{self.decision} of #{self.request_id} by {self.reviewer_id}"


class PromotionComment(models.Model):
    """One remark in a promotion request's discussion (a question, an answer, context for reviewers), apart from the
    reviewers' decisions and their comments: whoever may see the request may add one. Never changed or removed."""

    request = models.ForeignKey(PromotionRequest, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["request", "created_at", "id"]
        constraints = [models.CheckConstraint(condition=~Q(body=""), name="promotion_comment_says_something")]

    def __str__(self) -> str:
        return f"comment {self.pk} on #{self.request_id} by {self.author_id}"


class StageTransitionQuerySet(ArtifactScopedQuerySet):
    """A stage move is seen as the artifact version moved."""

    artifact_path = "model_version__artifact_version__artifact_id"


class StageTransition(models.Model):
    """One move of one version from a stage to another: who, when, why, under which request. Append-only, so
    "what was in production at time T" has an exact answer."""

    class Cause(models.TextChoices):
        PROMOTION = "promotion", "Promoted by an approved request"
        REPLACED = "replaced", "Moved out of production by the version that replaced it"
        ROLLBACK = "rollback", "Emergency rollback (break-glass)"
        IMPORTED = "imported", "Imported from another registry (not approved in Provenant)"

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="stage_transitions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="stage_transitions")
    from_stage = models.CharField(max_length=16, choices=Stage.choices)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    cause = models.CharField(max_length=16, choices=Cause.choices)
    break_glass = models.BooleanField(default=False)
    promotion_request = models.ForeignKey(
        PromotionRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="transitions"
    )
    imported_from = models.CharField(
        max_length=500,
        blank=True,
        help_text="For an imported move: the registry and version it was copied from. No reviewer approved it.",
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField()

    objects = StageTransitionQuerySet.as_manager()

    class Meta:
        ordering = ["-changed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(from_stage=models.F("to_stage")), name="stage_transition_moves"),
            # An imported move says where from, and only an imported move does: no approved promotion reads as an
            # import, and no import hides its source.
            models.CheckConstraint(
                condition=Q(cause="imported", promotion_request__isnull=True) & ~Q(imported_from="")
                | ~Q(cause="imported") & Q(imported_from=""),
                name="stage_transition_imported_says_from_where",
            ),
        ]
        indexes = [models.Index(fields=["registered_model", "changed_at"], name="stage_transition_model_time")]

    def __str__(self) -> str:
        return f"{self.model_version}: {self.from_stage} → {self.to_stage}"
