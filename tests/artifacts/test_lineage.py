"""Lineage: what data and code made a file, and what was made from it, to any depth, in one walk."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from artifacts import selectors, services
from artifacts.access.roles import Role
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
    grant,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline():
    """dataset v1 → prep run → preprocessor v1 → train run (also reads dataset v2) → model v1 → eval run → report v1"""
    project = ProjectFactory()
    ds1 = DatasetVersionFactory(dataset__project=project)
    ds2 = DatasetVersionFactory(dataset=ds1.dataset)
    prep = RunFactory(project=project, input_dataset_versions=[ds1])
    preprocessor = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, kind="preprocessor"), run=prep)
    train = RunFactory(project=project, input_dataset_versions=[ds2], input_artifact_versions=[preprocessor])
    model = ArtifactVersionFactory(artifact=ArtifactFactory(project=project), run=train)
    evaluation = RunFactory(project=project, input_artifact_versions=[model])
    report = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, kind="evaluation_report"), run=evaluation)
    return locals()


def keys(body, direction=None):
    return {(n["type"], n["id"], n["depth"]) for n in body["nodes"] if direction in (None, n["direction"])}


def test_upstream_of_a_model_answers_what_data_and_code_made_it(api, pipeline):
    p = pipeline
    body = api.get(f"/api/v1/lineage/artifact-version/{p['model'].id}/?direction=upstream").json()

    assert body["root"]["key"] == f"artifact_version:{p['model'].id}"
    assert keys(body) == {
        ("run", p["train"].id, 1),
        ("dataset_version", p["ds2"].id, 2),
        ("artifact_version", p["preprocessor"].id, 2),
        ("run", p["prep"].id, 3),
        ("dataset_version", p["ds1"].id, 4),
    }
    assert {"source": f"run:{p['train'].id}", "target": f"artifact_version:{p['model'].id}"} in body["edges"]
    assert {"source": f"dataset_version:{p['ds1'].id}", "target": f"run:{p['prep'].id}"} in body["edges"]
    train = next(n for n in body["nodes"] if n["type"] == "run")
    assert train["code_commit"] == p["train"].code_commit


def test_downstream_of_a_dataset_version_reaches_everything_built_on_it(api, pipeline):
    p = pipeline
    body = api.get(f"/api/v1/lineage/dataset-version/{p['ds1'].id}/?direction=downstream").json()
    assert {(t, i) for t, i, _ in keys(body)} == {
        ("run", p["prep"].id),
        ("artifact_version", p["preprocessor"].id),
        ("run", p["train"].id),
        ("artifact_version", p["model"].id),
        ("run", p["evaluation"].id),
        ("artifact_version", p["report"].id),
    }


def test_both_directions_from_a_run(api, pipeline):
    p = pipeline
    body = api.get(f"/api/v1/lineage/run/{p['train'].id}/").json()
    assert {(t, i) for t, i, _ in keys(body, "upstream")} == {
        ("dataset_version", p["ds2"].id),
        ("artifact_version", p["preprocessor"].id),
        ("run", p["prep"].id),
        ("dataset_version", p["ds1"].id),
    }
    assert {(t, i) for t, i, _ in keys(body, "downstream")} == {
        ("artifact_version", p["model"].id),
        ("run", p["evaluation"].id),
        ("artifact_version", p["report"].id),
    }


def test_depth_limits_the_walk(api, pipeline):
    body = api.get(f"/api/v1/lineage/artifact-version/{pipeline['model'].id}/?direction=upstream&depth=2").json()
    assert max(n["depth"] for n in body["nodes"]) == 2
    assert len(body["nodes"]) == 3


def test_diamonds_list_each_node_once_with_its_shortest_depth(api):
    project = ProjectFactory()
    ds = DatasetVersionFactory(dataset__project=project)
    left = RunFactory(project=project, input_dataset_versions=[ds])
    right = RunFactory(project=project, input_dataset_versions=[ds])
    a = ArtifactVersionFactory(artifact__project=project, run=left)
    b = ArtifactVersionFactory(artifact__project=project, run=right)
    merge = RunFactory(project=project, input_artifact_versions=[a, b], input_dataset_versions=[ds])

    body = api.get(f"/api/v1/lineage/run/{merge.id}/?direction=upstream").json()
    assert sorted((n["type"], n["id"], n["depth"]) for n in body["nodes"]) == sorted(
        [("artifact_version", a.id, 1), ("artifact_version", b.id, 1), ("dataset_version", ds.id, 1),
         ("run", left.id, 2), ("run", right.id, 2)]
    )  # fmt: skip
    assert len(body["edges"]) == 7  # merge←a, merge←b, merge←ds, a←left, b←right, left←ds, right←ds


def test_the_walk_is_one_query_whatever_the_depth(pipeline):
    """One recursive query plus one per node type for labels, for a chain of any length, permission filter
    included."""
    project = pipeline["project"]
    viewer = grant(Role.VIEWER, on=project).user
    previous = pipeline["report"]
    for _ in range(10):
        run = RunFactory(project=project, input_artifact_versions=[previous])
        previous = ArtifactVersionFactory(artifact__project=project, run=run)

    with CaptureQueriesContext(connection) as queries:
        graph = selectors.lineage_graph(
            node_type="artifact_version", node_id=previous.id, direction="upstream", max_depth=1000, user=viewer
        )
    assert len(graph.nodes) == 27
    recursive = [q for q in queries.captured_queries if "WITH RECURSIVE" in q["sql"]]
    assert len(recursive) == 1
    assert len(queries) <= 5


def test_unknown_nodes_and_bad_parameters_are_explained(api):
    assert api.get("/api/v1/lineage/artifact-version/999999/").status_code == 404
    wrong_type = api.get("/api/v1/lineage/blob/1/")
    assert wrong_type.status_code == 404
    assert "dataset-version" in wrong_type.json()["detail"]
    version = ArtifactVersionFactory()
    assert api.get(f"/api/v1/lineage/artifact-version/{version.id}/?direction=sideways").status_code == 400
    assert api.get(f"/api/v1/lineage/artifact-version/{version.id}/?depth=0").status_code == 400


def test_a_dataset_produced_by_a_run_is_downstream_of_it(api, user):
    project = ProjectFactory()
    run = RunFactory(project=project)
    derived, _ = services.dataset_version_create(
        dataset=DatasetVersionFactory(dataset__project=project).dataset,
        created_by=user,
        uri="s3://lake/features/",
        manifest_digest="ab" * 32,
        run=run,
    )
    body = api.get(f"/api/v1/lineage/run/{run.id}/?direction=downstream").json()
    assert [(n["type"], n["id"]) for n in body["nodes"]] == [("dataset_version", derived.id)]


def test_unrelated_query_parameters_are_ignored(api, pipeline):
    response = api.get(f"/api/v1/lineage/run/{pipeline['train'].id}/?format=json&direction=upstream")
    assert response.status_code == 200
