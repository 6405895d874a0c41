"""Storage accounting (governance/lifecycle/accounting.py) on a built scenario (tests/governance/lifecycle/
scenario.py): each figure as the README defines it, scoped to what the user may see, in a fixed number of queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from artifacts.access.roles import Role
from artifacts.models import Artifact
from governance.lifecycle import accounting
from governance.lifecycle.models import RetentionPlan
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, grant
from tests.governance.lifecycle.scenario import COLLECTED, DATA, DELETED, SHARED, TOKENIZER, build, stranger

pytestmark = pytest.mark.django_db


def test_a_project_stores_each_blob_once_and_counts_only_live_versions():
    scenario = build()

    totals = accounting.storage_totals(scenario.viewer_of_both, scenario.first)

    # Live: the shared model, the tokenizer twice (model and config), the dataset; the deleted versions are out.
    assert totals.versions == 4
    assert totals.blobs == 3
    assert totals.stored_bytes == len(SHARED) + len(TOKENIZER) + len(DATA)
    assert totals.logical_bytes == len(SHARED) + 2 * len(TOKENIZER) + len(DATA)
    assert totals.deduplicated_bytes == len(TOKENIZER)
    assert totals.archived_bytes == len(DATA)


def test_over_every_project_a_blob_two_projects_share_is_stored_once():
    scenario = build()

    totals = accounting.storage_totals(scenario.viewer_of_both)

    assert totals.stored_bytes == len(SHARED) + len(TOKENIZER) + len(DATA)
    assert totals.logical_bytes == 2 * len(SHARED) + 2 * len(TOKENIZER) + len(DATA)
    assert totals.deduplicated_bytes == len(SHARED) + len(TOKENIZER)


def test_a_user_is_told_only_of_the_projects_they_may_see():
    scenario = build()

    assert accounting.storage_totals(scenario.viewer_of_second).stored_bytes == len(SHARED)
    assert accounting.storage_totals(scenario.viewer_of_second, scenario.first).stored_bytes == 0
    nothing = accounting.storage_report(stranger())
    assert nothing.totals.stored_bytes == nothing.totals.logical_bytes == 0
    assert nothing.by_kind == []
    assert nothing.reclaimable.plans == []


def test_a_restricted_artifact_adds_nothing_for_a_project_viewer_who_may_not_see_it():
    scenario = build()
    secret = ArtifactFactory(project=scenario.first, name="secret", kind=Artifact.Kind.OTHER, restricted=True)
    ArtifactVersionFactory(artifact=secret, content=b"r" * 50)

    assert accounting.storage_totals(scenario.viewer_of_both, scenario.first).stored_bytes == 1800
    granted = grant(Role.VIEWER, on=secret, user=scenario.viewer_of_both).user
    assert accounting.storage_totals(granted, scenario.first).stored_bytes == 1850


def test_by_kind_counts_each_kind_over_its_own_live_versions_datasets_included():
    scenario = build()

    kinds = {row.kind: row for row in accounting.storage_by_kind(scenario.viewer_of_both, scenario.first)}

    assert list(kinds) == ["model", "config", "dataset"]
    assert (kinds["model"].versions, kinds["model"].stored_bytes) == (2, len(SHARED) + len(TOKENIZER))
    assert (kinds["config"].stored_bytes, kinds["dataset"].stored_bytes) == (len(TOKENIZER), len(DATA))
    assert all(row.deduplicated_bytes == 0 for row in kinds.values())


def test_by_project_is_largest_first_with_each_projects_own_deduplication():
    scenario = build()

    rows = accounting.storage_by_project(scenario.viewer_of_both)

    assert [row.project.slug for row in rows] == ["fraud", "churn"]
    fraud, churn = (row.figures for row in rows)
    assert (fraud.stored_bytes, fraud.logical_bytes, fraud.deduplicated_bytes) == (1800, 2100, 300)
    assert (fraud.archived_bytes, fraud.versions, fraud.blobs) == (len(DATA), 4, 3)
    assert (churn.stored_bytes, churn.deduplicated_bytes) == (1000, 0)
    assert [row.project.slug for row in accounting.storage_by_project(scenario.viewer_of_both, limit=1)] == ["fraud"]


def test_reclaimable_is_the_newest_plan_not_superseded_and_nothing_once_applied():
    scenario = build()

    reclaimable = accounting.storage_reclaimable(scenario.viewer_of_both, scenario.first)
    assert [plan.plan_id for plan in reclaimable.plans] == [scenario.plan.pk]
    assert reclaimable.bytes == 700
    assert accounting.storage_reclaimable(scenario.viewer_of_both, scenario.second).plans == []

    RetentionPlan.objects.filter(pk=scenario.plan.pk).update(state="applied", applied_at=scenario.now)
    assert accounting.storage_reclaimable(scenario.viewer_of_both).bytes == 0
    assert accounting.storage_reclaimable(scenario.viewer_of_second).plans == []


def test_growth_adds_what_was_published_and_takes_off_what_was_deleted_in_each_month():
    scenario = build()

    growth = accounting.storage_growth(scenario.viewer_of_both, now=scenario.now)

    assert len(growth) == accounting.GROWTH_MONTHS
    this_month = growth[-1]
    published = 2 * len(SHARED) + 2 * len(TOKENIZER) + len(DATA) + len(DELETED) + len(COLLECTED)
    assert this_month.added_bytes == published
    # The collected version's tombstone is dated 62 days back: two or three months before, by the calendar.
    assert this_month.deleted_bytes == len(DELETED)
    assert sum(month.deleted_bytes for month in growth[-4:-1]) == len(COLLECTED)
    assert this_month.net_bytes == published - len(DELETED)


def test_growth_places_each_month_in_its_bucket_when_seen_from_later():
    scenario = build()

    growth = accounting.storage_growth(scenario.viewer_of_both, scenario.first, now=scenario.now + timedelta(days=95))

    assert sum(month.added_bytes for month in growth[-1:]) == 0
    assert sum(month.added_bytes for month in growth) == 1000 + 600 + 500 + 200 + 400
    assert growth[-1].month.day == 1
    assert growth[0].month < growth[-1].month


def test_the_report_costs_the_same_number_of_queries_whatever_the_data():
    scenario = build()

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            accounting.storage_report(scenario.viewer_of_both)
            accounting.storage_by_project(scenario.viewer_of_both)
        return len(captured)

    before = queries()
    for index in range(5):
        artifact = ArtifactFactory(project=scenario.second, name=f"more-{index}", kind=Artifact.Kind.EVALUATION_REPORT)
        ArtifactVersionFactory(artifact=artifact)
    assert queries() == before
