"""Storage accounting (issue 19, item 7): what the versions a user may see keep in storage, what deduplication saves,
what is archived, what the current rules would reclaim, and how it grew. Pure reads, in the selectors layer: the
storage API (governance/lifecycle/api/storage.py) and the portal's dashboard and lifecycle pages both read these, so
the two cannot disagree.

Definitions (README, "Storage accounting"):

- A *live* version is an artifact version, or a dataset version stored here (with a blob), that has no tombstone and
  whose blob the garbage collector has not collected.
- *Stored bytes* of a scope (one project, or every project the user may see): the sizes of the distinct blobs the
  scope's live versions reference, each blob counted once however many versions, artifacts or projects use it.
  Per artifact kind likewise, over the live versions of that kind (dataset versions are the kind `dataset`); a blob
  two kinds share counts in both.
- *Logical bytes*: the sizes of the live versions, counting a blob once per version that references it: what
  storage would hold without content addressing. *Deduplication saved* = logical - stored.
- *Archived bytes*: the part of the stored bytes that archival moved to a colder storage class (`archived_at`).
- *Reclaimable bytes*: under the current rules, what the project's newest plan that no newer one superseded says
  would leave storage (`RetentionPlan.bytes_reclaimable`) while it waits to be applied; 0 once it has been applied
  (its bytes are gone: plan again to see what the rules select now); no figure when the project has never been
  planned. Over several projects, the sum of theirs (a blob only plans of two projects together would free is in
  neither, so the sum errs low, never high).
- *Growth*: per calendar month (current time zone), over the last GROWTH_MONTHS months, the logical bytes of the
  versions published that month (`created_at`), the logical bytes of the versions deleted that month (their
  tombstone's `deleted_at`), and the difference.

Every figure is scoped by the access rule: only versions `visible_to(user)` count (a restricted artifact the user may
not see adds nothing, even on a project they view), and only plans of projects they may view. Each function runs a
fixed number of aggregate queries, whatever the amount of data; nothing is summed row by row in Python. Distinct
blobs per group are summed over a UNION of (group, blob) pairs wrapped in one hand-written GROUP BY (`_figures_by`):
the ORM's own SQL with its parameters, as the ORM cannot group over a subquery.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection
from django.db.models import (
    CharField,
    Count,
    Expression,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import TruncMonth
from django.utils import timezone

from artifacts.access.rule import User
from artifacts.models import Artifact, ArtifactVersion, Blob, DatasetVersion, Project
from governance.lifecycle.models import RetentionPlan

#: Dataset versions are accounted as one more kind beside the artifact kinds.
DATASET_KIND = "dataset"
KINDS: tuple[str, ...] = (*Artifact.Kind.values, DATASET_KIND)
GROWTH_MONTHS = 12
#: A plan in these states has not yet done what it lists: its bytes_reclaimable is still to be reclaimed.
PLAN_PENDING_STATES = (RetentionPlan.State.PLANNED, RetentionPlan.State.APPLYING)


@dataclass(frozen=True)
class StorageFigures:
    """Bytes of one scope (a project, an artifact kind, or everything a user may see)."""

    versions: int
    blobs: int
    stored_bytes: int
    logical_bytes: int
    archived_bytes: int

    @property
    def deduplicated_bytes(self) -> int:
        """Bytes deduplication saves: what the versions would take stored one copy each, less what is stored."""
        return self.logical_bytes - self.stored_bytes


@dataclass(frozen=True)
class KindFigures:
    kind: str
    versions: int
    stored_bytes: int
    logical_bytes: int

    @property
    def deduplicated_bytes(self) -> int:
        return self.logical_bytes - self.stored_bytes


@dataclass(frozen=True)
class PlanFigures:
    """A project's newest plan that nothing superseded, and what it still reclaims."""

    plan_id: int
    project_id: int
    project_slug: str
    state: str
    planned_at: datetime
    applied_at: datetime | None
    bytes_reclaimable: int

    @property
    def bytes_still_reclaimable(self) -> int:
        """What applying it would still reclaim: nothing once it has been applied."""
        return self.bytes_reclaimable if self.state in PLAN_PENDING_STATES else 0


@dataclass(frozen=True)
class Reclaimable:
    """The bytes the current rules would reclaim in a scope, and the plans that say so (empty: no plan yet)."""

    plans: list[PlanFigures]

    @property
    def bytes(self) -> int:
        return sum(plan.bytes_still_reclaimable for plan in self.plans)


@dataclass(frozen=True)
class GrowthMonth:
    month: date  # the month's first day
    added_bytes: int
    deleted_bytes: int

    @property
    def net_bytes(self) -> int:
        return self.added_bytes - self.deleted_bytes


@dataclass(frozen=True)
class StorageReport:
    """Everything item 7 reports for one scope: `project` is None for every project the user may see."""

    project: Project | None
    totals: StorageFigures
    by_kind: list[KindFigures]
    reclaimable: Reclaimable
    growth: list[GrowthMonth]


# The scopes -------------------------------------------------------------------------------------------------------


def _artifact_versions(user: User, project: Project | None) -> QuerySet:
    versions = ArtifactVersion.objects.visible_to(user)
    return versions if project is None else versions.filter(artifact__project_id=project.pk)


def _dataset_versions(user: User, project: Project | None) -> QuerySet:
    # External dataset versions (no blob) keep no bytes here, so they are no part of any figure.
    versions = DatasetVersion.objects.visible_to(user).filter(blob__isnull=False)
    return versions if project is None else versions.filter(dataset__project_id=project.pk)


def _not_deleted(versions: QuerySet) -> QuerySet:
    return versions.filter(tombstone__isnull=True)


def _live(versions: QuerySet) -> QuerySet:
    """Versions not deleted whose bytes are still stored. (The collector never collects a blob a version not deleted
    uses, so the second condition only guards the figures against a collection gone wrong.)"""
    return _not_deleted(versions).filter(blob__collected_at__isnull=True)


def _figures_by(
    user: User, project: Project | None, *, artifact_group: Expression, dataset_group: Expression
) -> dict[Any, StorageFigures]:
    """The figures of the live versions `user` may see (of `project`, when one is given), per group: the group of an
    artifact version is `artifact_group`, of a dataset version `dataset_group` (a kind, a project id, or one constant
    for everything). Three queries, each one pass over the versions:

    - stored: the distinct (group, blob) pairs of the artifact and the dataset versions (a UNION, which keeps each
      pair once, read from the version tables alone), joined to their blobs once and summed per group;
    - logical: per group, the versions and their sizes, one query for artifact versions and one for dataset versions.

    (A blob-side `EXISTS` per blob was the first version of this: on PostgreSQL with 100,000 versions it took 1 to
    40 s, as it ran the access rule once per blob.)
    """
    pairs = [
        _not_deleted(versions).order_by().annotate(bucket=group).values("bucket", "blob_id")
        for versions, group in (
            (_artifact_versions(user, project), artifact_group),
            (_dataset_versions(user, project), dataset_group),
        )
    ]
    sql, params = pairs[0].union(pairs[1]).query.sql_with_params()
    quote = connection.ops.quote_name
    blob, size, archived_at = quote(Blob._meta.db_table), quote("size"), quote("archived_at")
    grouped = (
        f"SELECT pairs.bucket, COUNT(*), SUM(blob.{size}), "  # noqa: S608 (the ORM's own SQL, its values as parameters)
        f"SUM(CASE WHEN blob.{archived_at} IS NULL THEN 0 ELSE blob.{size} END) "
        f"FROM ({sql}) AS pairs INNER JOIN {blob} AS blob ON blob.{quote('id')} = pairs.blob_id "
        f"WHERE blob.{quote('collected_at')} IS NULL GROUP BY pairs.bucket"
    )
    figures: dict[Any, dict[str, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(grouped, params)
        for bucket, blobs, stored, archived_total in cursor.fetchall():
            figures[bucket] = {
                "blobs": blobs,
                "stored_bytes": int(stored),
                "archived_bytes": int(archived_total),
                "versions": 0,
                "logical_bytes": 0,
            }
    for versions, group in (
        (_live(_artifact_versions(user, project)), artifact_group),
        (_live(_dataset_versions(user, project)), dataset_group),
    ):
        rows = (
            versions.order_by()
            .annotate(bucket=group)
            .values("bucket")
            .annotate(versions=Count("pk"), logical_bytes=Sum("blob__size", default=0))
        )
        for row in rows:
            if row["versions"]:
                figures[row["bucket"]]["versions"] += row["versions"]
                figures[row["bucket"]]["logical_bytes"] += row["logical_bytes"]
    return {bucket: StorageFigures(**values) for bucket, values in figures.items()}


# The figures ------------------------------------------------------------------------------------------------------


def storage_totals(user: User, project: Project | None = None) -> StorageFigures:
    """Stored, logical and archived bytes of `project` (every project `user` may see when None): three queries."""
    everything = Value("all", output_field=CharField())
    figures = _figures_by(user, project, artifact_group=everything, dataset_group=everything)
    return figures.get("all", StorageFigures(versions=0, blobs=0, stored_bytes=0, logical_bytes=0, archived_bytes=0))


def storage_by_kind(user: User, project: Project | None = None) -> list[KindFigures]:
    """Per artifact kind (and `dataset`), the kinds with live versions in KINDS order: three queries."""
    figures = _figures_by(
        user,
        project,
        artifact_group=F("artifact__kind"),
        dataset_group=Value(DATASET_KIND, output_field=CharField()),
    )
    return [
        KindFigures(
            kind=kind,
            versions=figures[kind].versions,
            stored_bytes=figures[kind].stored_bytes,
            logical_bytes=figures[kind].logical_bytes,
        )
        for kind in KINDS
        if kind in figures
    ]


@dataclass(frozen=True)
class ProjectFigures:
    project: Project
    figures: StorageFigures


def storage_by_project(user: User, *, limit: int | None = None) -> list[ProjectFigures]:
    """The projects holding live versions `user` may see, with the figures of those versions, most stored bytes
    first (then by slug), the first `limit` of them: four queries."""
    figures = _figures_by(user, None, artifact_group=F("artifact__project_id"), dataset_group=F("dataset__project_id"))
    projects = Project.objects.in_bulk(list(figures))
    ranked = sorted(figures, key=lambda pk: (-figures[pk].stored_bytes, projects[pk].slug))
    return [ProjectFigures(project=projects[pk], figures=figures[pk]) for pk in ranked[:limit]]


def storage_reclaimable(user: User, project: Project | None = None) -> Reclaimable:
    """The newest plan not superseded of `project` (of every project `user` may view when None): one query."""
    newest = (
        RetentionPlan.objects.filter(project_id=OuterRef("project_id"))
        .exclude(state=RetentionPlan.State.SUPERSEDED)
        .order_by("-created_at", "-id")
        .values("pk")[:1]
    )
    plans = RetentionPlan.objects.visible_to(user).filter(pk=Subquery(newest))
    if project is not None:
        plans = plans.filter(project_id=project.pk)
    rows = plans.order_by("project__slug").values(
        "pk", "project_id", "project__slug", "state", "created_at", "applied_at", "bytes_reclaimable"
    )
    return Reclaimable(
        plans=[
            PlanFigures(
                plan_id=row["pk"],
                project_id=row["project_id"],
                project_slug=row["project__slug"],
                state=row["state"],
                planned_at=row["created_at"],
                applied_at=row["applied_at"],
                bytes_reclaimable=row["bytes_reclaimable"],
            )
            for row in rows
        ]
    )


def growth_months(now: datetime | None = None, months: int = GROWTH_MONTHS) -> list[date]:
    """The first days of the last `months` calendar months, the current one last (current time zone)."""
    today = timezone.localdate(now or timezone.now())
    year, month = today.year, today.month
    firsts = []
    for _ in range(months):
        firsts.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return firsts[::-1]


def _bytes_by_month(versions: QuerySet, moment: str, since: datetime) -> dict[date, int]:
    rows = (
        versions.filter(**{f"{moment}__gte": since})
        .annotate(month=TruncMonth(moment))
        .order_by()
        .values("month")
        .annotate(size=Sum("blob__size"))
    )
    return {_as_date(row["month"]): row["size"] for row in rows}


def _as_date(moment: date | datetime) -> date:
    return timezone.localdate(moment) if isinstance(moment, datetime) else moment


def storage_growth(user: User, project: Project | None = None, *, now: datetime | None = None) -> list[GrowthMonth]:
    """Bytes published and deleted per month over the last GROWTH_MONTHS months, oldest first: four queries."""
    months = growth_months(now)
    since = timezone.make_aware(datetime.combine(months[0], datetime.min.time()))
    added: dict[date, int] = {}
    deleted: dict[date, int] = {}
    for versions in (_artifact_versions(user, project), _dataset_versions(user, project)):
        for month, size in _bytes_by_month(versions, "created_at", since).items():
            added[month] = added.get(month, 0) + size
        for month, size in _bytes_by_month(versions, "tombstone__deleted_at", since).items():
            deleted[month] = deleted.get(month, 0) + size
    return [
        GrowthMonth(month=month, added_bytes=added.get(month, 0), deleted_bytes=deleted.get(month, 0))
        for month in months
    ]


def storage_report(user: User, project: Project | None = None, *, now: datetime | None = None) -> StorageReport:
    """All of item 7 for `project` (every project `user` may see when None): eleven queries whatever the data."""
    return StorageReport(
        project=project,
        totals=storage_totals(user, project),
        by_kind=storage_by_kind(user, project),
        reclaimable=storage_reclaimable(user, project),
        growth=storage_growth(user, project, now=now),
    )
