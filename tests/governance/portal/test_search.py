"""Portal search: every kind of record by name, digest, commit, metric and metadata, only what the user may see."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from artifacts.access.roles import Role
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
    UserFactory,
    grant,
)
from tests.governance.factories import RegisteredModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def mine():
    project = ProjectFactory(slug="fraud-detection", name="Fraud detection")
    run = RunFactory(project=project, name="train-lightgbm", metrics={"recall_at_1pct": 0.71})
    version = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project, name="fraud-scorer"),
        run=run,
        metadata={"framework": "LightGBM", "tags": ["card-present"], "nested": {"owner": "Team Kestrel"}},
    )
    return {
        "project": project,
        "run": run,
        "version": version,
        "dataset": DatasetVersionFactory(dataset=DatasetFactory(project=project, name="card-transactions")),
        "model": RegisteredModelFactory(project=project, name="fraud-detector"),
        "user": grant(Role.VIEWER, on=project).user,
    }


@pytest.fixture
def theirs():
    """A project the searching user has no role on, with records that match the same words."""
    project = ProjectFactory(slug="fraud-elsewhere", name="Fraud elsewhere")
    run = RunFactory(project=project, name="train-lightgbm-secret", metrics={"recall_at_1pct": 0.5})
    version = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project, name="fraud-secret"), run=run, metadata={"framework": "LightGBM"}
    )
    RegisteredModelFactory(project=project, name="fraud-hidden")
    return {"project": project, "run": run, "version": version}


def search(client, user, q: str) -> str:
    client.force_login(user)
    response = client.get("/search/", {"q": q})
    assert response.status_code == 200
    return response.content.decode()


def test_search_needs_sign_in(client):
    response = client.get("/search/", {"q": "fraud"})

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_names_find_projects_models_artifacts_runs_and_datasets(client, mine, theirs):
    html = search(client, mine["user"], "fraud")

    assert 'href="/projects/fraud-detection/"' in html
    assert f'href="/models/{mine["model"].pk}/"' in html
    assert f'href="/versions/{mine["version"].pk}/"' in html  # the artifact leads to its newest version
    assert "fraud-elsewhere" not in html
    assert "fraud-hidden" not in html
    assert "fraud-secret" not in html

    assert "train-lightgbm" in search(client, mine["user"], "lightgbm")
    assert "/api/" not in html
    assert f'href="/datasets/{mine["dataset"].dataset.pk}/"' in search(client, mine["user"], "card-trans")


def test_a_digest_prefix_finds_artifact_and_dataset_versions(client, mine, theirs):
    digest = mine["version"].blob.digest

    html = search(client, mine["user"], f"sha256:{digest[:8]}")
    assert f'href="/versions/{mine["version"].pk}/"' in html

    html = search(client, mine["user"], digest[:10].upper())
    assert f'href="/versions/{mine["version"].pk}/"' in html

    dataset_digest = mine["dataset"].blob.digest
    html = search(client, mine["user"], dataset_digest[:12])
    assert f'href="/datasets/versions/{mine["dataset"].pk}/"' in html

    other = theirs["version"].blob.digest
    assert f'href="/versions/{theirs["version"].pk}/"' not in search(client, mine["user"], other[:12])


def test_a_commit_prefix_finds_the_run(client, mine, theirs):
    html = search(client, mine["user"], mine["run"].code_commit[:8])

    assert f'href="/runs/{mine["run"].pk}/"' in html
    assert f'href="/versions/{mine["version"].pk}/"' in html  # what the run produced
    assert f'href="/runs/{theirs["run"].pk}/"' not in search(client, mine["user"], theirs["run"].code_commit[:8])


def test_a_metric_name_finds_the_runs_that_recorded_it(client, mine, theirs):
    html = search(client, mine["user"], "recall_at_1pct")

    assert f'href="/runs/{mine["run"].pk}/"' in html
    assert f'href="/runs/{theirs["run"].pk}/"' not in html


@pytest.mark.parametrize("q", ["Kestrel", "card-present", "lightgbm", "framework"])
def test_metadata_keys_and_values_find_artifact_versions(client, mine, theirs, q):
    html = search(client, mine["user"], q)

    assert f'href="/versions/{mine["version"].pk}/"' in html
    assert f'href="/versions/{theirs["version"].pk}/"' not in html


def test_json_punctuation_in_the_metadata_text_is_not_a_match(client, mine):
    html = search(client, mine["user"], '": "')

    assert f'href="/versions/{mine["version"].pk}/"' not in html


def test_a_project_viewer_does_not_find_restricted_artifacts(client, mine):
    secret = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=mine["project"], name="fraud-restricted", restricted=True)
    )

    link = f'href="/versions/{secret.pk}/"'
    assert link not in search(client, mine["user"], "fraud-restricted")

    cleared = grant(Role.VIEWER, on=secret.artifact).user
    assert link in search(client, cleared, "fraud-restricted")


def test_too_short_a_query_gets_a_hint_and_no_results(client, mine):
    html = search(client, mine["user"], "f")

    assert "Type at least 2 characters" in html
    assert "fraud-detection" not in html


def test_nothing_found_says_so(client, mine):
    assert "Nothing you may see matches" in search(client, mine["user"], "no-such-thing")


def test_a_user_without_roles_finds_nothing(client, mine):
    assert "Nothing you may see matches" in search(client, UserFactory(), "fraud")


def test_results_are_bounded_per_kind(client):
    project = ProjectFactory()
    for n in range(22):
        DatasetFactory(project=project, name=f"ledger-{n}")
    html = search(client, grant(Role.VIEWER, on=project).user, "ledger")

    assert html.count('href="/datasets/') == 20
    assert "20+ (the first 20)" in html


def test_query_count_does_not_grow_with_the_results(client):
    def queries(count: int) -> int:
        project = ProjectFactory()
        for _ in range(count):
            run = RunFactory(project=project, name=f"wombat-run-{project.pk}", metrics={"wombat": 1.0})
            ArtifactVersionFactory(
                artifact=ArtifactFactory(project=project, name=f"wombat-{project.pk}-{run.pk}"),
                run=run,
                metadata={"animal": "wombat"},
            )
            DatasetFactory(project=project, name=f"wombat-data-{run.pk}")
            RegisteredModelFactory(project=project, name=f"wombat-model-{run.pk}")
        client.force_login(grant(Role.VIEWER, on=project).user)
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/search/", {"q": "wombat"})
        assert response.status_code == 200
        assert response.content.decode().count("wombat-run") == count
        return len(captured)

    assert queries(1) == queries(10)
