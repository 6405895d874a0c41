"""Publishing artifact and dataset versions: numbering, idempotency, immutability at every layer."""

import pytest
from django.db import IntegrityError, transaction

from artifacts.models import ArtifactVersion, Blob, DatasetVersion, Run
from core.errors import ImmutableRecord
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    BlobFactory,
    DatasetFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
    sha256,
)

pytestmark = pytest.mark.django_db


def upload(api, project, data: bytes) -> str:
    response = api.put(
        f"/api/v1/projects/{project.slug}/blobs/{sha256(data)}", data, content_type="application/octet-stream"
    )
    assert response.status_code in (200, 201), response.json()
    return sha256(data)


def publish(api, artifact, digest, **extra):
    return api.post("/api/v1/artifact-versions/", {"artifact": artifact.id, "digest": digest, **extra}, format="json")


def test_versions_are_numbered_in_publishing_order(api):
    artifact = ArtifactFactory()
    numbers = [
        publish(api, artifact, upload(api, artifact.project, f"v{i}".encode())).json()["number"] for i in range(3)
    ]
    assert numbers == [1, 2, 3]


def test_publishing_the_same_bytes_again_with_the_same_details_returns_the_existing_version(api):
    run = RunFactory()
    artifact = ArtifactFactory(project=run.project)
    digest = upload(api, artifact.project, b"weights")
    first = publish(api, artifact, digest, run=run.pk, metadata={"epoch": 1})
    again = publish(api, artifact, digest, run=run.pk, metadata={"epoch": 1})

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert ArtifactVersion.objects.count() == 1


def test_publishing_the_same_bytes_with_another_run_is_a_409_naming_the_existing_version(api):
    first_run = RunFactory(external_id="r1")
    second_run = RunFactory(project=first_run.project, external_id="r2")
    artifact = ArtifactFactory(project=first_run.project)
    digest = upload(api, artifact.project, b"weights")
    first = publish(api, artifact, digest, run=first_run.pk).json()

    conflict = publish(api, artifact, digest, run=second_run.pk)

    assert conflict.status_code == 409
    body = conflict.json()
    assert body["code"] == "already_published"
    assert f"version 1 (id {first['id']})" in body["detail"]
    assert f"run {first_run.pk} ('r1') there, run {second_run.pk} ('r2') here" in body["detail"]
    assert body["existing"] == first
    assert ArtifactVersion.objects.get().run == first_run


@pytest.mark.parametrize("change", [{"metadata": {"epoch": 2}}, {"media_type": "application/x-onnx"}, {"run": None}])
def test_publishing_the_same_bytes_with_other_details_is_a_409(api, change):
    run = RunFactory()
    artifact = ArtifactFactory(project=run.project)
    digest = upload(api, artifact.project, b"weights")
    publish(api, artifact, digest, run=run.pk, metadata={"epoch": 1})

    conflict = publish(api, artifact, digest, **{"run": run.pk, "metadata": {"epoch": 1}, **change})

    assert conflict.status_code == 409
    assert next(iter(change)) in conflict.json()["detail"]
    assert ArtifactVersion.objects.get().metadata == {"epoch": 1}


def test_recording_the_same_dataset_content_with_another_run_is_a_409_and_the_same_details_a_200(api):
    run = RunFactory()
    dataset = DatasetFactory(project=run.project)
    digest = upload(api, dataset.project, b"rows")
    payload = {"dataset": dataset.pk, "digest": digest, "row_count": 10}
    first = api.post("/api/v1/dataset-versions/", payload, format="json")
    again = api.post("/api/v1/dataset-versions/", payload, format="json")
    other = api.post("/api/v1/dataset-versions/", {**payload, "run": run.pk}, format="json")

    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json() == first.json()
    assert other.json()["existing"] == first.json()
    assert "no run there" in other.json()["detail"]
    assert DatasetVersion.objects.count() == 1


def test_published_version_carries_its_provenance(api):
    run = RunFactory()
    artifact = ArtifactFactory(project=run.project)
    digest = upload(api, artifact.project, b"model")
    body = publish(api, artifact, digest, run=run.id, media_type="application/x-safetensors",
                   metadata={"framework": "pytorch"}).json()  # fmt: skip

    assert body["run"] == run.id
    assert body["digest"] == digest
    assert body["size"] == 5
    assert body["media_type"] == "application/x-safetensors"
    assert body["created_by"] == api.user.username
    assert body["blob_state"] == "pending"
    assert body["project"] == artifact.project.slug


def test_bytes_of_another_project_cannot_be_published(api):
    artifact = ArtifactFactory()
    digest = upload(api, ProjectFactory(), b"someone else's file")
    response = publish(api, artifact, digest)
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_blob"
    assert f"PUT /api/v1/projects/{artifact.project.slug}/blobs/" in response.json()["detail"]


def test_run_of_another_project_is_refused(api):
    artifact = ArtifactFactory()
    response = publish(api, artifact, upload(api, artifact.project, b"x"), run=RunFactory().id)
    assert response.status_code == 400
    assert response.json()["field"] == "run"


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"artifact": 999999}, "artifact", "No artifact with id 999999."),
        ({"artifact": "abc"}, "artifact", "numeric id"),
        ({"digest": "sha256:123"}, "digest", "64 hexadecimal"),
        ({"run": 999999}, "run", "No run with id 999999."),
        ({"metadata": ["not", "an", "object"]}, "metadata", "JSON object"),
        ({"metadata": {"bad": "nul\x00byte"}}, "metadata", "NUL"),
        ({"number": 7}, "number", "Assigned by the server"),
        ({"blob": 3}, "blob", "Unknown field"),
        ({"media_type": "not a media type"}, None, "media type"),
    ],
)
def test_bad_version_input_is_a_400_that_names_the_problem(api, payload, field, message):
    artifact = ArtifactFactory()
    digest = upload(api, artifact.project, b"bytes")
    body = {"artifact": artifact.id, "digest": digest, **payload}
    response = api.post("/api/v1/artifact-versions/", body, format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    text = str(body[field]) if field and field in body else body.get("detail", str(body))
    assert message in text
    assert not ArtifactVersion.objects.exists()


def test_invalid_json_body_is_a_400(api):
    response = api.post("/api/v1/artifact-versions/", b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_versions_cannot_be_changed_or_deleted_through_the_api(api, method):
    version = ArtifactVersionFactory()
    response = getattr(api, method)(f"/api/v1/artifact-versions/{version.id}/", {"number": 9}, format="json")
    assert response.status_code == 405
    assert "immutable" in response.json()["detail"]


def test_model_refuses_to_save_or_delete_an_existing_version():
    version = ArtifactVersionFactory()
    version.number = 42
    with pytest.raises(ImmutableRecord):
        version.save()
    with pytest.raises(ImmutableRecord):
        version.delete()


@pytest.mark.parametrize(
    "change",
    [
        {"number": 99},
        {"run": None},
        {"media_type": "text/plain"},
    ],
)
def test_database_refuses_any_update_of_an_artifact_version(change):
    run = RunFactory()
    version = ArtifactVersionFactory(artifact=ArtifactFactory(project=run.project), run=run)
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        ArtifactVersion.objects.filter(pk=version.pk).update(**change)


def test_database_refuses_swapping_a_versions_blob():
    version = ArtifactVersionFactory()
    other = BlobFactory(project=version.artifact.project)
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        ArtifactVersion.objects.filter(pk=version.pk).update(blob=other)


def test_database_refuses_changing_a_dataset_version():
    version = DatasetVersionFactory()
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        DatasetVersion.objects.filter(pk=version.pk).update(row_count=5)


def test_database_refuses_changing_a_blobs_digest_or_size_but_lets_its_state_move():
    blob = BlobFactory()
    with pytest.raises(IntegrityError, match="never change"), transaction.atomic():
        Blob.objects.filter(pk=blob.pk).update(size=1)
    with pytest.raises(IntegrityError, match="never change"), transaction.atomic():
        Blob.objects.filter(pk=blob.pk).update(digest="0" * 64)
    Blob.objects.filter(pk=blob.pk).update(state=Blob.State.VERIFIED, verified_at="2026-11-01T00:00:00Z")


def test_database_refuses_rewriting_what_a_run_was_but_lets_it_progress():
    run = RunFactory()
    with pytest.raises(IntegrityError, match="fixed"), transaction.atomic():
        Run.objects.filter(pk=run.pk).update(code_commit="0" * 40)
    with pytest.raises(IntegrityError, match="fixed"), transaction.atomic():
        Run.objects.filter(pk=run.pk).update(parameters={"learning_rate": 10})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.COMPLETED)


def test_database_freezes_a_failed_runs_reason_and_never_deletes_a_run():
    """The run table was rebuilt to add failure_reason (migration 0002): its triggers must have come back."""
    run = RunFactory()
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FAILED, failure_reason="exit status 2")
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        Run.objects.filter(pk=run.pk).update(failure_reason="exit status 0")
    with pytest.raises(IntegrityError, match="never deleted"), transaction.atomic():
        Run.objects.filter(pk=run.pk).delete()


def test_database_refuses_a_failure_reason_on_a_run_that_did_not_fail():
    run = RunFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Run.objects.filter(pk=run.pk).update(failure_reason="too early")


# Dataset versions -------------------------------------------------------------------------------------


def test_dataset_version_from_an_uploaded_file(api):
    dataset = DatasetFactory()
    digest = upload(api, dataset.project, b"a,b\n1,2\n")
    response = api.post(
        "/api/v1/dataset-versions/",
        {"dataset": dataset.id, "digest": digest, "row_count": 1, "schema": {"columns": {"a": "int", "b": "int"}}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["number"], body["digest"], body["row_count"]) == (1, digest, 1)
    assert body["download_url"].endswith(f"/api/v1/projects/{dataset.project.slug}/blobs/{digest}")


def test_dataset_version_kept_elsewhere_is_pinned_by_its_manifest(api):
    dataset = DatasetFactory()
    manifest = sha256(b"manifest")
    payload = {"dataset": dataset.id, "uri": "s3://lake/transactions/2026-11/", "manifest_digest": manifest}
    first = api.post("/api/v1/dataset-versions/", payload, format="json")
    again = api.post("/api/v1/dataset-versions/", payload, format="json")

    assert first.status_code == 201, first.json()
    assert first.json()["manifest_digest"] == manifest
    assert first.json()["digest"] is None
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"uri": "s3://lake/x/"},
        {"manifest_digest": "sha256:" + "a" * 64},
        {"digest": "sha256:" + "a" * 64, "uri": "s3://lake/x/", "manifest_digest": "sha256:" + "b" * 64},
    ],
)
def test_dataset_version_needs_exactly_one_way_to_pin_its_content(api, payload):
    dataset = DatasetFactory()
    response = api.post("/api/v1/dataset-versions/", {"dataset": dataset.id, **payload}, format="json")
    assert response.status_code == 400
    assert "digest" in response.json()["detail"]
    assert not DatasetVersion.objects.exists()


def test_dataset_versions_cannot_be_changed_through_the_api(api):
    version = DatasetVersionFactory()
    response = api.patch(f"/api/v1/dataset-versions/{version.id}/", {"row_count": 3}, format="json")
    assert response.status_code == 405


@pytest.mark.parametrize("factory", [ArtifactVersionFactory, DatasetVersionFactory])
def test_database_refuses_deleting_a_version_so_its_identity_cannot_be_rewritten(factory):
    version = factory()
    with pytest.raises(IntegrityError, match="never deleted"), transaction.atomic():
        type(version).objects.filter(pk=version.pk).delete()
    assert type(version).objects.filter(pk=version.pk).exists()


def test_database_refuses_deleting_lineage_edges_and_runs():
    dataset_version = DatasetVersionFactory()
    run = RunFactory(project=dataset_version.dataset.project, input_dataset_versions=[dataset_version])
    with pytest.raises(IntegrityError, match="never deleted"), transaction.atomic():
        run.dataset_inputs.all().delete()
    with pytest.raises(IntegrityError, match="never deleted"), transaction.atomic():
        Run.objects.filter(pk=run.pk)._raw_delete(Run.objects.db)


def test_database_keeps_a_finished_run_frozen():
    run = RunFactory(status=Run.Status.COMPLETED)
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        Run.objects.filter(pk=run.pk).update(metrics={"accuracy": 0.99})
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
