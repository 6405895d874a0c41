"""What the API answers about deleted versions and collected bytes: the version stays readable with its tombstone
(`deleted`), its download answers 410 Gone with the reason on every path, lineage shows it as deleted, and bytes
the garbage collector removed are 404 by digest (so clients upload them again) and 409 `blob_collected` when
published without being uploaded again."""

import os

import pytest

from artifacts.lineage_graph import GraphNode, render_svg
from artifacts.services.lifecycle import blob_collect, version_delete
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetVersionFactory,
    RunFactory,
    UserFactory,
    sha256,
)
from tests.schema_contract import assert_conforms

pytestmark = pytest.mark.django_db

DOWNLOAD = "/api/v1/artifact-versions/{id}/download/"
BLOB = "/api/v1/projects/{slug}/blobs/{digest}"


def deleted(version, **tombstone):
    return version_delete(
        version=version,
        deleted_by=tombstone.get("deleted_by"),
        reason=tombstone.get("reason", "Older than 90 days and never promoted."),
        rule=tombstone.get("rule", "age-90d"),
        plan_id=tombstone.get("plan_id", 12),
    )


def test_download_of_deleted_version_answers_410_with_reason_who_when_and_rule(api):
    version = ArtifactVersionFactory()
    deleted(version)

    response = api.get(DOWNLOAD.format(id=version.pk))

    assert response.status_code == 410
    body = response.json()
    assert body["code"] == "version_deleted"
    assert "Older than 90 days and never promoted." in body["detail"]
    assert "retention schedule" in body["detail"]
    assert body["deleted"]["rule"] == "age-90d"
    assert body["deleted"]["plan_id"] == 12
    assert body["deleted"]["deleted_by"] is None
    assert_conforms(response, "GET", DOWNLOAD)


@pytest.mark.parametrize(
    ("method", "query"),
    [("head", ""), ("get", "redirect=true"), ("get", "")],
)
def test_every_download_path_of_a_deleted_version_answers_410_even_before_collection(api, settings, method, query):
    settings.PROVENANT_ACCEL_REDIRECT = "/_provenant_blobs/"
    version = ArtifactVersionFactory()
    deleted(version, deleted_by=UserFactory(username="ops"))

    response = getattr(api, method)(DOWNLOAD.format(id=version.pk), QUERY_STRING=query)

    assert response.status_code == 410
    assert "X-Accel-Redirect" not in response
    assert "Location" not in response


def test_a_deleted_version_stays_readable_with_its_tombstone(api):
    version = ArtifactVersionFactory()
    live = ArtifactVersionFactory(artifact=version.artifact)
    deleted(version, deleted_by=api.user, reason="Leaked credentials in the metadata.")

    response = api.get(f"/api/v1/artifact-versions/{version.pk}/")
    listed = api.get("/api/v1/artifact-versions/", {"artifact": version.artifact_id}).json()["results"]

    assert response.status_code == 200
    body = response.json()
    assert body["digest"] == version.blob.prefixed_digest
    assert body["deleted"]["reason"] == "Leaked credentials in the metadata."
    assert body["deleted"]["deleted_by"] == api.user.username
    assert {row["id"]: row["deleted"] is None for row in listed} == {version.pk: False, live.pk: True}
    assert_conforms(response, "GET", "/api/v1/artifact-versions/{id}/")


def test_a_deleted_dataset_version_shows_its_tombstone(api):
    version = DatasetVersionFactory()
    deleted(version)

    response = api.get(f"/api/v1/dataset-versions/{version.pk}/")

    assert response.json()["deleted"]["rule"] == "age-90d"
    assert_conforms(response, "GET", "/api/v1/dataset-versions/{id}/")


def test_lineage_shows_a_deleted_version_as_deleted_not_missing(api):
    run = RunFactory()
    model = ArtifactVersionFactory(artifact=ArtifactFactory(project=run.project), run=run)
    data = DatasetVersionFactory(dataset__project=run.project)
    consumer = RunFactory(project=run.project, input_dataset_versions=[data], input_artifact_versions=[model])
    deleted(model)
    blob_collect(blob_id=model.blob_id)

    body = api.get(f"/api/v1/lineage/run/{consumer.pk}/?direction=upstream").json()

    nodes = {node["key"]: node for node in body["nodes"]}
    assert nodes[f"artifact_version:{model.pk}"]["deleted"]["rule"] == "age-90d"
    assert nodes[f"dataset_version:{data.pk}"]["deleted"] is None
    assert f"run:{run.pk}" in nodes  # the graph goes on through the deleted version
    assert body["hidden_nodes"] == 0


def test_the_lineage_picture_draws_a_deleted_version_dashed_and_says_so():
    svg = render_svg(
        [GraphNode(key="artifact_version:1", kind="artifact_version", label="model", deleted=True)],
        [],
        title="t",
        description="d",
    )

    assert 'class="node artifact_version deleted"' in svg
    assert "stroke-dasharray" in svg
    assert "model (deleted)" in svg


def test_collected_bytes_answer_404_by_digest_so_the_client_uploads_them_again(api):
    version = ArtifactVersionFactory(artifact=ArtifactFactory(project__slug="churn"))
    api.user.is_superuser = True
    api.user.save()
    deleted(version)
    blob_collect(blob_id=version.blob_id)
    url = BLOB.format(slug="churn", digest=version.blob.prefixed_digest)

    head = api.head(url)
    get = api.get(url)
    state = api.get(f"{url}/state/")

    assert head.status_code == 404
    assert (get.status_code, get.json()["code"]) == (404, "blob_collected")
    assert state.json()["collected_at"] is not None
    assert_conforms(state, "GET", "/api/v1/projects/{slug}/blobs/{digest}/state/")


def test_publishing_a_collected_digest_answers_409_blob_collected_and_again_after_upload_201(api):
    content = os.urandom(300)
    version = ArtifactVersionFactory(content=content)
    api.user.is_superuser = True
    api.user.save()
    deleted(version)
    blob_collect(blob_id=version.blob_id)
    other = ArtifactFactory(project=version.artifact.project)

    refused = api.post("/api/v1/artifact-versions/", {"artifact": other.pk, "digest": sha256(content)}, format="json")
    uploaded = api.put(
        BLOB.format(slug=other.project.slug, digest=sha256(content)), content, content_type="application/octet-stream"
    )
    published = api.post("/api/v1/artifact-versions/", {"artifact": other.pk, "digest": sha256(content)}, format="json")

    assert (refused.status_code, refused.json()["code"]) == (409, "blob_collected")
    assert "Upload the file again" in refused.json()["detail"]
    assert uploaded.status_code == 201
    assert published.status_code == 201
    assert_conforms(refused, "POST", "/api/v1/artifact-versions/")


def test_publishing_the_bytes_of_a_deleted_version_to_its_artifact_names_the_deleted_version(api):
    content = os.urandom(300)
    version = ArtifactVersionFactory(content=content)
    api.user.is_superuser = True
    api.user.save()
    deleted(version, reason="Trained on withdrawn data.")

    response = api.post(
        "/api/v1/artifact-versions/", {"artifact": version.artifact_id, "digest": sha256(content)}, format="json"
    )

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "version_deleted"
    assert "Trained on withdrawn data." in body["detail"]
    assert body["existing"]["id"] == version.pk
    assert body["existing"]["deleted"]["reason"] == "Trained on withdrawn data."
    assert_conforms(response, "POST", "/api/v1/artifact-versions/")
