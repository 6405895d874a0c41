"""Storage snapshots (issue 19, item 7): each project's storage figures at one moment, kept so the dashboard, the
lifecycle page and the storage API read one indexed row instead of every version (about a second at 100,000
versions on PostgreSQL), and so the daily ones trace the stored bytes over time.

A snapshot holds project-level figures over ALL the project's versions, restricted artifacts included: it is the
project's own record, not one user's view. Who may read it, and why, is governance.lifecycle.accounting's "Reading
the snapshots". Snapshots are derived figures, not a change anyone made, so taking one writes no audit entry and
emits no event.

Taken hourly by beat (governance.lifecycle.tasks.take_storage_snapshots), after a retention plan is applied (the
apply service calls `storage_snapshot_take(project=plan.project)` last), and by the portal's demo.
"""

from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from artifacts.models import Project
from governance.lifecycle import accounting
from governance.lifecycle.models import StorageSnapshot

#: Snapshots that are not a project's daily one are deleted this long after they were taken.
SNAPSHOT_HOURLY_KEEP_HOURS = 48


def _rows(figures: list[accounting.ProjectStorage], taken_at: datetime, daily_taken: set[int]) -> list[StorageSnapshot]:
    day = taken_at.astimezone(UTC).date()
    return [
        StorageSnapshot(
            project_id=one.project_id,
            taken_at=taken_at,
            day=day,
            daily=one.project_id not in daily_taken,
            versions_live=one.totals.versions,
            versions_deleted=one.versions_deleted,
            blobs=one.totals.blobs,
            stored_bytes=one.totals.stored_bytes,
            logical_bytes=one.totals.logical_bytes,
            archived_bytes=one.totals.archived_bytes,
            by_kind={
                kind.kind: {"stored": kind.stored_bytes, "logical": kind.logical_bytes, "versions": kind.versions}
                for kind in one.by_kind
            },
        )
        for one in figures
    ]


def _daily_taken(project_ids: list[int], taken_at: datetime) -> set[int]:
    day = taken_at.astimezone(UTC).date()
    taken = StorageSnapshot.objects.filter(daily=True, day=day, project_id__in=project_ids)
    return set(taken.values_list("project_id", flat=True))


def storage_snapshot_take(
    *, project: Project | None = None, now: datetime | None = None, only: set[int] | None = None
) -> list[StorageSnapshot]:
    """Take a snapshot of `project` (of every project when None; of those among them in `only` when given): eight
    queries to compute, one to write, whatever the number of projects or versions. The first of a project's
    snapshots on a UTC day is its daily one.

    `now` backdates the snapshot (the demo's history; tests); the figures are always today's.
    """
    taken_at = now or timezone.now()
    figures = accounting.project_storage(project)
    if only is not None:
        figures = [one for one in figures if one.project_id in only]
    project_ids = [one.project_id for one in figures]
    try:
        with transaction.atomic():
            return StorageSnapshot.objects.bulk_create(_rows(figures, taken_at, _daily_taken(project_ids, taken_at)))
    except IntegrityError:
        # Another snapshot of the same day committed its daily row between our check and our insert: ours are then
        # hourly ones (storage_snapshot_one_daily refused the second daily row). Checked again, not assumed.
        with transaction.atomic():
            return StorageSnapshot.objects.bulk_create(_rows(figures, taken_at, _daily_taken(project_ids, taken_at)))


def storage_snapshots_take_hourly(*, now: datetime | None = None) -> list[StorageSnapshot]:
    """Snapshot every project that has none taken this hour yet, then prune: idempotent within the hour (a second
    run in the same hour, a redelivered task, writes nothing). Answers the snapshots taken."""
    now = now or timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    this_hour = StorageSnapshot.objects.filter(taken_at__gte=hour, taken_at__lte=now)
    waiting = set(Project.objects.exclude(pk__in=this_hour.values("project_id")).values_list("pk", flat=True))
    taken = storage_snapshot_take(now=now, only=waiting) if waiting else []
    storage_snapshots_prune(now=now)
    return taken


def storage_snapshots_prune(*, now: datetime | None = None) -> int:
    """Delete the snapshots that are not their project's daily one, taken more than SNAPSHOT_HOURLY_KEEP_HOURS ago:
    the only deletion of snapshots (daily ones are kept forever). Answers how many."""
    cutoff = (now or timezone.now()) - timedelta(hours=SNAPSHOT_HOURLY_KEEP_HOURS)
    deleted, _ = StorageSnapshot.objects.filter(daily=False, taken_at__lt=cutoff).delete()
    return deleted
