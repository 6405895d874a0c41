"""The portal's project page: the project's models, datasets, artifacts and runs, as far as the user may see them,
each a link to its page, and a link to the project's lifecycle page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from artifacts.access.roles import Role
from governance.portal.selectors import PROJECT_PAGE_ROWS
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetFactory,
    ProjectFactory,
    RunFactory,
    UserFactory,
    grant,
)
from tests.governance.factories import RegisteredModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fraud():
    project = ProjectFactory(slug="fraud-detection", name="Fraud detection", description="Card fraud scoring.")
    model_version = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, name="fraud-model"))
    secret = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, name="secret-model", restricted=True))
    return {
        "project": project,
        "model_version": model_version,
        "secret": secret,
        "dataset": DatasetFactory(project=project, name="card-transactions"),
        "run": RunFactory(project=project, name="train-gbm"),
        "registered": RegisteredModelFactory(project=project, name="fraud-detector"),
    }


def project_page(client):
    return client.get("/projects/fraud-detection/")


def test_a_viewer_sees_what_the_project_holds_with_links(client, fraud):
    client.force_login(grant(Role.VIEWER, on=fraud["project"]).user)

    response = project_page(client)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Fraud detection" in html
    assert "Card fraud scoring." in html
    assert 'href="/projects/fraud-detection/lifecycle/"' in html
    assert f'href="/models/{fraud["registered"].pk}/"' in html
    assert f'href="/datasets/{fraud["dataset"].pk}/"' in html
    assert f'href="/versions/{fraud["model_version"].pk}/"' in html
    assert f'href="/runs/{fraud["run"].pk}/"' in html
    assert "secret-model" not in html
    assert "/api/" not in html


def test_a_grant_on_one_artifact_shows_the_project_with_that_artifact_alone(client, fraud):
    client.force_login(grant(Role.VIEWER, on=fraud["secret"].artifact).user)

    response = project_page(client)

    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="/versions/{fraud["secret"].pk}/"' in html
    assert "fraud-model" not in html
    assert "card-transactions" not in html
    assert "train-gbm" not in html


def test_a_user_without_a_role_gets_the_portals_404(client, fraud):
    client.force_login(UserFactory())

    assert project_page(client).status_code == 404
    assert client.get("/projects/no-such-project/").status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client, fraud):
    assert project_page(client).status_code == 302


def test_long_lists_are_cut_and_say_so(client, fraud):
    for n in range(PROJECT_PAGE_ROWS + 1):
        RunFactory(project=fraud["project"], name=f"sweep-{n}")
    client.force_login(grant(Role.VIEWER, on=fraud["project"]).user)

    html = project_page(client).content.decode()

    assert html.count('href="/runs/') == PROJECT_PAGE_ROWS
    assert f"The {PROJECT_PAGE_ROWS} newest" in html


def test_query_count_does_not_grow_with_the_records(client):
    def queries(count: int) -> int:
        project = ProjectFactory()
        for _ in range(count):
            ArtifactVersionFactory(artifact=ArtifactFactory(project=project))
            DatasetFactory(project=project)
            RunFactory(project=project)
            RegisteredModelFactory(project=project)
        client.force_login(grant(Role.VIEWER, on=project).user)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/projects/{project.slug}/").status_code == 200
        return len(captured)

    assert queries(1) == queries(5)
