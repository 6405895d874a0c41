"""Reads for the artifact store: list querysets shaped for their pages, and lineage."""

import heapq
from dataclasses import dataclass, field
from itertools import chain
from typing import Literal

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection, connections
from django.db.models import Case, Count, Exists, Max, OuterRef, QuerySet, When, Window

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
from governance.permissions import artifact_ids_where, is_unrestricted, projects_where
from governance.roles import Verb

# Every list below names the relations its serializer reads, so a page costs the same number of queries
# whatever its size (tests/artifacts/test_api_queries.py holds this).


def project_list() -> QuerySet[Project]:
    # Nothing related is shown per project, so nothing to join.
    return Project.objects.all()


def blob_held_by(project: Project, digest: str, user) -> Blob | None:
    """The blob with this digest if `project` holds it (uploaded it) and `user` may read it; knowing a digest
    reaches nothing else.

    A project-wide role reads the project's bytes, except those published as a version of a restricted
    artifact the user may not see, or the project's blob endpoint would be a way around the restriction.
    A role on an artifact reads the bytes of that artifact's versions and no others, or publishing a digest
    to it would be a way to read anything else in the project. Everyone reads the bytes they uploaded there.
    """
    blobs = Blob.objects.filter(digest=digest, project_links__project=project)
    if not is_unrestricted(user):
        reads_project = Exists(Project.objects.filter(projects_where(user, Verb.VIEW), pk=project.pk))
        hidden_versions = ArtifactVersion.objects.filter(
            blob=OuterRef("pk"), artifact__project=project, artifact__restricted=True
        ).exclude(artifact_ids_where(user, Verb.VIEW, "artifact_id"))
        seen_versions = ArtifactVersion.objects.visible_to(user).filter(blob=OuterRef("pk"), artifact__project=project)
        uploaded = ProjectBlob.objects.filter(blob=OuterRef("pk"), project=project, uploaded_by_id=user.pk)
        blobs = blobs.filter((reads_project & ~Exists(hidden_versions)) | Exists(seen_versions) | Exists(uploaded))
    return blobs.first()


def dataset_list() -> QuerySet[Dataset]:
    # project: the slug on every row; the counts: one GROUP BY instead of a query per dataset.
    return Dataset.objects.select_related("project").annotate(
        version_count=Count("versions"), latest_version=Max("versions__number")
    )


def dataset_version_list() -> QuerySet[DatasetVersion]:
    # Each row shows its project's slug, its blob's digest and state, and its creator's name.
    return DatasetVersion.objects.select_related("dataset__project", "blob", "created_by")


def run_list() -> QuerySet[Run]:
    # The input id lists come from two prefetches of the edge tables, not a query per run.
    return Run.objects.select_related("project", "created_by").prefetch_related("dataset_inputs", "artifact_inputs")


def artifact_list() -> QuerySet[Artifact]:
    return Artifact.objects.select_related("project").annotate(
        version_count=Count("versions"), latest_version=Max("versions__number")
    )


def artifact_version_list() -> QuerySet[ArtifactVersion]:
    # Each row shows its project's slug, its blob's digest, size and state, and its creator's name.
    return ArtifactVersion.objects.select_related("artifact__project", "blob", "created_by")


#: Up to this many visible artifacts, a page of versions is found through each artifact's newest versions.
FEW_ARTIFACTS = 200


def artifact_versions_in_page(
    versions: QuerySet[ArtifactVersion], user, *, position: int | str | None, reverse: bool, count: int
) -> QuerySet[ArtifactVersion]:
    """`versions` (visible to `user`, perhaps filtered) narrowed to their `count` newest rows below `position`
    (the oldest above it when `reverse`) when the user sees at most FEW_ARTIFACTS artifacts; else unchanged.
    It only picks among `versions`, so it never shows more than they hold.

    Newest first, PostgreSQL walks the primary key backwards and tests each version against the access rule
    until the page is full: quick when the user's versions are among the recent ones, but a read of most of the
    table when they are few, old or spread thin (a viewer of one quiet project, a user with no role at all: see
    benchmarks/README.md). Each artifact's `count` newest versions are a short read of the (artifact, id) index,
    and the page is among them, so for few artifacts the cost follows what the user sees, not the table's size.
    For many, the backward walk fills a page within a few rows, and a read per artifact would cost more: one
    query tells the two apart, and reads the artifacts' newest versions only when they are few.
    """
    if is_unrestricted(user) or connections[versions.db].vendor != "postgresql":
        return versions
    window = {} if position is None else {"pk__gt" if reverse else "pk__lt": position}
    newest = versions.filter(artifact=OuterRef("pk"), **window).order_by("pk" if reverse else "-pk").values("pk")
    visible = Artifact.objects.visible_to(user).order_by().values("pk")[: FEW_ARTIFACTS + 1]
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


def _details(type_: NodeType, ids: set[int], user) -> dict[int, object]:
    if type_ == "dataset_version":
        queryset = DatasetVersion.objects.select_related("dataset__project", "blob")
    elif type_ == "run":
        queryset = Run.objects.select_related("project")
    else:
        queryset = ArtifactVersion.objects.select_related("artifact__project", "blob")
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
