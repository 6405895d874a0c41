"""The storage API (governance/lifecycle/api/storage.py): the accounting's figures as the schema documents them,
over the projects the caller may see and no other."""

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from governance.lifecycle.services.snapshots import storage_snapshot_take
from tests.artifacts.factories import UserFactory
from tests.governance.lifecycle.scenario import DATA, SHARED, TOKENIZER, build
from tests.schema_contract import assert_conforms

pytestmark = pytest.mark.django_db


def test_a_projects_storage_names_its_bytes_kinds_plan_and_months(api_as):
    scenario = build()

    response = api_as(scenario.viewer_of_both).get("/api/v1/projects/fraud/storage/")

    assert response.status_code == 200
    assert_conforms(response, "GET", "/api/v1/projects/{slug}/storage/")
    body = response.json()
    assert body["project"] == "fraud"
    assert (body["versions"], body["blobs"]) == (4, 3)
    assert body["stored_bytes"] == len(SHARED) + len(TOKENIZER) + len(DATA)
    assert (body["deduplicated_bytes"], body["archived_bytes"]) == (len(TOKENIZER), len(DATA))
    assert [row["kind"] for row in body["by_kind"]] == ["model", "config", "dataset"]
    assert body["reclaimable"]["bytes"] == 700
    assert [plan["id"] for plan in body["reclaimable"]["plans"]] == [scenario.plan.pk]
    assert body["growth"][-1]["month"] == timezone.localdate().replace(day=1).isoformat()


def test_totals_count_a_blob_two_projects_share_once(api_as):
    scenario = build()

    response = api_as(scenario.viewer_of_both).get("/api/v1/storage/")

    assert response.status_code == 200
    assert_conforms(response, "GET", "/api/v1/storage/")
    body = response.json()
    assert body["project"] is None
    assert body["stored_bytes"] == len(SHARED) + len(TOKENIZER) + len(DATA)
    assert body["deduplicated_bytes"] == len(SHARED) + len(TOKENIZER)


def test_a_caller_sees_only_the_bytes_of_their_projects(api_as):
    scenario = build()
    client = api_as(scenario.viewer_of_second)

    totals = client.get("/api/v1/storage/").json()
    hidden = client.get("/api/v1/projects/fraud/storage/")

    assert (totals["stored_bytes"], totals["logical_bytes"]) == (len(SHARED), len(SHARED))
    assert totals["reclaimable"] == {"bytes": 0, "plans": []}
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == "No project 'fraud'."
    assert_conforms(hidden, "GET", "/api/v1/projects/{slug}/storage/")


def test_someone_with_no_role_is_told_of_nothing(api_as):
    build()

    body = api_as(UserFactory()).get("/api/v1/storage/").json()

    assert (body["versions"], body["stored_bytes"], body["by_kind"]) == (0, 0, [])
    assert all(month["added_bytes"] == 0 for month in body["growth"])


def test_a_projects_storage_is_read_from_its_newest_snapshot_with_its_time_and_daily_series(api_as):
    scenario = build()
    live = api_as(scenario.viewer_of_both).get("/api/v1/projects/fraud/storage/").json()
    yesterday = timezone.now() - timedelta(days=1)
    storage_snapshot_take(now=yesterday)
    (taken,) = storage_snapshot_take(project=scenario.first)

    response = api_as(scenario.viewer_of_both).get("/api/v1/projects/fraud/storage/")

    assert_conforms(response, "GET", "/api/v1/projects/{slug}/storage/")
    body = response.json()
    assert (live["as_of"], live["stored_by_day"]) == (None, [])
    assert body["as_of"] == taken.taken_at.isoformat().replace("+00:00", "Z")
    assert {key: body[key] for key in ("versions", "blobs", "stored_bytes", "logical_bytes", "archived_bytes")} == {
        key: live[key] for key in ("versions", "blobs", "stored_bytes", "logical_bytes", "archived_bytes")
    }
    assert body["by_kind"] == live["by_kind"]
    # Yesterday's and today's first snapshots are the daily ones.
    assert [(day["day"], day["stored_bytes"], day["logical_bytes"]) for day in body["stored_by_day"]] == [
        (yesterday.astimezone(UTC).date().isoformat(), 1800, 2100),
        (taken.day.isoformat(), 1800, 2100),
    ]


def test_every_projects_storage_sums_their_snapshots(api_as):
    scenario = build()
    storage_snapshot_take()

    response = api_as(scenario.viewer_of_both).get("/api/v1/storage/")

    assert_conforms(response, "GET", "/api/v1/storage/")
    body = response.json()
    assert body["as_of"] is not None
    assert body["stored_bytes"] == 1800 + 1000
    assert [day["projects"] for day in body["stored_by_day"]] == [2]
