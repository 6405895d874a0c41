"""Reads for the portal's dashboard (what waits for the user, and the health of what they may see), for its
lifecycle pages (a project's retention rules, holds and plans) and for the pages of runs, datasets and projects.
Each answers values (numbers, rows, `ComplianceRow`s) or querysets narrowed by the access rule, and sets nothing on
the objects it reads."""

from dataclasses import dataclass

from django.db.models import Count, Exists, Max, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from artifacts.access.roles import Verb
from artifacts.access.rule import User
from artifacts.models import (
    Artifact,
    ArtifactVersion,
    Blob,
    Dataset,
    DatasetVersion,
    Project,
    Run,
    RunDatasetInput,
    VersionTombstone,
)
from governance.access.models import AccessReviewCampaign, AccessReviewItem
from governance.audit.selectors import can_read_whole_log
from governance.lifecycle.models import LegalHold, RetentionPlan, RetentionPlanItem
from governance.registry.gates import gates_evaluate, gates_pass
from governance.registry.models import ModelVersion, PromotionPolicy, PromotionRequest, RegisteredModel
from governance.registry.selectors import policies_current

# The portal's dashboard --------------------------------------------------------------------------------------------


def dashboard_awaiting(user: User) -> QuerySet:
    """Open requests waiting for `user`'s decision (`PromotionRequest.objects.awaiting`) among those they may see,
    longest waiting first, with their model, project, version and requester joined: two queries.

    Open requests are few, so their artifact versions are read first and named in the query: PostgreSQL then looks
    those rows up, where otherwise it chose to walk every artifact version in id order against the person's review
    grants, expecting to stop early, and for someone who reviews nothing read them all (about 40 ms at 100,000
    versions, on every page, as the navigation counts what awaits)."""
    open_versions = list(
        PromotionRequest.objects.filter(state=PromotionRequest.State.OPEN).values_list(
            "model_version__artifact_version_id", flat=True
        )
    )
    return (
        PromotionRequest.objects.filter(model_version__artifact_version_id__in=open_versions)
        .visible_to(user)
        .awaiting(user)
        .select_related("registered_model__project", "model_version", "requested_by")
        .order_by("requested_at", "pk")
    )


def dashboard_blob_totals(user: User) -> dict:
    """Over the stored blobs `user` may see (collected ones left out: their bytes are gone), one query: how many
    are verified, pending and corrupt, and when the last verification of any began (`last_verified_at`). A blob
    counts once however many projects hold it. Bytes stored are the storage accounting's (snapshots), not read here."""
    state = Blob.State
    return (
        Blob.objects.visible_to(user)
        .filter(collected_at__isnull=True)
        .aggregate(
            verified=Count("pk", filter=Q(state=state.VERIFIED)),
            pending=Count("pk", filter=Q(state=state.PENDING)),
            corrupt=Count("pk", filter=Q(state=state.CORRUPT)),
            last_verified_at=Max("verified_at"),
        )
    )


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


# The catalog's record pages (runs, datasets and their versions, projects) -----------------------------------------

#: A project page lists at most this many of each kind of record, newest or first by name; search finds the rest.
PROJECT_PAGE_ROWS = 25


def portal_dataset(user: User, pk: int) -> Dataset | None:
    """The dataset `pk` if `user` may see it (Dataset.visible_to, as the API's dataset endpoint), with its project."""
    return Dataset.objects.visible_to(user).select_related("project").filter(pk=pk).first()


def dataset_versions(user: User, dataset: Dataset) -> QuerySet:
    """`dataset`'s versions `user` may see, newest first, each with its blob, creator, producing run and tombstone
    joined (one query per page)."""
    return (
        DatasetVersion.objects.visible_to(user)
        .filter(dataset=dataset)
        .select_related("blob", "created_by", "run", "tombstone__deleted_by")
        .order_by("-number")
    )


def portal_dataset_version(user: User, pk: int) -> DatasetVersion | None:
    """The dataset version `pk` if `user` may see it (DatasetVersion.visible_to, as the API), with what its page
    names: its dataset and project, blob, creator and tombstone."""
    return (
        DatasetVersion.objects.visible_to(user)
        .select_related("dataset__project", "blob", "created_by", "tombstone__deleted_by")
        .filter(pk=pk)
        .first()
    )


def dataset_version_consumers(user: User, version: DatasetVersion) -> QuerySet:
    """The runs `user` may see that read `version`, newest first, with their project joined."""
    return Run.objects.visible_to(user).filter(dataset_inputs__dataset_version=version).select_related("project")


def run_outputs(user: User, run: Run) -> tuple[list[ArtifactVersion], list[DatasetVersion]]:
    """What `run` produced that `user` may see: artifact versions (with artifact and blob) and dataset versions
    (with dataset and blob), two queries."""
    artifact_versions = (
        ArtifactVersion.objects.visible_to(user)
        .filter(run=run)
        .select_related("artifact", "blob")
        .order_by("artifact__name", "-number")
    )
    dataset_versions_made = (
        DatasetVersion.objects.visible_to(user)
        .filter(run=run)
        .select_related("dataset", "blob")
        .order_by("dataset__name", "-number")
    )
    return list(artifact_versions), list(dataset_versions_made)


@dataclass(frozen=True)
class ProjectRecords:
    """What a project page lists, each bounded to PROJECT_PAGE_ROWS; `more_*` says a list was cut."""

    artifacts: list[Artifact]
    datasets: list[Dataset]
    runs: list[Run]
    models: list[RegisteredModel]
    more_artifacts: bool
    more_datasets: bool
    more_runs: bool
    more_models: bool


def _bounded_rows(queryset: QuerySet) -> tuple[list, bool]:
    rows = list(queryset[: PROJECT_PAGE_ROWS + 1])
    return rows[:PROJECT_PAGE_ROWS], len(rows) > PROJECT_PAGE_ROWS


def project_records(user: User, project: Project) -> ProjectRecords:
    """The records of `project` that `user` may see, each kind through its own `visible_to` (someone who sees the
    project through one artifact's grant sees that artifact alone): four queries, whatever their number. Artifacts
    carry their newest version's id and their version count, datasets their newest number."""
    newest_version = ArtifactVersion.objects.filter(artifact=OuterRef("pk")).order_by("-number").values("pk")[:1]
    artifacts, more_artifacts = _bounded_rows(
        Artifact.objects.visible_to(user)
        .filter(project=project)
        .annotate(newest_version_id=Subquery(newest_version), version_count=Count("versions"))
        .order_by("name", "pk")
    )
    datasets, more_datasets = _bounded_rows(
        Dataset.objects.visible_to(user)
        .filter(project=project)
        .annotate(latest_version=Max("versions__number"))
        .order_by("name", "pk")
    )
    runs, more_runs = _bounded_rows(Run.objects.visible_to(user).filter(project=project).order_by("-pk"))
    models, more_models = _bounded_rows(
        RegisteredModel.objects.visible_to(user).filter(project=project).order_by("name", "pk")
    )
    return ProjectRecords(
        artifacts=artifacts,
        datasets=datasets,
        runs=runs,
        models=models,
        more_artifacts=more_artifacts,
        more_datasets=more_datasets,
        more_runs=more_runs,
        more_models=more_models,
    )


# The audit explorer's names ----------------------------------------------------------------------------------------

#: How many models and artifacts a name that matches several offers to choose from.
AUDIT_SUBJECT_CHOICES = 20


@dataclass(frozen=True)
class AuditSubject:
    """A model or an artifact whose audit entries the explorer lists when asked for it by name."""

    kind: str  # "model" or "artifact"
    id: int
    name: str
    project_slug: str


def audit_subjects_named(
    user: User, name: str, *, project: tuple[int | None, str] | None, kind: str = ""
) -> list[AuditSubject]:
    """The registered models and the artifacts `user` may see named exactly `name`, or, when none is, those whose
    name starts with it (in any case); only in `project` (the entries filter's (id or None, slug)) when given, and
    only of `kind` ("model" or "artifact") when given. Models first, then artifacts, each by project and name; at
    most AUDIT_SUBJECT_CHOICES. Four queries at most. Whoever reads the whole log finds every model and artifact:
    its entries already name them all."""
    in_project = Q() if project is None else Q(project_id=project[0]) if project[0] else Q(project__slug=project[1])
    every = can_read_whole_log(user)
    kinds = {
        "model": RegisteredModel.objects.all() if every else RegisteredModel.objects.visible_to(user),
        "artifact": Artifact.objects.all() if every else Artifact.objects.visible_to(user),
    }
    for lookup in ("name", "name__istartswith"):
        found = [
            AuditSubject(each_kind, match.pk, match.name, match.project.slug)
            for each_kind, queryset in kinds.items()
            if kind in ("", each_kind)
            for match in queryset.filter(in_project, **{lookup: name})
            .select_related("project")
            .order_by("project__slug", "name")[:AUDIT_SUBJECT_CHOICES]
        ]
        if found:
            return found[:AUDIT_SUBJECT_CHOICES]
    return []


def audit_subject_scope(subject: AuditSubject) -> tuple[list[int], list[tuple[str, str]]]:
    """What the entries about `subject` are recorded against: the artifacts (an artifact itself; for a model, those
    its versions come from, as its versions, aliases and promotions are), and the objects the log ties to no
    artifact, by (object type, id): a model itself, named as `audit_object` names it."""
    if subject.kind == "artifact":
        return [subject.id], []
    versions = ModelVersion.objects.filter(registered_model_id=subject.id)
    artifact_ids = sorted(set(versions.values_list("artifact_version__artifact_id", flat=True)))
    return artifact_ids, [(str(RegisteredModel._meta.verbose_name).replace(" ", "_"), str(subject.id))]


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
    """How many things wait for `user`: promotions to decide, review items to keep or revoke, plans to apply. Two
    queries (`dashboard_awaiting` reads the open requests' versions first), for the navigation of every page."""
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
