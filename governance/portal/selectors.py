"""Reads for the portal's dashboard (what waits for the user, and the health of what they may see) and for its
lifecycle pages (a project's retention rules, holds and plans). Each answers values (numbers, rows,
`ComplianceRow`s) or querysets narrowed by the access rule, and sets nothing on the objects it reads."""

from dataclasses import dataclass

from django.db.models import Count, Exists, Max, OuterRef, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

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
from governance.audit.selectors import can_read_whole_log
from governance.lifecycle.models import LegalHold, RetentionPlan, RetentionPlanItem
from governance.registry.gates import gates_evaluate, gates_pass
from governance.registry.models import ModelVersion, PromotionPolicy, PromotionRequest, RegisteredModel
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
