"""Reads for governance: role grants and access reviews as people review them, and the audit log as auditors
read it (entries, signed tree heads, and the proofs that tie one to the other)."""

from django.db.models import Count, Exists, Max, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate

from artifacts.access.rule import User
from artifacts.models import Blob, DatasetVersion, Run, RunDatasetInput

# The portal's dashboard --------------------------------------------------------------------------------------------


def dashboard_awaiting(user: User) -> QuerySet:
    """Open requests waiting for `user`'s decision (`PromotionRequest.objects.awaiting`) among those they may see,
    longest waiting first, with their model, project, version and requester joined: one query."""
    from governance.registry.models import PromotionRequest

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
    from governance.registry.models import ModelVersion

    run, run_input = Run, RunDatasetInput
    complete_run = (
        run.objects.filter(pk=OuterRef("artifact_version__run_id"))
        .exclude(code_commit="")
        .filter(Exists(run_input.objects.filter(run_id=OuterRef("pk"))))
    )
    return ModelVersion.objects.visible_to(user).aggregate(
        total=Count("pk"), complete=Count("pk", filter=Exists(complete_run))
    )


def _production_policies(project_ids: set[int]) -> dict:
    """Each project's current production policy, as `policy_current` answers it, for many projects in one query:
    the newest saved version, else the built-in default (version 0)."""
    from governance.registry.models import PromotionPolicy
    from governance.registry.services.registry import DEFAULT_POLICIES

    stage = "production"
    newest = PromotionPolicy.objects.filter(project_id=OuterRef("project_id"), stage=stage).order_by("-version")
    saved = PromotionPolicy.objects.filter(
        project_id__in=project_ids, stage=stage, version=Subquery(newest.values("version")[:1])
    )
    policies = {policy.project_id: policy for policy in saved}
    for project_id in project_ids - policies.keys():
        policies[project_id] = PromotionPolicy(project_id=project_id, stage=stage, version=0, **DEFAULT_POLICIES[stage])
    return policies


def dashboard_production_compliance(user: User) -> list:
    """The production versions `user` may see, each judged now by the gates of its project's current production
    policy: sets `gates_now`, `compliant` and `policy` on each. Three queries whatever their number: the versions
    with their model, blob and run; their runs' input dataset versions (the lineage gate asks whether there is
    one); the projects' policies. Non-compliant versions first, then by project and model."""
    from django.utils import timezone

    from governance.registry.gates import gates_evaluate, gates_pass
    from governance.registry.models import ModelVersion

    dataset_version = DatasetVersion
    versions = list(
        ModelVersion.objects.visible_to(user)
        .filter(stage="production")
        .select_related("registered_model__project", "artifact_version__blob", "artifact_version__run")
        .prefetch_related(
            Prefetch("artifact_version__run__input_dataset_versions", queryset=dataset_version.objects.only("pk"))
        )
        .order_by("registered_model__project__slug", "registered_model__name")
    )
    policies = _production_policies({version.registered_model.project_id for version in versions})
    now = timezone.now()
    for version in versions:
        version.policy = policies[version.registered_model.project_id]
        # The version is the production one, so no other's time in production is at stake.
        version.gates_now = gates_evaluate(version.policy, version, current_production=None, now=now)
        version.compliant = gates_pass(version.gates_now)
    return sorted(versions, key=lambda version: version.compliant)
