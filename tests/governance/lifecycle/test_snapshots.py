"""Storage snapshots (governance/lifecycle/services/snapshots.py, tasks.py) and how the accounting reads them
(governance/lifecycle/accounting.py, "Reading the snapshots"): the project's own figures, taken hourly, idempotent
within the hour, read in a fixed number of queries, live only where no snapshot applies."""

from datetime import UTC, timedelta

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from artifacts.access.roles import Role
from artifacts.models import Artifact
from governance.lifecycle import accounting
from governance.lifecycle.models import StorageSnapshot
from governance.lifecycle.services.snapshots import (
    SNAPSHOT_HOURLY_KEEP_HOURS,
    storage_snapshot_take,
    storage_snapshots_prune,
    storage_snapshots_take_hourly,
)
from governance.lifecycle.tasks import take_storage_snapshots
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory, grant
from tests.governance.lifecycle.scenario import DATA, SHARED, TOKENIZER, build

pytestmark = pytest.mark.django_db


def snapshot_of(project) -> StorageSnapshot:
    return StorageSnapshot.objects.filter(project=project).order_by("-taken_at", "-id").first()


# Taking them ------------------------------------------------------------------------------------------------------


def test_a_snapshot_keeps_the_projects_figures_per_kind_and_its_deleted_versions():
    scenario = build()

    storage_snapshot_take()

    fraud = snapshot_of(scenario.first)
    assert (fraud.versions_live, fraud.versions_deleted, fraud.blobs) == (4, 2, 3)
    assert fraud.stored_bytes == len(SHARED) + len(TOKENIZER) + len(DATA)
    assert fraud.deduplicated_bytes == len(TOKENIZER)
    assert fraud.archived_bytes == len(DATA)
    assert fraud.by_kind == {
        "model": {"stored": 1300, "logical": 1300, "versions": 2},
        "config": {"stored": 300, "logical": 300, "versions": 1},
        "dataset": {"stored": 500, "logical": 500, "versions": 1},
    }
    churn = snapshot_of(scenario.second)
    assert churn.stored_bytes == 1000
    assert churn.by_kind == {"checkpoint": {"stored": 1000, "logical": 1000, "versions": 1}}


def test_a_project_without_versions_is_snapshotted_as_zeros():
    empty = ProjectFactory(slug="empty")

    (snapshot,) = storage_snapshot_take(project=empty)

    assert (snapshot.versions_live, snapshot.stored_bytes, snapshot.by_kind) == (0, 0, {})


def test_a_snapshot_counts_restricted_artifacts_as_part_of_their_project():
    scenario = build()
    secret = ArtifactFactory(project=scenario.first, name="secret", kind=Artifact.Kind.OTHER, restricted=True)
    ArtifactVersionFactory(artifact=secret, content=b"r" * 50)

    (snapshot,) = storage_snapshot_take(project=scenario.first)

    assert snapshot.stored_bytes == 1850
    assert snapshot.by_kind["other"] == {"stored": 50, "logical": 50, "versions": 1}


def test_the_first_snapshot_of_a_utc_day_is_the_daily_one():
    project = ProjectFactory()
    morning = timezone.now().replace(hour=1, minute=0, second=0, microsecond=0)

    (first,) = storage_snapshot_take(project=project, now=morning)
    (second,) = storage_snapshot_take(project=project, now=morning + timedelta(hours=1))
    (next_day,) = storage_snapshot_take(project=project, now=morning + timedelta(days=1))

    assert (first.daily, second.daily, next_day.daily) == (True, False, True)
    assert first.day == morning.astimezone(UTC).date()


def test_a_snapshot_is_never_changed():
    (snapshot,) = storage_snapshot_take(project=ProjectFactory())

    with pytest.raises(IntegrityError):
        StorageSnapshot.objects.filter(pk=snapshot.pk).update(stored_bytes=1)


def test_the_hourly_task_snapshots_each_project_once_an_hour_however_often_it_runs():
    scenario = build()

    assert take_storage_snapshots.delay().get() == 2
    assert take_storage_snapshots.delay().get() == 0  # redelivered, or beat ran it twice: nothing more

    assert StorageSnapshot.objects.count() == 2
    later = ProjectFactory(slug="later")
    assert [snapshot.project for snapshot in storage_snapshots_take_hourly()] == [later]
    next_hour = timezone.now() + timedelta(hours=1)
    assert {one.project_id for one in storage_snapshots_take_hourly(now=next_hour)} == {
        scenario.first.pk,
        scenario.second.pk,
        later.pk,
    }


def test_pruning_deletes_hourly_snapshots_after_48_hours_and_keeps_the_daily_ones():
    project = ProjectFactory()
    start = timezone.now().replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=3)
    (daily,) = storage_snapshot_take(project=project, now=start)
    (hourly,) = storage_snapshot_take(project=project, now=start + timedelta(hours=1))
    (recent,) = storage_snapshot_take(project=project, now=timezone.now())

    assert storage_snapshots_prune() == 1

    assert set(StorageSnapshot.objects.values_list("pk", flat=True)) == {daily.pk, recent.pk}
    assert hourly.taken_at < timezone.now() - timedelta(hours=SNAPSHOT_HOURLY_KEEP_HOURS)


# Reading them ------------------------------------------------------------------------------------------------------


def test_a_project_viewer_reads_the_newest_snapshot_with_its_time():
    scenario = build()
    (taken,) = storage_snapshot_take(project=scenario.first)
    model = scenario.first.artifacts.get(name="model")
    ArtifactVersionFactory(artifact=model, content=b"n" * 70)  # published after the snapshot

    overview = accounting.storage_overview(scenario.viewer_of_both, scenario.first)

    assert overview.as_of == taken.taken_at
    assert overview.totals.stored_bytes == 1800  # the snapshot's, not yet the new version's
    assert [row.kind for row in overview.by_kind] == ["model", "config", "dataset"]
    storage_snapshot_take(project=scenario.first)
    assert accounting.storage_overview(scenario.viewer_of_both, scenario.first).totals.stored_bytes == 1870


def test_without_a_snapshot_the_figures_are_computed_live():
    scenario = build()

    overview = accounting.storage_overview(scenario.viewer_of_both, scenario.first)

    assert overview.as_of is None
    assert overview.totals.stored_bytes == 1800
    assert overview.daily == []


def test_over_every_project_each_projects_snapshot_is_summed_and_ranked():
    scenario = build()
    storage_snapshot_take()

    overview = accounting.storage_overview(scenario.viewer_of_both)

    assert overview.as_of is not None
    # Per project, then added up: the blob both projects hold counts in each.
    assert overview.totals.stored_bytes == 1800 + 1000
    assert overview.totals.logical_bytes == 2100 + 1000
    assert [row.project.slug for row in overview.by_project] == ["fraud", "churn"]
    assert [row.kind for row in overview.by_kind] == ["model", "checkpoint", "config", "dataset"]
    assert accounting.storage_overview(scenario.viewer_of_second).totals.stored_bytes == 1000


def test_a_user_who_sees_a_project_through_an_artifact_gets_live_figures_of_what_they_may_see():
    scenario = build()
    secret = ArtifactFactory(project=scenario.first, name="secret", kind=Artifact.Kind.OTHER, restricted=True)
    ArtifactVersionFactory(artifact=secret, content=b"r" * 50)
    outsider = grant(Role.VIEWER, on=secret).user
    storage_snapshot_take()

    one = accounting.storage_overview(outsider, scenario.first)
    every = accounting.storage_overview(outsider)

    assert (one.as_of, one.totals.stored_bytes) == (None, 50)
    assert every.totals.stored_bytes == 50  # no snapshot they may read: fraud computed live over their versions
    assert [row.project.slug for row in every.by_project] == ["fraud"]
    # A viewer of the project reads its snapshot, the restricted artifact's bytes in the project's total.
    assert accounting.storage_overview(scenario.viewer_of_both, scenario.first).totals.stored_bytes == 1850


def test_a_project_not_yet_snapshotted_is_counted_live_beside_the_others():
    scenario = build()
    storage_snapshot_take(project=scenario.first)

    overview = accounting.storage_overview(scenario.viewer_of_both)

    assert overview.totals.stored_bytes == 1800 + 1000
    assert [row.project.slug for row in overview.by_project] == ["fraud", "churn"]


def test_stored_bytes_over_time_sum_the_daily_snapshots_per_day():
    scenario = build()
    today = timezone.now()
    for days_ago in (2, 1, 0):
        storage_snapshot_take(now=today - timedelta(days=days_ago))
    storage_snapshot_take(now=today)  # an hourly one: not part of the series

    daily = accounting.storage_daily(scenario.viewer_of_both)

    assert [day.day for day in daily] == [(today - timedelta(days=n)).astimezone(UTC).date() for n in (2, 1, 0)]
    assert {(day.stored_bytes, day.projects) for day in daily} == {(2800, 2)}
    assert [day.stored_bytes for day in accounting.storage_daily(scenario.viewer_of_second)] == [1000] * 3
    assert len(accounting.storage_daily(scenario.viewer_of_both, scenario.first, days=2)) == 2


def overview_queries(user, project=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        accounting.storage_overview(user, project)
    return len(queries)


def test_reading_snapshots_takes_the_same_queries_however_many_versions():
    scenario = build()
    storage_snapshot_take()
    few = (overview_queries(scenario.viewer_of_both), overview_queries(scenario.viewer_of_both, scenario.first))
    model = scenario.first.artifacts.get(name="model")
    for index in range(20):
        ArtifactVersionFactory(artifact=model, content=f"more {index}".encode())
    storage_snapshot_take()

    many = (overview_queries(scenario.viewer_of_both), overview_queries(scenario.viewer_of_both, scenario.first))

    assert few == many == (3, 2)
