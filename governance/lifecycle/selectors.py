"""Lifecycle's reads: the retention policy in force, which versions a legal hold covers, what every built-in
protection keeps, and what a plan's rules select."""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber

from artifacts.access.rule import User
from artifacts.models import (
    ArtifactVersion,
    Blob,
    DatasetVersion,
    Project,
    Run,
    RunArtifactInput,
    RunDatasetInput,
)
from governance.lifecycle.models import HOLD_SCOPES, LegalHold, RetentionPlan, RetentionPlanItem, RetentionPolicy
from governance.lifecycle.rules import DATASET_KIND, NO_RUN, NOT_REGISTERED, Rule
from governance.registry.models import ModelAlias, ModelVersion, PromotionRequest, Stage

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


# ---------------------------------------------------------------------------------------------------------------
# Protections and planning (governance/lifecycle/services/plans.py writes plans from these reads).
#
# Protections are built in: no rule can override them. What they protect is small next to a store's versions (the
# versions the registry serves or names, what is held, and their lineage), so it is computed once, as words per id,
# and a plan's candidates, which may be millions, are streamed past it.
# ---------------------------------------------------------------------------------------------------------------

#: Ids per `__in` list while walking lineage: well under SQLite's and PostgreSQL's parameter limits.
ID_BATCH = 1000

#: Stages whose versions no rule may touch.
SERVING_STAGES = (Stage.PRODUCTION, Stage.STAGING)


def _chunks(ids: Iterable[int], size: int = ID_BATCH) -> Iterator[list[int]]:
    iterator = iter(ids)
    while chunk := list(islice(iterator, size)):
        yield chunk


@dataclass
class Protections:
    """What protects what, in words, across every project (bytes are shared between projects, and so is lineage).

    A version is protected by what names it (`artifact_versions`, `dataset_versions`: a stage, an alias, an open
    promotion request, a hold on the version, being upstream of a protected model version) or by a hold on what
    contains it (`artifacts`, `datasets`, `projects`).
    """

    artifact_versions: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    dataset_versions: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    artifacts: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    datasets: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    projects: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))

    def of_artifact_version(self, *, version_id: int, artifact_id: int, project_id: int) -> str:
        """What protects the version, in words ("" when nothing does)."""
        return "; ".join(
            [
                *self.artifact_versions.get(version_id, ()),
                *self.artifacts.get(artifact_id, ()),
                *self.projects.get(project_id, ()),
            ]
        )

    def of_dataset_version(self, *, version_id: int, dataset_id: int, project_id: int) -> str:
        return "; ".join(
            [
                *self.dataset_versions.get(version_id, ()),
                *self.datasets.get(dataset_id, ()),
                *self.projects.get(project_id, ()),
            ]
        )


def _hold_words(hold: LegalHold) -> str:
    """The hold by its number alone: a plan is read by whoever reads its project, and a hold's reason only by the
    project's maintainers and auditors (LegalHoldQuerySet), who find it under that number."""
    return f"legal hold #{hold.pk}"


def protections_compute() -> Protections:
    """Every built-in protection in force now.

    Seeds are the model versions that are protected (in production or staging, named by an alias, subject of an open
    promotion request, or held, whatever the hold's scope); everything upstream of them (their producing runs'
    input versions, those versions' producing runs' inputs, and so on, across projects) is protected as their
    lineage. A query per kind of protection and a few per lineage generation: the cost follows what is protected,
    not the size of the store.
    """
    found = Protections()
    seeds: dict[int, str] = {}  # artifact version id -> how the model version it backs is protected, for lineage

    serving = ModelVersion.objects.filter(stage__in=SERVING_STAGES).values_list(
        "artifact_version_id", "registered_model__name", "number", "stage"
    )
    for version_id, model, number, stage in serving:
        found.artifact_versions[version_id].append(f"in {stage} as {model} v{number}")
        seeds.setdefault(version_id, f"{model} v{number} (in {stage})")
    aliases = ModelAlias.objects.values_list(
        "model_version__artifact_version_id", "name", "registered_model__name", "model_version__number"
    )
    for version_id, alias, model, number in aliases:
        found.artifact_versions[version_id].append(f"alias '{alias}' of {model}")
        seeds.setdefault(version_id, f"{model} v{number} (alias '{alias}')")
    requests = PromotionRequest.objects.filter(state=PromotionRequest.State.OPEN).values_list(
        "model_version__artifact_version_id", "pk", "registered_model__name", "model_version__number"
    )
    for version_id, request_id, model, number in requests:
        found.artifact_versions[version_id].append(f"subject of open promotion request #{request_id}")
        seeds.setdefault(version_id, f"{model} v{number} (open promotion request #{request_id})")

    holds = list(LegalHold.objects.active().order_by("pk"))
    for hold in holds:
        words = _hold_words(hold)
        if hold.artifact_version_id:
            found.artifact_versions[hold.artifact_version_id].append(words)
        elif hold.dataset_version_id:
            found.dataset_versions[hold.dataset_version_id].append(words)
        elif hold.artifact_id:
            found.artifacts[hold.artifact_id].append(words)
        elif hold.dataset_id:
            found.datasets[hold.dataset_id].append(words)
        else:
            found.projects[hold.project_id].append(words)
    if holds:
        held = Q(artifact_version_id__in=[h.artifact_version_id for h in holds if h.artifact_version_id])
        held |= Q(artifact_version__artifact_id__in=[h.artifact_id for h in holds if h.artifact_id])
        whole_projects = [h.project_id for h in holds if hold_scope(h) == "project"]
        held |= Q(registered_model__project_id__in=whole_projects)
        for version_id, model, number in ModelVersion.objects.filter(held).values_list(
            "artifact_version_id", "registered_model__name", "number"
        ):
            seeds.setdefault(version_id, f"{model} v{number} (under legal hold)")

    _protect_lineage(found, seeds)
    return found


def _protect_lineage(found: Protections, seeds: dict[int, str]) -> None:
    """Mark every version upstream of `seeds` "upstream of <seed>", walking one generation of runs at a time.

    Each version is visited once, so a cycle (impossible through immutable rows, but cheap to rule out) ends it.
    """
    seen_artifact_versions = set(seeds)
    seen_dataset_versions: set[int] = set()
    artifact_frontier = dict(seeds)
    dataset_frontier: dict[int, str] = {}
    while artifact_frontier or dataset_frontier:
        run_labels: dict[int, str] = {}
        for model, frontier in ((ArtifactVersion, artifact_frontier), (DatasetVersion, dataset_frontier)):
            for chunk in _chunks(frontier):
                produced = model.objects.filter(pk__in=chunk, run_id__isnull=False).values_list("pk", "run_id")
                for version_id, run_id in produced:
                    run_labels.setdefault(run_id, frontier[version_id])
        artifact_frontier, dataset_frontier = {}, {}
        for chunk in _chunks(run_labels):
            inputs = RunArtifactInput.objects.filter(run_id__in=chunk).values_list("run_id", "artifact_version_id")
            for run_id, version_id in inputs:
                if version_id not in seen_artifact_versions:
                    seen_artifact_versions.add(version_id)
                    artifact_frontier[version_id] = run_labels[run_id]
                    found.artifact_versions[version_id].append(f"upstream of {run_labels[run_id]}")
            inputs = RunDatasetInput.objects.filter(run_id__in=chunk).values_list("run_id", "dataset_version_id")
            for run_id, version_id in inputs:
                if version_id not in seen_dataset_versions:
                    seen_dataset_versions.add(version_id)
                    dataset_frontier[version_id] = run_labels[run_id]
                    found.dataset_versions[version_id].append(f"upstream of {run_labels[run_id]}")


def versions_protected(project: Project) -> Iterator[tuple[str, int, str]]:
    """The live versions of `project` a built-in protection keeps, as ("artifact_version" | "dataset_version", id,
    what protects it). Streams: a project-wide hold names every version."""
    protections = protections_compute()
    artifact_rows = (
        ArtifactVersion.objects.filter(artifact__project=project, tombstone__isnull=True)
        .order_by("pk")
        .values_list("pk", "artifact_id")
    )
    for version_id, artifact_id in artifact_rows.iterator(chunk_size=5000):
        words = protections.of_artifact_version(version_id=version_id, artifact_id=artifact_id, project_id=project.pk)
        if words:
            yield "artifact_version", version_id, words
    dataset_rows = (
        DatasetVersion.objects.filter(dataset__project=project, tombstone__isnull=True)
        .order_by("pk")
        .values_list("pk", "dataset_id")
    )
    for version_id, dataset_id in dataset_rows.iterator(chunk_size=5000):
        words = protections.of_dataset_version(version_id=version_id, dataset_id=dataset_id, project_id=project.pk)
        if words:
            yield "dataset_version", version_id, words


def projects_with_rules() -> QuerySet[Project]:
    """Projects that saved rules at some point; whether the version in force still has any is for the caller
    (retention_policy_current)."""
    return Project.objects.filter(Exists(RetentionPolicy.objects.filter(project=OuterRef("pk")))).order_by("pk")


# Which versions each rule selects. Every criterion is a condition on the version's own row or a correlated
# subquery on an index, so one statement per kind of version classifies them all, each by the first rule whose
# every criterion holds, and the database streams the answer.


def _always() -> Q:
    # When() refuses an empty Q: a rule without criteria selects every version.
    return Q(pk__isnull=False)


def _common_criteria(rule: Rule, now: datetime, project: Project) -> Q:
    """The criteria artifact and dataset versions share, as governance/lifecycle/rules.py defines them."""
    condition = _always()
    if rule.run_statuses is not None:
        by_status = Q(run__status__in=[status for status in rule.run_statuses if status != NO_RUN])
        condition &= by_status | Q(run__isnull=True) if NO_RUN in rule.run_statuses else by_status
    if rule.older_than_days is not None:
        condition &= Q(created_at__lte=now - timedelta(days=rule.older_than_days))
    if rule.keep_last_runs:
        # The project's newest runs are the last recorded.
        latest_runs = Run.objects.filter(project=project).order_by("-pk").values("pk")[: rule.keep_last_runs]
        condition &= Q(run__isnull=True) | ~Q(run_id__in=Subquery(latest_runs))
    if rule.keep_last_versions:
        # `version_rank` (see _ranked): 1 for the newest live version of its artifact or dataset.
        condition &= Q(version_rank__gt=rule.keep_last_versions)
    return condition


def _artifact_rule_condition(rule: Rule, now: datetime, project: Project) -> Q | None:
    """The condition under which `rule` selects an artifact version, None when it names only datasets."""
    kinds = [kind for kind in rule.kinds if kind != DATASET_KIND]
    if rule.kinds and not kinds:
        return None
    condition = _common_criteria(rule, now, project)
    if kinds:
        condition &= Q(artifact__kind__in=kinds)
    if rule.stages is not None:
        # "archived": a model version of it is archived; "none": no model version of it is in any stage.
        registered = ModelVersion.objects.filter(artifact_version_id=OuterRef("pk"))
        listed = []
        if Stage.ARCHIVED in rule.stages:
            listed.append(Exists(registered.filter(stage=Stage.ARCHIVED)))
        if NOT_REGISTERED in rule.stages:
            listed.append(~Exists(registered.exclude(stage=Stage.NONE)))
        condition &= listed[0] if len(listed) == 1 else Q(listed[0]) | Q(listed[1])
    return condition


def _dataset_rule_condition(rule: Rule, now: datetime, project: Project) -> Q | None:
    """The condition under which `rule` selects a dataset version, None when it names only artifact kinds."""
    if rule.kinds and DATASET_KIND not in rule.kinds:
        return None
    if rule.stages is not None and NOT_REGISTERED not in rule.stages:
        return None  # a dataset version is in no registry stage: "none"
    # Versions pinned to data kept elsewhere count in the ranks, but have no bytes here to delete or archive.
    return _common_criteria(rule, now, project) & Q(blob__isnull=False)


def _first_rule(conditions: list[Q | None]) -> Case | None:
    whens = [When(condition, then=Value(index)) for index, condition in enumerate(conditions) if condition is not None]
    if not whens:
        return None
    return Case(*whens, default=None, output_field=IntegerField())


def _ranked(versions: QuerySet, rules: Sequence[Rule], parent: str) -> QuerySet:
    """`versions` with `version_rank` (1 for the newest of its artifact or dataset among `versions`, which are the
    live ones) when a rule keeps the newest: one window over the project's versions, not a subquery per version."""
    if not any(rule.keep_last_versions for rule in rules):
        return versions
    return versions.annotate(
        version_rank=Window(RowNumber(), partition_by=[F(parent)], order_by=[F("number").desc(), F("pk").desc()])
    )


#: What the planner reads of each selected version: (id, rule index, artifact or dataset id, blob id, size,
#: archived already).
SelectedRow = tuple[int, int, int, int, int, bool]


def artifact_versions_selected(project: Project, rules: Sequence[Rule], *, now: datetime) -> QuerySet:
    """Live artifact versions of `project` with bytes in storage, each with the index of the first rule selecting it
    (`rule_index`), as SelectedRow tuples in id order. Protections are not weighed here."""
    first = _first_rule([_artifact_rule_condition(rule, now, project) for rule in rules])
    if first is None:
        return ArtifactVersion.objects.none().values_list("pk")
    # Bytes are collected only once no live version uses them: every live version's bytes are in storage.
    live = ArtifactVersion.objects.filter(artifact__project=project, tombstone__isnull=True)
    return (
        _ranked(live, rules, "artifact_id")
        .annotate(rule_index=first)
        .filter(rule_index__isnull=False)
        .order_by("pk")
        .values_list("pk", "rule_index", "artifact_id", "blob_id", "blob__size", "blob__archived_at")
    )


def dataset_versions_selected(project: Project, rules: Sequence[Rule], *, now: datetime) -> QuerySet:
    """As artifact_versions_selected, for dataset versions stored here (one pinned to data kept elsewhere has no
    bytes here to delete or archive)."""
    first = _first_rule([_dataset_rule_condition(rule, now, project) for rule in rules])
    if first is None:
        return DatasetVersion.objects.none().values_list("pk")
    live = DatasetVersion.objects.filter(dataset__project=project, tombstone__isnull=True)
    return (
        _ranked(live, rules, "dataset_id")
        .annotate(rule_index=first)
        .filter(rule_index__isnull=False)
        .order_by("pk")
        .values_list("pk", "rule_index", "dataset_id", "blob_id", "blob__size", "blob__archived_at")
    )


def blob_users_protected(blob_ids: Sequence[int], protections: Protections, *, project: Project) -> dict[int, str]:
    """For each of `blob_ids` some live version (of any project) using it is protected: what protects it, naming
    the version. Archiving a blob moves it for every version using it, so a protected one keeps it where it is.

    A version of another project than `project` (whose plan this is written in) is not named: the plan's readers
    may not see that project.
    """
    found: dict[int, str] = {}
    for chunk in _chunks(blob_ids):
        artifact_users = ArtifactVersion.objects.filter(blob_id__in=chunk, tombstone__isnull=True).values_list(
            "blob_id",
            "pk",
            "artifact_id",
            "artifact__project_id",
            "artifact__project__slug",
            "artifact__name",
            "number",
        )
        for blob_id, version_id, artifact_id, project_id, slug, name, number in artifact_users:
            words = protections.of_artifact_version(
                version_id=version_id, artifact_id=artifact_id, project_id=project_id
            )
            if words and blob_id not in found:
                found[blob_id] = _sharing(project, project_id, f"{slug}/{name}@v{number}", words)
        dataset_users = DatasetVersion.objects.filter(blob_id__in=chunk, tombstone__isnull=True).values_list(
            "blob_id", "pk", "dataset_id", "dataset__project_id", "dataset__project__slug", "dataset__name", "number"
        )
        for blob_id, version_id, dataset_id, project_id, slug, name, number in dataset_users:
            words = protections.of_dataset_version(version_id=version_id, dataset_id=dataset_id, project_id=project_id)
            if words and blob_id not in found:
                found[blob_id] = _sharing(project, project_id, f"{slug}/{name}@v{number}", words)
    return found


def _sharing(project: Project, owner_id: int, version: str, words: str) -> str:
    if owner_id == project.pk:
        return f"shares its bytes with {version} ({words})"
    return "shares its bytes with a protected version of another project"


def plan_bytes_reclaimable(plan: RetentionPlan) -> int:
    """Bytes of the blobs the plan deletes that no live version outside its delete set (in any project) needs:
    what would leave storage if it were applied now."""
    deleting = RetentionPlanItem.objects.filter(plan=plan, action=RetentionPlanItem.Action.DELETE)
    # Each NOT EXISTS is an index lookup per version using the blob (items are indexed by version).
    needed_by_artifact = ArtifactVersion.objects.filter(blob_id=OuterRef("pk"), tombstone__isnull=True).exclude(
        Exists(deleting.filter(artifact_version_id=OuterRef("pk")))
    )
    needed_by_dataset = DatasetVersion.objects.filter(blob_id=OuterRef("pk"), tombstone__isnull=True).exclude(
        Exists(deleting.filter(dataset_version_id=OuterRef("pk")))
    )
    reclaimed = (
        Blob.objects.filter(pk__in=deleting.values("blob_id"), collected_at__isnull=True)
        .exclude(Exists(needed_by_artifact))
        .exclude(Exists(needed_by_dataset))
        .aggregate(total=Sum("size"))
    )
    return reclaimed["total"] or 0


def plan_list() -> QuerySet[RetentionPlan]:
    # The list shows each plan's project slug and who made and applied it: joined, not a query per row.
    return RetentionPlan.objects.select_related("project", "created_by", "applied_by")


def plan_items_visible(items: QuerySet[RetentionPlanItem], user: User) -> QuerySet[RetentionPlanItem]:
    """Of `items` (of plans `user` sees), those `user` may see: whoever sees a plan sees its project's datasets,
    but a restricted artifact's versions only through a role on it."""
    visible = Q(dataset_version__isnull=False) | Q(
        artifact_version__in=ArtifactVersion.objects.visible_to(user).values("pk")
    )
    return items.filter(visible)


def plan_items(plan: RetentionPlan, user: User) -> QuerySet[RetentionPlanItem]:
    """The plan's items `user` may see."""
    # Each item names its version (artifact or dataset, with its name and number) and blob: joined, not per row.
    items = RetentionPlanItem.objects.filter(plan=plan).select_related(
        "artifact_version__artifact__project", "dataset_version__dataset__project", "blob"
    )
    return plan_items_visible(items, user)


def plan_item_counts(plan: RetentionPlan) -> dict[str, dict[str, int]]:
    """How many items of each action are in each state: {action: {state: count}}."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    rows = plan.items.order_by().values_list("action", "state").annotate(n=Count("pk"))
    for action, state, number in rows:
        counts[action][state] = number
    return dict(counts)
