"""Input no client should send still gets a 4xx that explains itself, never a 500."""

import pytest

from tests.factories import ArtifactFactory, DatasetFactory, ProjectFactory

pytestmark = pytest.mark.django_db

TOO_BIG = "99999999999999999999999"  # more than a 64-bit id can hold


@pytest.mark.parametrize(
    ("url", "status"),
    [
        (f"/api/v1/artifacts/{TOO_BIG}/", 404),
        (f"/api/v1/artifact-versions/{TOO_BIG}/", 404),
        (f"/api/v1/artifact-versions/{TOO_BIG}/download/", 404),
        (f"/api/v1/lineage/run/{TOO_BIG}/", 404),
        (f"/api/v1/artifact-versions/?run={TOO_BIG}", 400),
        (f"/api/v1/artifact-versions/?artifact={TOO_BIG}", 400),
        (f"/api/v1/artifact-versions/?dataset_version={TOO_BIG}", 400),
        (f"/api/v1/runs/?dataset_version={TOO_BIG}", 400),
        ("/api/v1/runs/?dataset_version=1e400", 400),
        ("/api/v1/artifact-versions/?cursor=not-a-cursor", 404),
        ("/api/v1/artifact-versions/?metadata=a:1e999", 400),
        ("/api/v1/artifact-versions/?metadata=a:NaN", 200),  # the text "NaN", which nothing has
        ("/api/v1/artifact-versions/?metadata=regex:[", 200),  # a key named "regex", not a lookup
        ("/api/v1/artifact-versions/?metadata=a.range:1", 200),
        ("/api/v1/artifact-versions/?metadata=contained_by:1", 200),
        ("/api/v1/runs/?parameter=contains:1", 200),
        ("/api/v1/runs/?parameter=a:99999999999999999999999999", 200),
        ("/api/v1/projects/%00/", 404),
        ("/api/v1/projects/x/blobs/sha256:%00", 404),
        ("/api/v1/datasets/?project=%00", 400),
    ],
)
def test_hostile_urls_get_the_answer_they_deserve(api, url, status):
    assert api.get(url).status_code == status


@pytest.mark.parametrize(
    "reference",
    [f'"artifact": {TOO_BIG}', '"artifact": 1e400', '"artifact": 1.9', '"artifact": ARTIFACT, "run": 1e400'],
)
def test_references_that_are_not_ids_are_a_400(api, reference):
    artifact = ArtifactFactory()
    digest = "sha256:" + "a" * 64
    body = f'{{"digest": "{digest}", {reference.replace("ARTIFACT", str(artifact.id))}}}'
    response = api.post("/api/v1/artifact-versions/", body, content_type="application/json")
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


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/artifacts/", {"name": "m", "kind": "model", "restricted": 0}, "restricted"),
        ("/api/v1/artifacts/", {"name": "m", "kind": "model", "description": 7}, "description"),
        ("/api/v1/runs/", {"external_id": 42}, "external_id"),
        ("/api/v1/runs/", {"external_id": "r", "input_dataset_versions": ["1"]}, "input_dataset_versions"),
        ("/api/v1/projects/{slug}/uploads/", {"digest": "sha256:" + "a" * 64, "direct": "false"}, "direct"),
        ("/api/v1/projects/{slug}/uploads/", {"digest": "sha256:" + "a" * 64, "size": "10"}, "size"),
    ],
)
def test_a_json_value_of_another_type_than_the_schema_says_is_a_400(api, url, body, field):
    """DRF reads 0 as false, 7 as "7" and "10" as 10; the schema promises a boolean, a string, an integer, so a
    client generated from it, or a fuzzer checking it, may rely on the server refusing anything else."""
    project = ProjectFactory()
    body = {"project": project.slug, **body} if "{slug}" not in url else body
    response = api.post(url.format(slug=project.slug), body, format="json")
    assert response.status_code == 400, response.content
    assert "Expected" in str(response.json()[field])


def test_a_form_still_sends_its_values_as_text(api):
    project = ProjectFactory()
    response = api.post(
        "/api/v1/artifacts/", {"project": project.slug, "name": "m", "kind": "model", "restricted": "false"}
    )
    assert response.status_code == 201, response.content
