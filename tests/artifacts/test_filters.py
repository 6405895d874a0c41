"""Finding versions and runs by project, kind, run, dataset version, commit, digest and metadata."""

import pytest

from artifacts.models import Artifact
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    fraud, churn = ProjectFactory(slug="fraud"), ProjectFactory(slug="churn")
    data = DatasetVersionFactory(dataset__project=fraud)
    run = RunFactory(
        project=fraud, code_commit="abcdef1234567890abcdef1234567890abcdef12", input_dataset_versions=[data]
    )
    model = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=fraud, kind=Artifact.Kind.MODEL),
        run=run,
        metadata={"framework": "pytorch", "epochs": 10, "train": {"device": "cpu"}},
    )
    report = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=fraud, kind=Artifact.Kind.EVALUATION_REPORT), metadata={"framework": "none"}
    )
    other = ArtifactVersionFactory(artifact=ArtifactFactory(project=churn), metadata={"epochs": "10"})
    return locals()


def ids(api, query: str) -> set[int]:
    response = api.get(f"/api/v1/artifact-versions/?{query}")
    assert response.status_code == 200, response.json()
    return {v["id"] for v in response.json()["results"]}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("project=fraud", {"model", "report"}),
        ("project=churn", {"other"}),
        ("kind=evaluation_report", {"report"}),
        ("commit=abcdef1", {"model"}),
        ("commit=ABCDEF1234567890ABCDEF1234567890ABCDEF12", {"model"}),
        ("metadata=framework:pytorch", {"model"}),
        ("metadata=epochs:10", {"model"}),
        ('metadata=epochs:"10"', {"other"}),
        ("metadata=contains:1", set()),
        ("metadata=isnull:true", set()),
        ("metadata=train.device:cpu", {"model"}),
        ("state=pending", {"model", "report", "other"}),
        ("state=verified", set()),
    ],
)
def test_artifact_version_filters(api, world, query, expected):
    assert ids(api, query) == {world[name].id for name in expected}


def test_filter_by_run_dataset_version_and_digest(api, world):
    assert ids(api, f"run={world['run'].id}") == {world["model"].id}
    assert ids(api, f"dataset_version={world['data'].id}") == {world["model"].id}
    assert ids(api, f"digest={world['report'].blob.prefixed_digest}") == {world["report"].id}


@pytest.mark.parametrize(
    "query", ["metadata=no-colon", "metadata=bad key:1", "digest=sha256:zz", "commit=xyz", "state=shiny", "kind=x"]
)
def test_malformed_filters_are_a_400(api, world, query):
    response = api.get(f"/api/v1/artifact-versions/?{query}")
    assert response.status_code == 400
    assert response.json()


def test_run_filters(api, world):
    response = api.get(f"/api/v1/runs/?dataset_version={world['data'].id}&commit=abcdef1&parameter=epochs:20")
    assert [r["id"] for r in response.json()["results"]] == [world["run"].id]


def test_dataset_version_filter_by_project_and_digest(api, world):
    digest = world["data"].blob.prefixed_digest
    response = api.get(f"/api/v1/dataset-versions/?project=fraud&digest={digest}")
    assert [v["id"] for v in response.json()["results"]] == [world["data"].id]
