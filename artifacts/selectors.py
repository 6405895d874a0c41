"""Reads for the artifact store: list querysets shaped for their pages, and lineage."""

import heapq
import re
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Literal

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection, connections
from django.db.models import (
    Case,
    Count,
    Exists,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    TextField,
    When,
    Window,
)
from django.db.models.functions import Cast

from artifacts.access.roles import Verb
from artifacts.access.rule import User, is_unrestricted
from artifacts.models import (
    Artifact,
    ArtifactVersion,
    Blob,
    Dataset,
    DatasetVersion,
    Project,
    ProjectBlob,
    Run,
    RunArtifactInput,
    RunDatasetInput,
)
from artifacts.storage import blob_storage, is_s3
from artifacts.storage.tiers import object_tier
from core.s3 import reads_at_once
from core.validators import DIGEST_PREFIX

# Every list below names the relations its serializer reads, so a page costs the same number of queries
# whatever its size (tests/artifacts/test_api_queries.py holds this).


def project_list() -> QuerySet[Project]:
    # Nothing related is shown per project, so nothing to join.
    return Project.objects.all()


def blob_held_by(project: Project, digest: str, user: User) -> Blob | None:
    """The blob with this digest if `project` holds it (uploaded it) and `user` may read it; knowing a digest
    reaches nothing else.

    A project-wide role reads the project's bytes, except those published as a version of a restricted
    artifact the user may not see, or the project's blob endpoint would be a way around the restriction.
    A role on an artifact reads the bytes of that artifact's versions and no others, or publishing a digest
    to it would be a way to read anything else in the project. Everyone reads the bytes they uploaded there.
    """
    blobs = Blob.objects.filter(digest=digest, project_links__project=project)
    if not is_unrestricted(user):
        reads_project = Exists(Project.objects.where(user, Verb.VIEW).filter(pk=project.pk))
        hidden_versions = ArtifactVersion.objects.filter(
            blob=OuterRef("pk"), artifact__project=project, artifact__restricted=True
        ).exclude(ArtifactVersion.objects.access_condition(user, Verb.VIEW))
        seen_versions = ArtifactVersion.objects.visible_to(user).filter(blob=OuterRef("pk"), artifact__project=project)
        uploaded = ProjectBlob.objects.filter(blob=OuterRef("pk"), project=project, uploaded_by_id=user.pk)
        blobs = blobs.filter((reads_project & ~Exists(hidden_versions)) | Exists(seen_versions) | Exists(uploaded))
    return blobs.first()


def blobs_to_collect() -> QuerySet[Blob]:
    """Blobs whose bytes the garbage collector would remove now: stored, used by a deleted version, and by no live
    one in any project. A hint only: blob_collect decides again under the blob's row lock."""
    artifact_uses = ArtifactVersion.objects.filter(blob=OuterRef("pk"))
    dataset_uses = DatasetVersion.objects.filter(blob=OuterRef("pk"))
    deleted, live = Q(tombstone__isnull=False), Q(tombstone__isnull=True)
    return (
        Blob.objects.filter(collected_at__isnull=True)
        .filter(Exists(artifact_uses.filter(deleted)) | Exists(dataset_uses.filter(deleted)))
        .exclude(Exists(artifact_uses.filter(live)) | Exists(dataset_uses.filter(live)))
        .order_by("pk")
    )


@dataclass(frozen=True)
class BlobReadability:
    """Whether a blob's bytes can be read now, as archival left them (artifacts/services/tiers.py)."""

    storage_class: str  # empty: the bucket's default class, or a local folder
    readable: bool
    #: Its class needs a restore before a read (GLACIER, DEEP_ARCHIVE), whether or not a restored copy is there now.
    restore_required: bool = False
    restore_in_progress: bool = False
    #: Until when the restored copy of bytes in such a class can be read.
    restored_until: datetime | None = None


def blob_readability(blob: Blob) -> BlobReadability:
    """Whether `blob`'s bytes can be read now: at once in their class, or through a restored copy S3 has finished.

    Asks S3 (one HeadObject) only for a class that needs a restore, so the downloads of every other blob cost
    nothing more. Bytes missing from storage are not this question's business: they read as readable here, and
    the read itself reports them.
    """
    if not is_s3(blob_storage()) or reads_at_once(blob.storage_class):
        return BlobReadability(blob.storage_class, readable=True)
    try:
        tier = object_tier(blob.storage_key)
    except FileNotFoundError:
        return BlobReadability(blob.storage_class, readable=True)
    return BlobReadability(
        tier.storage_class,
        readable=tier.readable,
        restore_required=not reads_at_once(tier.storage_class),
        restore_in_progress=tier.restore_ongoing,
        restored_until=tier.restored_until,
    )


def dataset_list() -> QuerySet[Dataset]:
    # project: the slug on every row; the counts: one GROUP BY instead of a query per dataset.
    return Dataset.objects.select_related("project").annotate(
        version_count=Count("versions"), latest_version=Max("versions__number")
    )


def dataset_version_list() -> QuerySet[DatasetVersion]:
    # Each row shows its project's slug, its blob's digest and state, its creator's name, and its tombstone if deleted.
    return DatasetVersion.objects.select_related("dataset__project", "blob", "created_by", "tombstone__deleted_by")


def run_list() -> QuerySet[Run]:
    # The input id lists come from two prefetches of the edge tables, not a query per run.
    return Run.objects.select_related("project", "created_by").prefetch_related("dataset_inputs", "artifact_inputs")


def artifact_list() -> QuerySet[Artifact]:
    return Artifact.objects.select_related("project").annotate(
        version_count=Count("versions"), latest_version=Max("versions__number")
    )


def artifact_version_list() -> QuerySet[ArtifactVersion]:
    # Each row shows its project's slug, its blob's digest, size and state, its creator's name, and its tombstone
    # (with who deleted it) if deleted.
    return ArtifactVersion.objects.select_related("artifact__project", "blob", "created_by", "tombstone__deleted_by")


#: Up to this many visible artifacts, a page of versions is found through each artifact's newest versions.
FEW_ARTIFACTS = 200


def artifact_versions_in_page(
    versions: QuerySet[ArtifactVersion],
    user: User,
    *,
    position: int | str | None,
    reverse: bool,
    count: int,
    artifacts: QuerySet[Artifact] | None = None,
) -> QuerySet[ArtifactVersion]:
    """`versions` (visible to `user`, perhaps filtered) narrowed to their `count` newest rows below `position`
    (the oldest above it when `reverse`) when the user sees at most FEW_ARTIFACTS artifacts among `artifacts`
    (which must hold every artifact of `versions`: those a project or kind filter leaves; all when None); else
    unchanged. It only picks among `versions`, so it never shows more than they hold. A superuser sees every
    artifact, so only a filter's artifacts can be few.

    Newest first, PostgreSQL walks the primary key backwards and tests each version against the access rule
    until the page is full: quick when the user's versions are among the recent ones, but a read of most of the
    table when they are few, old or spread thin (a viewer of one quiet project, a user with no role at all: see
    benchmarks/README.md). Each artifact's `count` newest versions are a short read of the (artifact, id) index,
    and the page is among them, so for few artifacts the cost follows what the user sees, not the table's size.
    For many, the backward walk fills a page within a few rows, and a read per artifact would cost more: one
    query tells the two apart, and reads the artifacts' newest versions only when they are few.

    Filtered by a project, the versions are those of the artifacts of one project, and the ones to count are the
    user's artifacts in it: counting all the user sees, a user with many grants took the backward walk, which for a
    quiet project (old versions) read most of the table before it found a page (benchmarks/README.md).
    """
    if (artifacts is None and is_unrestricted(user)) or connections[versions.db].vendor != "postgresql":
        return versions
    window = {} if position is None else {"pk__gt" if reverse else "pk__lt": position}
    newest = versions.filter(artifact=OuterRef("pk"), **window).order_by("pk" if reverse else "-pk").values("pk")
    among = Artifact.objects.all() if artifacts is None else artifacts
    visible = among.visible_to(user).order_by().values("pk")[: FEW_ARTIFACTS + 1]
    candidates = (
        Artifact.objects.filter(pk__in=visible)
        .order_by()
        .annotate(seen=Window(Count("pk")))
        .annotate(ids=Case(When(seen__lte=FEW_ARTIFACTS, then=ArraySubquery(newest[:count]))))
        .values_list("ids", flat=True)
    )
    lists = list(candidates)
    if len(lists) > FEW_ARTIFACTS:
        return versions
    pick = heapq.nsmallest if reverse else heapq.nlargest
    return versions.filter(pk__in=pick(count, chain.from_iterable(lists)))


# Lineage ----------------------------------------------------------------------------------------------

NodeType = Literal["dataset_version", "run", "artifact_version"]
Direction = Literal["upstream", "downstream", "both"]
NODE_TYPES: tuple[NodeType, ...] = ("dataset_version", "run", "artifact_version")


@dataclass(frozen=True)
class LineageNode:
    type: NodeType
    id: int
    depth: int
    direction: Literal["root", "upstream", "downstream"]
    obj: object = field(compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.type}:{self.id}"


@dataclass
class LineageGraph:
    root: LineageNode
    nodes: list[LineageNode]
    edges: list[tuple[str, str]]  # (source key, target key): data flows from source to target
    hidden: int = 0  # nodes reached that the user may not see


def _edges_sql() -> str:
    """Every lineage edge as (source type, source id, target type, target id), data flowing source → target."""
    q = connection.ops.quote_name
    dataset_inputs = q(RunDatasetInput._meta.db_table)
    artifact_inputs = q(RunArtifactInput._meta.db_table)
    artifact_versions = q(ArtifactVersion._meta.db_table)
    dataset_versions = q(DatasetVersion._meta.db_table)
    # Only table names from model metadata are interpolated; values travel as parameters.
    return f"""
        SELECT CAST('dataset_version' AS TEXT), dataset_version_id, CAST('run' AS TEXT), run_id FROM {dataset_inputs}
        UNION ALL
        SELECT CAST('artifact_version' AS TEXT), artifact_version_id, CAST('run' AS TEXT), run_id FROM {artifact_inputs}
        UNION ALL
        SELECT CAST('run' AS TEXT), run_id, CAST('artifact_version' AS TEXT), id FROM {artifact_versions}
            WHERE run_id IS NOT NULL
        UNION ALL
        SELECT CAST('run' AS TEXT), run_id, CAST('dataset_version' AS TEXT), id FROM {dataset_versions}
            WHERE run_id IS NOT NULL
    """  # noqa: S608


def _walk_sql() -> str:
    """Both directions from one root in a single statement of two recursive CTEs.

    UNION (not UNION ALL) drops repeated (node, depth, via) rows, so diamonds in the graph do not multiply.
    Each row says how the node was reached (`via`), which gives the edges without a second query.
    """
    return f"""
        WITH RECURSIVE
        edges(src_type, src_id, dst_type, dst_id) AS ({_edges_sql()}),
        down(node_type, node_id, depth, via_type, via_id) AS (
            SELECT CAST(%(type)s AS TEXT), CAST(%(id)s AS BIGINT), 0, CAST(NULL AS TEXT), CAST(NULL AS BIGINT)
            UNION
            SELECT e.dst_type, e.dst_id, d.depth + 1, d.node_type, d.node_id
            FROM down d JOIN edges e ON e.src_type = d.node_type AND e.src_id = d.node_id
            WHERE d.depth < %(down_depth)s
        ),
        up(node_type, node_id, depth, via_type, via_id) AS (
            SELECT CAST(%(type)s AS TEXT), CAST(%(id)s AS BIGINT), 0, CAST(NULL AS TEXT), CAST(NULL AS BIGINT)
            UNION
            SELECT e.src_type, e.src_id, u.depth + 1, u.node_type, u.node_id
            FROM up u JOIN edges e ON e.dst_type = u.node_type AND e.dst_id = u.node_id
            WHERE u.depth < %(up_depth)s
        )
        SELECT 'downstream', node_type, node_id, depth, via_type, via_id FROM down WHERE depth > 0
        UNION ALL
        SELECT 'upstream', node_type, node_id, depth, via_type, via_id FROM up WHERE depth > 0
    """  # noqa: S608


def _details(type_: NodeType, ids: set[int], user: User) -> dict[int, object]:
    if type_ == "dataset_version":
        queryset = DatasetVersion.objects.select_related("dataset__project", "blob", "tombstone__deleted_by")
    elif type_ == "run":
        queryset = Run.objects.select_related("project")
    else:
        queryset = ArtifactVersion.objects.select_related("artifact__project", "blob", "tombstone__deleted_by")
    return queryset.visible_to(user).in_bulk(ids) if ids else {}


def lineage_graph(
    *, node_type: NodeType, node_id: int, direction: Direction, max_depth: int, user
) -> LineageGraph | None:
    """Upstream (what made it) and/or downstream (what it made) of one node, to `max_depth` edges, as far
    as `user` may see: nodes they may not see are left out with their edges, and counted in `hidden`.

    One recursive query walks the graph; one query per node type then fetches what the nodes show.
    Returns None when the root does not exist or `user` may not see it.
    """
    root_obj = _details(node_type, {node_id}, user).get(node_id)
    if root_obj is None:
        return None
    params = {
        "type": node_type,
        "id": node_id,
        "down_depth": max_depth if direction in ("downstream", "both") else 0,
        "up_depth": max_depth if direction in ("upstream", "both") else 0,
    }
    with connection.cursor() as cursor:
        cursor.execute(_walk_sql(), params)
        rows = cursor.fetchall()

    reached: dict[tuple[str, int], tuple[str, int]] = {}
    edges: set[tuple[str, str]] = set()
    for side, type_, id_, depth, via_type, via_id in rows:
        key = (type_, id_)
        if key != (node_type, node_id) and (key not in reached or depth < reached[key][1]):
            reached[key] = (side, depth)
        node_key, via_key = f"{type_}:{id_}", f"{via_type}:{via_id}"
        edges.add((via_key, node_key) if side == "downstream" else (node_key, via_key))

    objects = {t: _details(t, {i for (rt, i) in reached if rt == t}, user) for t in NODE_TYPES}
    nodes = [
        LineageNode(type=t, id=i, depth=depth, direction=side, obj=objects[t][i])
        for (t, i), (side, depth) in sorted(reached.items(), key=lambda item: (item[1][1], item[0]))
        if i in objects[t]
    ]
    root = LineageNode(type=node_type, id=node_id, depth=0, direction="root", obj=root_obj)
    shown = {root.key} | {node.key for node in nodes}
    return LineageGraph(
        root=root,
        nodes=nodes,
        edges=sorted(edge for edge in edges if edge[0] in shown and edge[1] in shown),
        hidden=len(reached) - len(nodes),
    )


# The portal -------------------------------------------------------------------------------------------
# What the portal's artifact pages read (governance/portal/views/catalog.py), of artifacts alone: the registry and the
# audit log add their parts from governance/*/selectors.py, which builds on these. Each function costs a fixed
# number of queries whatever the size of what it reads, and everything goes through `visible_to(user)`: what the
# user may not see is simply absent.

#: Edges followed each way from a version on its page: its run, that run's inputs, the runs that made them and
#: their inputs upstream; the runs that read it, what they made, and who read those downstream.
PORTAL_LINEAGE_DEPTH = 4
#: Nodes drawn at most, the nearest first; a picture much larger than this is no longer readable.
PORTAL_LINEAGE_NODES = 60
#: Rows the walk may return at most: a node reached several ways is a row per way, so this bounds memory for a
#: version with thousands of neighbours while leaving room for every way of reaching the nodes that are drawn.
PORTAL_LINEAGE_ROWS = 2000
#: Consumers of a version listed on its page, newest first.
PORTAL_CONSUMERS = 50


@dataclass
class BoundedLineage:
    """A lineage graph cut to the nodes nearest its root; `truncated` says nodes were left out for the bound."""

    graph: LineageGraph
    truncated: bool


def portal_artifact_version(user: User, pk: int) -> ArtifactVersion | None:
    # The page names the artifact, its project, the blob's digest, size and state, who published it, and whether
    # (by whom) it was deleted.
    versions = ArtifactVersion.objects.visible_to(user).select_related(
        "artifact__project", "blob", "created_by", "tombstone__deleted_by"
    )
    return versions.filter(pk=pk).first()


def artifact_version_downloadable(version: ArtifactVersion) -> bool:
    """Whether the API's download of `version` would hand out its bytes to a user who sees the version.

    The download endpoint asks exactly that the version be visible (the view role, on its project or its
    artifact), then refuses deleted versions (410), corrupt bytes, and bytes archived where S3 reads them only after
    a restore; so a user who sees the version page may download unless the version was deleted or its bytes are
    quarantined or waiting for a restore.
    """
    return (
        getattr(version, "tombstone", None) is None
        and version.blob.state != Blob.State.CORRUPT
        and blob_readability(version.blob).readable
    )


def portal_run(run_id: int | None, user: User) -> Run | None:
    if run_id is None:
        return None
    return Run.objects.visible_to(user).select_related("project", "created_by").filter(pk=run_id).first()


def run_inputs(run: Run, user: User) -> tuple[list[DatasetVersion], list[ArtifactVersion]]:
    """What `run` read that `user` may see: dataset versions and artifact versions, each with what its row
    shows (dataset and project, artifact and project, and the blob)."""
    datasets = DatasetVersion.objects.visible_to(user).filter(consumed_by_runs=run)
    artifacts = ArtifactVersion.objects.visible_to(user).filter(consumed_by_runs=run)
    return (
        list(datasets.select_related("dataset__project", "blob").order_by("dataset__name", "-number")),
        list(artifacts.select_related("artifact__project", "blob").order_by("artifact__name", "-number")),
    )


def version_consumers(version: ArtifactVersion, user: User) -> list[Run]:
    """The runs that read `version` (newest first, at most PORTAL_CONSUMERS), each with what it produced that
    `user` may see in `produced_versions` and `produced_datasets`: two prefetches, not two queries per run."""
    produced_versions = ArtifactVersion.objects.visible_to(user).select_related("artifact").order_by("pk")
    produced_datasets = DatasetVersion.objects.visible_to(user).select_related("dataset").order_by("pk")
    runs = (
        Run.objects.visible_to(user)
        .filter(artifact_inputs__artifact_version=version)
        .select_related("project")
        .prefetch_related(
            Prefetch("produced_artifact_versions", queryset=produced_versions, to_attr="produced_versions"),
            Prefetch("produced_dataset_versions", queryset=produced_datasets, to_attr="produced_datasets"),
        )
        .order_by("-pk")
    )
    return list(runs[:PORTAL_CONSUMERS])


def bounded_lineage(version: ArtifactVersion, user: User) -> BoundedLineage:
    """Both directions from `version`, PORTAL_LINEAGE_DEPTH edges each way, cut to the PORTAL_LINEAGE_NODES
    nodes nearest it, as far as `user` may see (the rest counted in `hidden`, as lineage_graph does).

    The walk is lineage_graph's, with its rows ordered nearest first and capped, so a version read by thousands
    of runs costs a bounded read; then one query per node type for the nodes kept. Five queries in all.
    """
    root = LineageNode(type="artifact_version", id=version.pk, depth=0, direction="root", obj=version)
    params = {
        "type": root.type,
        "id": root.id,
        "down_depth": PORTAL_LINEAGE_DEPTH,
        "up_depth": PORTAL_LINEAGE_DEPTH,
        "rows": PORTAL_LINEAGE_ROWS,
    }
    with connection.cursor() as cursor:
        # Column 4 is the depth; the cap applies to the whole UNION ALL.
        cursor.execute(_walk_sql() + " ORDER BY 4 LIMIT %(rows)s", params)
        rows = cursor.fetchall()

    reached: dict[tuple[str, int], tuple[str, int]] = {}
    edges: set[tuple[str, str]] = set()
    for side, type_, id_, depth, via_type, via_id in rows:
        key = (type_, id_)
        if key != (root.type, root.id) and (key not in reached or depth < reached[key][1]):
            reached[key] = (side, depth)
        node_key, via_key = f"{type_}:{id_}", f"{via_type}:{via_id}"
        edges.add((via_key, node_key) if side == "downstream" else (node_key, via_key))

    nearest = sorted(reached.items(), key=lambda item: (item[1][1], item[0]))
    kept = nearest[:PORTAL_LINEAGE_NODES]
    objects = {t: _details(t, {i for (rt, i), _ in kept if rt == t}, user) for t in NODE_TYPES}
    nodes = [
        LineageNode(type=t, id=i, depth=depth, direction=side, obj=objects[t][i])
        for (t, i), (side, depth) in kept
        if i in objects[t]
    ]
    shown = {root.key} | {node.key for node in nodes}
    graph = LineageGraph(
        root=root,
        nodes=nodes,
        edges=sorted(edge for edge in edges if edge[0] in shown and edge[1] in shown),
        hidden=len(kept) - len(nodes),
    )
    return BoundedLineage(graph=graph, truncated=len(nearest) > len(kept) or len(rows) >= PORTAL_LINEAGE_ROWS)


# Search

SEARCH_MIN_LENGTH = 2
SEARCH_PER_KIND = 20
#: Hex digits that make a bare word a digest or commit prefix: fewer would match nearly everything.
BARE_HEX_MIN = 6
#: With its `sha256:` prefix a word is plainly a digest, so a shorter prefix is taken.
PREFIXED_HEX_MIN = 4
#: Artifact versions whose metadata text contains the query, checked key by key and value by value in Python.
METADATA_CANDIDATES = 200
HEX = re.compile(r"[0-9a-f]+")


@dataclass
class SearchGroup:
    kind: str  # projects, artifacts, artifact_versions, runs, datasets, dataset_versions (and models, added)
    title: str
    items: list
    more: bool  # there were more than SEARCH_PER_KIND


@dataclass
class SearchResults:
    query: str
    too_short: bool = False
    digest_prefix: str | None = None
    commit_prefix: str | None = None
    groups: list[SearchGroup] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(group.items) for group in self.groups)


def _hex_prefixes(query: str) -> tuple[str | None, str | None]:
    """The digest prefix and the commit prefix `query` stands for, if it is written as one."""
    lowered = query.lower()
    if lowered.startswith(DIGEST_PREFIX):
        digits = lowered.removeprefix(DIGEST_PREFIX)
        return (digits, None) if len(digits) >= PREFIXED_HEX_MIN and HEX.fullmatch(digits) else (None, None)
    if len(lowered) >= BARE_HEX_MIN and HEX.fullmatch(lowered):
        return lowered, lowered
    return None, None


def _bounded(queryset: QuerySet) -> tuple[list, bool]:
    rows = list(queryset[: SEARCH_PER_KIND + 1])
    return rows[:SEARCH_PER_KIND], len(rows) > SEARCH_PER_KIND


def metadata_contains(metadata: object, needle: str) -> bool:
    """Whether a key or a scalar value anywhere in `metadata` contains `needle` (already casefolded)."""
    if isinstance(metadata, dict):
        return any(needle in str(key).casefold() or metadata_contains(value, needle) for key, value in metadata.items())
    if isinstance(metadata, list):
        return any(metadata_contains(item, needle) for item in metadata)
    return metadata is not None and needle in str(metadata).casefold()


def search(query: str, user: User) -> SearchResults:
    """What `user` may see that `query` names, grouped by kind, at most SEARCH_PER_KIND of each: projects,
    artifacts and datasets by name (the portal adds registered models from governance.selectors); runs by name,
    external id, commit prefix or metric name; artifact and dataset versions by digest prefix, and artifact versions
    by their metadata. One query per kind (two for runs, with what they produced), whatever the number of matches.
    """
    query = query.strip()
    results = SearchResults(query=query)
    if len(query) < SEARCH_MIN_LENGTH:
        results.too_short = bool(query)
        return results
    digest, commit = _hex_prefixes(query)
    results.digest_prefix, results.commit_prefix = digest, commit

    def add(kind: str, title: str, queryset: QuerySet) -> None:
        items, more = _bounded(queryset)
        results.groups.append(SearchGroup(kind=kind, title=title, items=items, more=more))

    add(
        "projects",
        "Projects",
        Project.objects.visible_to(user).filter(Q(slug__icontains=query) | Q(name__icontains=query)).order_by("slug"),
    )
    newest_version = ArtifactVersion.objects.filter(artifact=OuterRef("pk")).order_by("-number").values("pk")[:1]
    add(
        "artifacts",
        "Artifacts",
        Artifact.objects.visible_to(user)
        .filter(name__icontains=query)
        .select_related("project")
        .annotate(newest_version_id=Subquery(newest_version))
        .order_by("name", "pk"),
    )

    # Versions: by digest prefix, or (artifact versions) by metadata. The metadata's JSON text is a coarse filter
    # both databases run (CAST to text); keys and values are then checked in Python, so JSON punctuation and
    # escapes never make a match, over a bounded number of candidates.
    versions = ArtifactVersion.objects.visible_to(user).select_related("artifact__project", "blob").order_by("-pk")
    by_digest = list(versions.filter(blob__digest__startswith=digest)[: SEARCH_PER_KIND + 1]) if digest else []
    needle = query.casefold()
    candidates = versions.annotate(metadata_text=Cast("metadata", TextField())).filter(metadata_text__icontains=query)
    by_metadata = [v for v in candidates[:METADATA_CANDIDATES] if metadata_contains(v.metadata, needle)]
    for version in by_metadata:
        version.matched_metadata = True
    seen: set[int] = set()
    merged = [v for v in [*by_digest, *by_metadata] if not (v.pk in seen or seen.add(v.pk))]
    results.groups.append(
        SearchGroup(
            kind="artifact_versions",
            title="Artifact versions",
            items=merged[:SEARCH_PER_KIND],
            more=len(merged) > SEARCH_PER_KIND,
        )
    )

    run_match = Q(name__icontains=query) | Q(external_id__icontains=query) | Q(metrics__has_key=query)
    if commit:
        run_match |= Q(code_commit__startswith=commit)
    produced = ArtifactVersion.objects.visible_to(user).select_related("artifact").order_by("pk")
    add(
        "runs",
        "Runs",
        Run.objects.visible_to(user)
        .filter(run_match)
        .select_related("project")
        .prefetch_related(Prefetch("produced_artifact_versions", queryset=produced, to_attr="produced_versions"))
        .order_by("-pk"),
    )
    add(
        "datasets",
        "Datasets",
        Dataset.objects.visible_to(user)
        .filter(Q(name__icontains=query) | Q(description__icontains=query))
        .select_related("project")
        .annotate(latest_version=Max("versions__number"))
        .order_by("name", "pk"),
    )
    if digest:
        add(
            "dataset_versions",
            "Dataset versions",
            DatasetVersion.objects.visible_to(user)
            .filter(Q(blob__digest__startswith=digest) | Q(manifest_digest__startswith=digest))
            .select_related("dataset__project", "blob")
            .order_by("-pk"),
        )
    return results
