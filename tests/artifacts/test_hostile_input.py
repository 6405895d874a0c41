"""Input no client should send still gets a 4xx that explains itself, never a 500."""

import pytest

from tests.factories import ArtifactFactory, DatasetFactory, ProjectFactory

pytestmark = pytest.mark.django_db

TOO_BIG = "99999999999999999999999"  # more than a 64-bit id can hold


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/artifacts/{TOO_BIG}/",
        f"/api/v1/artifact-versions/{TOO_BIG}/",
        f"/api/v1/artifact-versions/{TOO_BIG}/download/",
        f"/api/v1/lineage/run/{TOO_BIG}/",
        f"/api/v1/artifact-versions/?run={TOO_BIG}",
        f"/api/v1/artifact-versions/?artifact={TOO_BIG}",
        f"/api/v1/artifact-versions/?dataset_version={TOO_BIG}",
        f"/api/v1/runs/?dataset_version={TOO_BIG}",
        "/api/v1/runs/?dataset_version=1e400",
        "/api/v1/artifact-versions/?cursor=not-a-cursor",
        "/api/v1/artifact-versions/?page_size=-1",
        "/api/v1/artifact-versions/?metadata=a:%00",
        "/api/v1/artifact-versions/?metadata=a:1e999",
        "/api/v1/runs/?parameter=a:99999999999999999999999999",
        "/api/v1/projects/%00/",
        "/api/v1/projects/x/blobs/sha256:%00",
        "/api/v1/datasets/?project=%00",
    ],
)
def test_hostile_urls_are_answered_without_a_server_error(api, url):
    assert api.get(url).status_code < 500


@pytest.mark.parametrize(
    "payload",
    [
        {"artifact": int(TOO_BIG), "digest": "sha256:" + "a" * 64},
        {"digest": "sha256:" + "a" * 64, "run": int(TOO_BIG)},
    ],
)
def test_oversized_references_are_a_400(api, payload):
    artifact = ArtifactFactory()
    response = api.post("/api/v1/artifact-versions/", {"artifact": artifact.id, **payload}, format="json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "extra",
    [
        {"input_dataset_versions": [int(TOO_BIG)]},
        {"name": "x" * 10_000},
        {"started_at": "10000-01-01T00:00:00Z"},
    ],
)
def test_oversized_run_fields_are_a_400(api, extra):
    payload = {"project": ProjectFactory().slug, "external_id": "r1", **extra}
    assert api.post("/api/v1/runs/", payload, format="json").status_code == 400


def test_huge_numbers_inside_json_documents_are_kept(api):
    payload = {"project": ProjectFactory().slug, "external_id": "r1", "parameters": {"seed": 10**40}}
    response = api.post("/api/v1/runs/", payload, format="json")
    assert response.status_code == 201
    assert response.json()["parameters"] == {"seed": 10**40}


def test_row_count_beyond_64_bits_is_a_400(api):
    payload = {
        "dataset": DatasetFactory().id,
        "uri": "s3://lake/x/",
        "manifest_digest": "sha256:" + "a" * 64,
        "row_count": 10**30,
    }
    assert api.post("/api/v1/dataset-versions/", payload, format="json").status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        '{"project": "%s", "external_id": "r", "metrics": {"a": 1e999}}',
        '{"project": "%s", "external_id": "r", "parameters": {"a": 1e999}}',
        '{"project": "%s", "external_id": "r", "parameters": {"a": NaN}}',
        "[1, 2]",
        '"a string"',
        "null",
        '{"project": {"a": 1}}',
        '{"project": ["x"], "external_id": 5}',
    ],
)
def test_json_that_is_not_a_run_is_a_400(api, body):
    project = ProjectFactory()
    response = api.post("/api/v1/runs/", body.replace("%s", project.slug), content_type="application/json")
    assert response.status_code == 400
