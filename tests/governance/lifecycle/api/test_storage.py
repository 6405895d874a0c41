"""The storage API (governance/lifecycle/api/storage.py): the accounting's figures as the schema documents them,
over the projects the caller may see and no other."""

import pytest
from django.utils import timezone

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
