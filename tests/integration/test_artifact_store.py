"""The artifact store against real services: PostgreSQL, Redis, a Celery worker process and an S3 server
reached over HTTP (see conftest.py). Each test proves what the unit suite, with SQLite, eager tasks and a
local folder, cannot: that the same flows hold when every piece is the one production runs.

A test whose data the worker must read commits it (`django_db(transaction=True)`); the rest roll back as usual.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import IntegrityError, connections, transaction
from rest_framework.test import APIClient

from artifacts.models import ArtifactVersion, Blob
from artifacts.tasks import verify_blob
from tests.artifacts.factories import ArtifactVersionFactory, sha256
from tests.governance.factories import token_for

pytestmark = pytest.mark.integration


def content_address(digest: str) -> str:
    """The bucket key the bytes must be at, spelled out here rather than taken from the code under test."""
    h = digest.removeprefix("sha256:")
    return f"sha256/{h[:2]}/{h[2:4]}/{h}"


def created(api: APIClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(url, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def upload(api: APIClient, project: str, data: bytes, *, digest: str | None = None):
    return api.put(
        f"/api/v1/projects/{project}/blobs/{digest or sha256(data)}", data, content_type="application/octet-stream"
    )


def project_with_blobs(api: APIClient, *contents: bytes, slug: str = "churn") -> str:
    created(api, "/api/v1/projects/", {"slug": slug, "name": slug.title()})
    for data in contents:
        response = upload(api, slug, data)
        assert response.status_code == 201, response.content
    return slug


def model_artifact(api: APIClient, project: str, name: str = "churn-model") -> dict[str, Any]:
    return created(api, "/api/v1/artifacts/", {"project": project, "name": name, "kind": "model"})


@pytest.mark.django_db(transaction=True)
def test_upload_lands_in_the_bucket_at_its_content_address_and_the_worker_verifies_it(
    api, s3_bucket, wait_for_blob_state
):
    data = os.urandom(4096)
    project_with_blobs(api, data)

    assert content_address(sha256(data)) in s3_bucket.object_keys()
    assert s3_bucket.read(content_address(sha256(data))) == data
    blob = wait_for_blob_state(sha256(data), Blob.State.VERIFIED)
    assert blob.size == len(data)
    assert blob.verified_at is not None


@pytest.mark.django_db
def test_published_version_downloads_its_bytes_and_publishing_them_again_returns_it_or_says_it_differs(api):
    # Larger than one read chunk, so the download streams several from S3.
    data = os.urandom(2 * 1024 * 1024 + 123)
    project = project_with_blobs(api, data)
    artifact = model_artifact(api, project)

    version = created(api, "/api/v1/artifact-versions/", {"artifact": artifact["id"], "digest": sha256(data)})
    download = api.get(version["download_url"])
    again = api.post("/api/v1/artifact-versions/", {"artifact": artifact["id"], "digest": sha256(data)}, format="json")
    differently = api.post(
        "/api/v1/artifact-versions/",
        {"artifact": artifact["id"], "digest": sha256(data), "metadata": {"note": "second attempt"}},
        format="json",
    )

    assert download.status_code == 200
    assert b"".join(download.streaming_content) == data
    assert again.status_code == 200, again.content
    assert (again.json()["id"], again.json()["number"]) == (version["id"], 1)
    assert differently.status_code == 409, differently.content
    assert differently.json()["existing"]["id"] == version["id"]
    assert ArtifactVersion.objects.filter(artifact_id=artifact["id"]).count() == 1


@pytest.mark.django_db
def test_lineage_walks_upstream_from_a_model_to_its_run_and_training_data(api):
    training_data, model = os.urandom(1024), os.urandom(1024)
    project = project_with_blobs(api, training_data, model)
    dataset = created(api, "/api/v1/datasets/", {"project": project, "name": "transactions"})
    snapshot = created(api, "/api/v1/dataset-versions/", {"dataset": dataset["id"], "digest": sha256(training_data)})
    run = created(
        api,
        "/api/v1/runs/",
        {
            "project": project,
            "external_id": "train-1",
            "status": "completed",
            "input_dataset_versions": [snapshot["id"]],
        },
    )
    version = created(
        api,
        "/api/v1/artifact-versions/",
        {"artifact": model_artifact(api, project)["id"], "digest": sha256(model), "run": run["id"]},
    )

    response = api.get(f"/api/v1/lineage/artifact-version/{version['id']}/", {"direction": "upstream"})

    assert response.status_code == 200, response.content
    lineage = response.json()
    assert lineage["root"]["key"] == f"artifact_version:{version['id']}"
    assert {(node["key"], node["direction"], node["depth"]) for node in lineage["nodes"]} == {
        (f"run:{run['id']}", "upstream", 1),
        (f"dataset_version:{snapshot['id']}", "upstream", 2),
    }
    assert {(edge["source"], edge["target"]) for edge in lineage["edges"]} == {
        (f"dataset_version:{snapshot['id']}", f"run:{run['id']}"),
        (f"run:{run['id']}", f"artifact_version:{version['id']}"),
    }


@pytest.mark.django_db
def test_upload_whose_bytes_do_not_match_the_stated_digest_stores_nothing(api, s3_bucket):
    project = project_with_blobs(api)
    data, stated = os.urandom(2048), sha256(b"the file the client meant to send")
    keys_before = s3_bucket.object_keys()

    response = upload(api, project, data, digest=stated)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "digest_mismatch"
    assert s3_bucket.object_keys() == keys_before
    assert not Blob.objects.filter(digest__in=[stated[7:], sha256(data)[7:]]).exists()


@pytest.mark.django_db(transaction=True)
def test_bytes_corrupted_in_the_bucket_are_quarantined_until_the_original_is_uploaded_again(
    api, s3_bucket, wait_for_blob_state
):
    data = os.urandom(4096)
    project = project_with_blobs(api, data)
    version = created(
        api, "/api/v1/artifact-versions/", {"artifact": model_artifact(api, project)["id"], "digest": sha256(data)}
    )
    blob = wait_for_blob_state(sha256(data), Blob.State.VERIFIED)

    s3_bucket.write(content_address(sha256(data)), b"bit rot" + data[7:])
    verify_blob.delay(blob.pk)
    wait_for_blob_state(sha256(data), Blob.State.CORRUPT)
    quarantined = api.get(version["download_url"])

    assert quarantined.status_code == 409, quarantined.content
    assert quarantined.json()["code"] == "blob_corrupt"

    repair = upload(api, project, data)
    assert repair.status_code == 200, repair.content
    wait_for_blob_state(sha256(data), Blob.State.VERIFIED)
    assert s3_bucket.read(content_address(sha256(data))) == data
    assert b"".join(api.get(version["download_url"]).streaming_content) == data


@pytest.mark.django_db
def test_database_refuses_a_raw_update_of_a_published_version():
    version = ArtifactVersionFactory()

    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        ArtifactVersion.objects.filter(pk=version.pk).update(number=99)

    assert ArtifactVersion.objects.get(pk=version.pk).number == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_publishers_of_one_artifact_get_numbers_without_gaps_or_duplicates(api):
    publishers = 8
    contents = [os.urandom(1024) for _ in range(publishers)]
    artifact = model_artifact(api, project_with_blobs(api, *contents))
    authorization = f"Bearer {token_for(api.user)}"
    start = threading.Barrier(publishers)

    def publish(data: bytes) -> tuple[int, int | None]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=authorization)
        try:
            # Released together, the publishers race for the artifact's row lock and the next number.
            start.wait(timeout=10)
            response = client.post(
                "/api/v1/artifact-versions/", {"artifact": artifact["id"], "digest": sha256(data)}, format="json"
            )
            return response.status_code, response.json().get("number")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=publishers) as pool:
        results = list(pool.map(publish, contents))

    assert [status for status, _ in results] == [201] * publishers
    assert sorted(number for _, number in results) == list(range(1, publishers + 1))
    stored = ArtifactVersion.objects.filter(artifact_id=artifact["id"]).order_by("number")
    assert list(stored.values_list("number", flat=True)) == list(range(1, publishers + 1))
