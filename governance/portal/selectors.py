"""Reads for the portal's dashboard (what waits for the user, and the health of what they may see) and for its
lifecycle pages (a project's retention rules, holds and plans). Each answers values (numbers, rows,
`ComplianceRow`s) or querysets narrowed by the access rule, and sets nothing on the objects it reads."""

from dataclasses import dataclass

from django.db.models import Count, Exists, Max, OuterRef, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from artifacts.access.roles import Verb
from artifacts.access.rule import User
from artifacts.models import (
    Artifact,
    ArtifactVersion,
    Blob,
    DatasetVersion,
    Project,
    Run,
    RunDatasetInput,
    VersionTombstone,
)
from governance.access.models import AccessReviewCampaign, AccessReviewItem
from governance.lifecycle.models import LegalHold, RetentionPlan, RetentionPlanItem
from governance.registry.gates import gates_evaluate, gates_pass
from governance.registry.models import ModelVersion, PromotionPolicy, PromotionRequest
from governance.registry.selectors import policies_current

# The portal's dashboard --------------------------------------------------------------------------------------------


def dashboard_awaiting(user: User) -> QuerySet:
    """Open requests waiting for `user`'s decision (`PromotionRequest.objects.awaiting`) among those they may see,
    longest waiting first, with their model, project, version and requester joined: one query."""
    return (
        PromotionRequest.objects.visible_to(user)
        .awaiting(user)
        .select_related("registered_model__project", "model_version", "requested_by")
        .order_by("requested_at", "pk")
    )


def dashboard_blob_totals(user: User, *, since) -> dict:
    """Over the blobs `user` may see, one query: how many are verified, pending and corrupt, when the last
    verification of any began (`last_verified_at`), their total size (`total_bytes`) and the size of those stored
    before `since` (`bytes_before`). A blob counts once however many projects hold it, as storage keeps it once."""
    blob = Blob
    state = blob.State
    return blob.objects.visible_to(user).aggregate(
        verified=Count("pk", filter=Q(state=state.VERIFIED)),
        pending=Count("pk", filter=Q(state=state.PENDING)),
        corrupt=Count("pk", filter=Q(state=state.CORRUPT)),
        last_verified_at=Max("verified_at"),
        total_bytes=Sum("size", default=0),
        bytes_before=Sum("size", default=0, filter=Q(created_at__lt=since)),
    )


def dashboard_bytes_added_by_day(user: User, *, since) -> dict:
    """The size of the blobs `user` may see stored on each day from `since` on (days in the current time zone;
    days with none are absent): one query, grouped in the database."""
    blob = Blob
    rows = (
        blob.objects.visible_to(user)
        .filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(added=Sum("size"))
        .order_by("day")
    )
    return {row["day"]: row["added"] for row in rows}


def dashboard_lineage(user: User) -> dict:
    """How many model versions `user` may see (`total`), and how many of them have complete lineage (`complete`):
    their artifact version names a producing run with a code commit and at least one input dataset version. That is
    the lineage gate's condition (governance/registry/gates.py `_lineage`), counted in the database: one query."""
    run, run_input = Run, RunDatasetInput
    complete_run = (
        run.objects.filter(pk=OuterRef("artifact_version__run_id"))
        .exclude(code_commit="")
        .filter(Exists(run_input.objects.filter(run_id=OuterRef("pk"))))
    )
    return ModelVersion.objects.visible_to(user).aggregate(
        total=Count("pk"), complete=Count("pk", filter=Exists(complete_run))
    )


@dataclass(frozen=True)
class ComplianceRow:
    """A production version judged now by the gates of its project's current production `policy`."""

    version: ModelVersion
    policy: PromotionPolicy
    gates_now: list[dict]
    compliant: bool


def dashboard_production_compliance(user: User) -> list[ComplianceRow]:
    """The production versions `user` may see, each judged now by the gates of its project's current production
    policy. Three queries whatever their number: the versions with their model, blob and run; their runs' input
    dataset versions (the lineage gate asks whether there is one); the projects' policies. Non-compliant versions
    first, then by project and model."""
    versions = list(
        ModelVersion.objects.visible_to(user)
        .filter(stage="production")
        .select_related("registered_model__project", "artifact_version__blob", "artifact_version__run")
        .prefetch_related(
            Prefetch("artifact_version__run__input_dataset_versions", queryset=DatasetVersion.objects.only("pk"))
        )
        .order_by("registered_model__project__slug", "registered_model__name")
    )
    policies = policies_current({version.registered_model.project_id for version in versions}, "production")
    now = timezone.now()
    rows = []
    for version in versions:
        policy = policies[version.registered_model.project_id]
        # The version is the production one, so no other's time in production is at stake.
        gates_now = gates_evaluate(policy, version, current_production=None, now=now)
        rows.append(ComplianceRow(version=version, policy=policy, gates_now=gates_now, compliant=gates_pass(gates_now)))
    return sorted(rows, key=lambda row: row.compliant)


# The lifecycle pages -----------------------------------------------------------------------------------------------


def lifecycle_project(user: User, slug: str) -> Project | None:
    """The project `slug` if `user` may see it (an artifact's grantees see its name and their artifact's bytes)."""
    return Project.objects.visible_to(user).filter(slug=slug).first()


def legal_holds_active(user: User, project: Project) -> QuerySet:
    """`project`'s holds in force that `user` may see: a hold on an artifact or a version of one they may not see
    is left out, so its name does not leak. What a hold names is joined (one query for the list)."""
    visible_artifacts = Artifact.objects.visible_to(user)
    return (
        LegalHold.objects.visible_to(user)
        .active()
        .filter(project=project)
        .filter(Q(artifact__isnull=True) | Q(artifact__in=visible_artifacts))
        .filter(Q(artifact_version__isnull=True) | Q(artifact_version__artifact__in=visible_artifacts))
        .select_related("placed_by", "artifact", "artifact_version__artifact", "dataset", "dataset_version__dataset")
    )


def retention_plans(user: User, project: Project) -> QuerySet:
    """`project`'s plans, newest first, with who made and applied them joined (one query per page)."""
    return (
        RetentionPlan.objects.visible_to(user)
        .filter(project=project)
        .select_related("created_by", "applied_by")
        .order_by("-created_at", "-id")
    )


def retention_plan_items(user: User, plan: RetentionPlan) -> QuerySet:
    """The items of `plan` whose version `user` may see (an item on a restricted artifact they may not see is left
    out), in the plan's order, with the version, its artifact or dataset joined (one query per page)."""
    visible_versions = ArtifactVersion.objects.visible_to(user).filter(pk=OuterRef("artifact_version_id"))
    return (
        RetentionPlanItem.objects.visible_to(user)
        .filter(plan=plan)
        .filter(Q(artifact_version__isnull=True) | Q(Exists(visible_versions)))
        .select_related("artifact_version__artifact", "dataset_version__dataset")
        .order_by("id")
    )


def version_tombstone(version: ArtifactVersion) -> VersionTombstone | None:
    """The tombstone of a version the caller already may see, with who deleted it; None while it is live."""
    return VersionTombstone.objects.filter(artifact_version=version).select_related("deleted_by").first()


# What awaits a person: the inbox page, the count in the navigation, the e-mail digest ------------------------------

#: Rows of each kind an inbox lists; the count beside each kind is of all of them.
AWAITING_LISTED = 50


@dataclass(frozen=True)
class ReviewsAwaiting:
    """A campaign with items assigned to the person and still pending (`pending`)."""

    campaign: AccessReviewCampaign
    pending: int


@dataclass(frozen=True)
class Awaiting:
    """What waits for one person's action, each kind counted in full and listed up to AWAITING_LISTED."""

    promotions: list[PromotionRequest]
    promotions_count: int
    reviews: list[ReviewsAwaiting]
    review_items_count: int
    plans: list[RetentionPlan]
    plans_count: int

    @property
    def total(self) -> int:
        return self.promotions_count + self.review_items_count + self.plans_count


def plans_awaiting(user: User) -> QuerySet:
    """Retention plans that would delete or archive something, waiting for a maintainer of their project to apply
    them (a plan is applied by a maintainer, or at once by the schedule where the project opted in; a newer plan
    supersedes it)."""
    return (
        RetentionPlan.objects.where(user, Verb.MANAGE)
        .filter(state=RetentionPlan.State.PLANNED)
        .filter(Q(versions_to_delete__gt=0) | Q(versions_to_archive__gt=0))
    )


def review_items_awaiting(user: User) -> QuerySet:
    """Access review items assigned to `user` and still pending, as the access reviews page lists them."""
    return AccessReviewItem.objects.visible_to(user).filter(reviewer_id=user.pk).pending()


def awaiting_count(user: User) -> int:
    """How many things wait for `user`: promotions to decide, review items to keep or revoke, plans to apply. One
    query, for the navigation of every page."""
    counts = [
        dashboard_awaiting(user).order_by().values("pk"),
        review_items_awaiting(user).order_by().values("pk"),
        plans_awaiting(user).order_by().values("pk"),
    ]
    first, *rest = counts
    return first.union(*rest, all=True).count()


def awaiting(user: User) -> Awaiting:
    """Everything that waits for `user`, for the inbox page and the digest: a few queries whatever the numbers."""
    promotions = dashboard_awaiting(user)
    campaigns = (
        review_items_awaiting(user)
        .order_by()
        .values("campaign_id")
        .annotate(pending=Count("pk"))
        .values_list("campaign_id", "pending")
    )
    pending_by_campaign = dict(campaigns)
    reviews = [
        ReviewsAwaiting(campaign=campaign, pending=pending_by_campaign[campaign.pk])
        for campaign in AccessReviewCampaign.objects.filter(pk__in=pending_by_campaign)
        .select_related("project")
        .order_by("due_at", "pk")[:AWAITING_LISTED]
    ]
    plans = plans_awaiting(user).select_related("project").order_by("created_at", "pk")
    return Awaiting(
        promotions=list(promotions[:AWAITING_LISTED]),
        promotions_count=promotions.count(),
        reviews=reviews,
        review_items_count=sum(pending_by_campaign.values()),
        plans=list(plans[:AWAITING_LISTED]),
        plans_count=plans.count(),
    )
