"""Projects, datasets and artifacts: creation, duplicate and unsafe names, what may change afterwards."""

import pytest
from django.db import IntegrityError, transaction

from artifacts.models import Artifact, Dataset, Project
from tests.artifacts.factories import ArtifactFactory, DatasetFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

UNSAFE_NAMES = ["../x", "/", "a/b", "x\x00y", "a" * 129, "", " leading-space", "..", ".hidden", "a..b", "tab\tname"]


def test_project_is_created_and_listed(api):
    response = api.post(
        "/api/v1/projects/", {"slug": "churn", "name": "Churn", "description": "Who leaves"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["url"].endswith("/api/v1/projects/churn/")
    listed = api.get("/api/v1/projects/").json()["results"]
    assert [p["slug"] for p in listed] == ["churn"]


@pytest.mark.parametrize("slug", ["Churn", "churn_model", "-churn", "churn-", "../x", "a" * 65, "", "a/b", "x\x00"])
def test_project_slug_must_be_url_safe(api, slug):
    response = api.post("/api/v1/projects/", {"slug": slug, "name": "X"}, format="json")
    assert response.status_code == 400, response.json()
    assert not Project.objects.exists()


def test_duplicate_project_slug_is_a_409(api):
    ProjectFactory(slug="churn")
    response = api.post("/api/v1/projects/", {"slug": "churn", "name": "Again"}, format="json")
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_project_name_and_description_can_change_but_not_its_slug(api):
    ProjectFactory(slug="churn")
    renamed = api.patch("/api/v1/projects/churn/", {"name": "Customer churn"}, format="json")
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Customer churn"
    moved = api.patch("/api/v1/projects/churn/", {"slug": "other"}, format="json")
    assert moved.status_code == 400
    assert Project.objects.filter(slug="churn").exists()


def test_projects_are_never_deleted_through_the_api(api):
    ProjectFactory(slug="churn")
    response = api.delete("/api/v1/projects/churn/")
    assert response.status_code == 405
    assert "keeps every project" in response.json()["detail"]


def test_the_database_refuses_deleting_a_project_that_events_and_the_audit_log_name_by_id():
    project = ProjectFactory(slug="churn")
    with pytest.raises(IntegrityError, match="never deleted"), transaction.atomic():
        Project.objects.filter(pk=project.pk).delete()
    assert Project.objects.filter(slug="churn").exists()


@pytest.mark.parametrize("resource", ["datasets", "artifacts"])
@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_unsafe_names_are_refused(api, resource, name):
    project = ProjectFactory()
    response = api.post(f"/api/v1/{resource}/", {"project": project.slug, "name": name, "kind": "model"}, format="json")
    assert response.status_code == 400, response.json()
    assert not Dataset.objects.exists()
    assert not Artifact.objects.exists()


@pytest.mark.parametrize("name", ["resnet50", "bert-base.v2", "A_1", "x" * 128])
def test_safe_names_are_accepted(api, name):
    response = api.post(
        "/api/v1/artifacts/", {"project": ProjectFactory().slug, "name": name, "kind": "checkpoint"}, format="json"
    )
    assert response.status_code == 201, response.json()


def test_duplicate_names_in_one_project_are_a_409_but_fine_across_projects(api):
    existing = DatasetFactory(name="transactions")
    same = api.post("/api/v1/datasets/", {"project": existing.project.slug, "name": "transactions"}, format="json")
    other = api.post("/api/v1/datasets/", {"project": ProjectFactory().slug, "name": "transactions"}, format="json")
    assert same.status_code == 409
    assert other.status_code == 201


def test_unknown_project_reference_is_a_400_that_says_where_to_look(api):
    response = api.post("/api/v1/artifacts/", {"project": "nope", "name": "m", "kind": "model"}, format="json")
    assert response.status_code == 400
    assert response.json()["project"] == ["No project 'nope'. List projects at /api/v1/projects/."]


def test_unknown_artifact_kind_is_refused(api):
    response = api.post(
        "/api/v1/artifacts/", {"project": ProjectFactory().slug, "name": "m", "kind": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "kind" in response.json()


def test_only_the_description_of_an_artifact_can_change(api):
    artifact = ArtifactFactory(name="m")
    updated = api.patch(f"/api/v1/artifacts/{artifact.id}/", {"description": "Fraud scorer"}, format="json")
    renamed = api.patch(f"/api/v1/artifacts/{artifact.id}/", {"name": "other"}, format="json")
    assert updated.status_code == 200
    assert updated.json()["description"] == "Fraud scorer"
    assert renamed.status_code == 400
    artifact.refresh_from_db()
    assert artifact.name == "m"


def test_artifact_lists_its_version_count_and_latest(api):
    from tests.artifacts.factories import ArtifactVersionFactory

    artifact = ArtifactFactory()
    ArtifactVersionFactory(artifact=artifact)
    ArtifactVersionFactory(artifact=artifact)
    body = api.get(f"/api/v1/artifacts/{artifact.id}/").json()
    assert (body["version_count"], body["latest_version"]) == (2, 2)


def test_missing_object_is_a_404_that_names_what_was_looked_for(api):
    cases = {
        "/api/v1/artifacts/999999/": "No artifact with id 999999.",
        "/api/v1/artifact-versions/5/": "No artifact version with id 5.",
        "/api/v1/artifact-versions/five/": "No artifact version with id five.",
        "/api/v1/projects/nope/": "No project 'nope'.",
        "/api/v1/projects/nope/members/": "No project 'nope'.",
        f"/api/v1/projects/nope/blobs/sha256:{'a' * 64}": "No project 'nope'.",
        "/api/v1/projects/nope/uploads/": "No project 'nope'.",
    }
    for url, detail in cases.items():
        response = api.get(url)
        assert (response.status_code, response.json()["detail"]) == (404, detail), url


def test_a_project_one_cannot_see_answers_the_same_404_as_one_that_does_not_exist(api_as):
    hidden = ProjectFactory(slug="hidden")
    outsider = api_as(UserFactory())
    not_found = {"code": "not_found"}
    assert outsider.get(f"/api/v1/projects/{hidden.slug}/").json() == {"detail": "No project 'hidden'.", **not_found}
    assert outsider.get("/api/v1/projects/absent/").json() == {"detail": "No project 'absent'.", **not_found}
