"""The portal's run page: what ran, what it read and what it made, each a link to its portal page; only for those
who may see the run, and only what they may see of its inputs and outputs."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from artifacts.access.roles import Role
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
    UserFactory,
    grant,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def training():
    """dataset v1 and a preprocessor → train run → model v1 and a derived dataset v1; a restricted output too."""
    project = ProjectFactory(slug="fraud-detection")
    dataset_version = DatasetVersionFactory(dataset__project=project, dataset__name="card-transactions")
    preprocessor = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, name="scaler"))
    run = RunFactory(
        project=project,
        name="train-gbm",
        parameters={"max_depth": 7},
        metrics={"auc": 0.912},
        environment={"python_version": "3.12.1"},
        input_dataset_versions=[dataset_version],
        input_artifact_versions=[preprocessor],
    )
    model = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, name="fraud-model"), run=run)
    features = DatasetVersionFactory(dataset__project=project, dataset__name="features", run=run)
    secret = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, name="secret", restricted=True), run=run)
    return locals()


def run_page(client, run):
    return client.get(f"/runs/{run.pk}/")


def test_a_viewer_sees_what_ran_and_links_to_its_inputs_and_outputs(client, training):
    t = training
    client.force_login(grant(Role.VIEWER, on=t["project"]).user)

    response = run_page(client, t["run"])

    assert response.status_code == 200
    html = response.content.decode()
    assert "train-gbm" in html
    assert t["run"].code_commit in html
    for recorded in ("max_depth", "0.912", "3.12.1"):  # a parameter, a metric, the environment
        assert recorded in html
    assert 'href="/projects/fraud-detection/"' in html
    assert f'href="/datasets/versions/{t["dataset_version"].pk}/"' in html
    assert f'href="/versions/{t["preprocessor"].pk}/"' in html
    assert f'href="/versions/{t["model"].pk}/"' in html
    assert f'href="/datasets/versions/{t["features"].pk}/"' in html
    assert "secret" not in html  # a restricted artifact's version the viewer may not see
    assert "/api/" not in html


def test_anonymous_visitors_are_sent_to_sign_in(client, training):
    response = run_page(client, training["run"])

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_a_user_without_a_role_gets_the_portals_404(client, training):
    client.force_login(UserFactory())

    response = run_page(client, training["run"])

    assert response.status_code == 404
    assert "train-gbm" not in response.content.decode()
    assert client.get("/runs/999999/").status_code == 404


def test_a_grant_on_one_artifact_does_not_open_its_projects_runs(client, training):
    """The API's rule: a run is a project's record, read with a role on the project."""
    client.force_login(grant(Role.VIEWER, on=training["model"].artifact).user)

    assert run_page(client, training["run"]).status_code == 404


def test_query_count_does_not_grow_with_inputs_and_outputs(client):
    def queries(count: int) -> int:
        project = ProjectFactory()
        inputs = [DatasetVersionFactory(dataset__project=project) for _ in range(count)]
        run = RunFactory(project=project, input_dataset_versions=inputs)
        for _ in range(count):
            ArtifactVersionFactory(artifact=ArtifactFactory(project=project), run=run)
        client.force_login(grant(Role.VIEWER, on=project).user)
        with CaptureQueriesContext(connection) as captured:
            assert run_page(client, run).status_code == 200
        return len(captured)

    assert queries(1) == queries(6)
