"""Lifecycle's reads: the retention policy in force, and which versions a legal hold covers."""

from django.db.models import Exists, Model, OuterRef, Q, QuerySet, Subquery

from artifacts.models import ArtifactVersion, DatasetVersion
from governance.lifecycle.models import HOLD_SCOPES, LegalHold, RetentionPolicy

# Retention policies -----------------------------------------------------------------------------------------------


def retention_policy_current(project: Model) -> RetentionPolicy:
    """The rules a plan of `project` runs under now: its newest saved version, else the built-in default (unsaved,
    version 0, no rules: nothing is selected until a maintainer saves some)."""
    saved = RetentionPolicy.objects.filter(project=project).order_by("-version").first()
    if saved is not None:
        return saved
    return RetentionPolicy(project=project, version=0, rules=[], auto_apply=False)


def retention_policies_current(project_ids: set[int]) -> dict[int, RetentionPolicy]:
    """Each project's policy as `retention_policy_current` answers it, for many projects in one query."""
    newest = RetentionPolicy.objects.filter(project_id=OuterRef("project_id")).order_by("-version")
    saved = RetentionPolicy.objects.filter(project_id__in=project_ids, version=Subquery(newest.values("version")[:1]))
    policies = {policy.project_id: policy for policy in saved}
    for project_id in project_ids - policies.keys():
        policies[project_id] = RetentionPolicy(project_id=project_id, version=0, rules=[], auto_apply=False)
    return policies


# Legal holds ------------------------------------------------------------------------------------------------------
# A version is held while an active hold names it, its artifact or dataset, or its whole project (a hold naming
# none of HOLD_SCOPES). The conditions below are correlated subqueries, so a planner filters or annotates a whole
# queryset of versions in one statement instead of asking version by version. An act that must not race a new hold
# (applying a plan's item) locks the project's row first, at least FOR SHARE, as legal_hold_place locks it FOR NO KEY
# UPDATE before it writes: the check then sees every hold committed before it, and a hold placed after waits for it.

_PROJECT_WIDE = Q(**{f"{scope}__isnull": True for scope in HOLD_SCOPES})


def artifact_version_holds(prefix: str = "") -> QuerySet[LegalHold]:
    """The active holds covering the artifact version of the outer query's row: `prefix` is "" in a queryset of
    ArtifactVersion, or the path to one ("artifact_version__" in a queryset of plan items).

    Use as `Exists(artifact_version_holds())`, or `Subquery(artifact_version_holds().values("pk")[:1])` to name one.
    """
    return LegalHold.objects.active().filter(
        Q(artifact_version_id=OuterRef(f"{prefix}pk"))
        | Q(artifact_id=OuterRef(f"{prefix}artifact_id"))
        | _PROJECT_WIDE & Q(project_id=OuterRef(f"{prefix}artifact__project_id"))
    )


def dataset_version_holds(prefix: str = "") -> QuerySet[LegalHold]:
    """The active holds covering the dataset version of the outer query's row (see `artifact_version_holds`)."""
    return LegalHold.objects.active().filter(
        Q(dataset_version_id=OuterRef(f"{prefix}pk"))
        | Q(dataset_id=OuterRef(f"{prefix}dataset_id"))
        | _PROJECT_WIDE & Q(project_id=OuterRef(f"{prefix}dataset__project_id"))
    )


def artifact_version_held(prefix: str = "") -> Exists:
    """Whether an active hold covers the outer row's artifact version: `ArtifactVersion.objects.filter(
    artifact_version_held())` are the held ones, `.exclude(...)` the free ones."""
    return Exists(artifact_version_holds(prefix))


def dataset_version_held(prefix: str = "") -> Exists:
    """Whether an active hold covers the outer row's dataset version (see `artifact_version_held`)."""
    return Exists(dataset_version_holds(prefix))


def holds_covering(version: ArtifactVersion | DatasetVersion) -> QuerySet[LegalHold]:
    """The active holds covering one version, oldest first (to say what protects it)."""
    if isinstance(version, ArtifactVersion):
        scope = Q(artifact_version=version) | Q(artifact_id=version.artifact_id)
        project_id = version.artifact.project_id
    else:
        scope = Q(dataset_version=version) | Q(dataset_id=version.dataset_id)
        project_id = version.dataset.project_id
    covering = scope | _PROJECT_WIDE & Q(project_id=project_id)
    return LegalHold.objects.active().filter(covering).order_by("placed_at", "pk")


def hold_scope(hold: LegalHold) -> str:
    """What the hold names: "project", or one of HOLD_SCOPES."""
    return next((scope for scope in HOLD_SCOPES if getattr(hold, f"{scope}_id") is not None), "project")


def hold_described(hold: LegalHold) -> str:
    """The hold in words, for a kept plan item's `protected_by` or a refusal: "legal hold 4 on artifact 'bert'"."""
    scope = hold_scope(hold)
    if scope == "project":
        return f"legal hold {hold.pk} on project '{hold.project.slug}'"
    target = getattr(hold, scope)
    return f"legal hold {hold.pk} on {target._meta.verbose_name} '{target}'"
