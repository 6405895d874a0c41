"""Storage tiers against moto's S3 server over HTTP: archival moves the bytes to a colder class in the bucket (as the
bucket's own HeadObject answers, encryption kept), downloads of bytes in a class read at once work as before, and
bytes in GLACIER answer 409 until a restore, requested through the API, has made them readable again.

moto's server answers a GET of a GLACIER object 403 InvalidObjectState, as S3 does, and by default completes a
restore at once; the test that needs one still running switches its restores to "manual" through moto's state
manager, and back.
"""

import hashlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from artifacts.models import ArtifactVersion, Blob
from artifacts.selectors import artifact_version_downloadable
from artifacts.services.integrity import blob_verify
from artifacts.services.tiers import blob_archive
from core.models import AuditEntry
from tests.artifacts.factories import sha256
from tests.integration.conftest import S3Bucket
from tests.integration.test_artifact_store import content_address, created, model_artifact, project_with_blobs

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MiB = 1024 * 1024
# How long moto takes over each step of a restore while `slow_restores` holds (see there).
RESTORE_STEP_SECONDS = 4


@pytest.fixture(autouse=True)
def encrypted_writes(settings) -> None:
    """Every write the app makes carries SSE-S3, as PROVENANT_S3_SSE=AES256 would set it: a copy that forgot the
    encryption parameters would come back without them."""
    blobs = {**settings.STORAGES["blobs"], "OPTIONS": {**settings.STORAGES["blobs"]["OPTIONS"]}}
    blobs["OPTIONS"]["object_parameters"] = {"ServerSideEncryption": "AES256"}
    settings.STORAGES = {**settings.STORAGES, "blobs": blobs}


def published(api: APIClient, data: bytes, slug: str) -> dict[str, Any]:
    """An artifact version of `data` in a new project `slug`, as the API answers it."""
    project_with_blobs(api, data, slug=slug)
    artifact = model_artifact(api, slug)
    return created(api, "/api/v1/artifact-versions/", {"artifact": artifact["id"], "digest": sha256(data)})


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def blob_of(data: bytes) -> Blob:
    return Blob.objects.get(digest=hashlib.sha256(data).hexdigest())


def head(bucket: S3Bucket, data: bytes) -> dict[str, Any]:
    return bucket.client.head_object(Bucket=bucket.name, Key=content_address(sha256(data)))


def test_archival_to_glacier_ir_moves_the_bytes_and_keeps_every_download_working(api, s3_bucket):
    # Over boto3's 8 MiB threshold: the class changes through a multipart copy, as objects past 5 GB must.
    data = os.urandom(9 * MiB + 123)
    version = published(api, data, "tiers-ir")
    assert "StorageClass" not in head(s3_bucket, data)

    assert blob_archive(blob_id=blob_of(data).pk, storage_class="GLACIER_IR") is True

    stored = head(s3_bucket, data)
    assert stored["StorageClass"] == "GLACIER_IR"
    assert stored["ServerSideEncryption"] == "AES256"
    assert stored["ContentLength"] == len(data)
    blob = blob_of(data)
    assert blob.storage_class == "GLACIER_IR"
    assert blob.archived_at is not None
    entry = AuditEntry.objects.get(action="blob.archived")
    assert json.loads(entry.changes)["storage_class"] == ["", "GLACIER_IR"]

    whole = api.get(version["download_url"])
    assert whole.status_code == 200
    assert body(whole) == data
    part = api.get(version["download_url"], HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206
    assert body(part) == data[100:200]
    redirect = api.get(version["download_url"], {"redirect": "true"})
    assert redirect.status_code == 302
    assert httpx.get(redirect["Location"]).content == data
    shown = api.get(version["url"]).json()
    assert shown["storage_class"] == "GLACIER_IR"
    assert shown["archived_at"] is not None


def test_archival_is_idempotent(api, s3_bucket):
    data = os.urandom(4096)
    published(api, data, "tiers-again")
    blob = blob_of(data)

    assert blob_archive(blob_id=blob.pk) is True
    assert blob_archive(blob_id=blob.pk) is False

    assert head(s3_bucket, data)["StorageClass"] == settings.PROVENANT_ARCHIVE_STORAGE_CLASS
    assert AuditEntry.objects.filter(action="blob.archived").count() == 1


def test_archival_to_glacier_makes_downloads_answer_409_restore_first_naming_the_endpoint(api, s3_bucket):
    data = os.urandom(4096)
    version = published(api, data, "tiers-glacier")

    assert blob_archive(blob_id=blob_of(data).pk, storage_class="GLACIER") is True

    assert head(s3_bucket, data)["StorageClass"] == "GLACIER"
    assert head(s3_bucket, data)["ServerSideEncryption"] == "AES256"
    restore_url = f"{version['url']}restore/"
    project_blob = f"/api/v1/projects/tiers-glacier/blobs/{sha256(data)}"
    for response in (
        api.get(version["download_url"]),
        api.get(version["download_url"], HTTP_RANGE="bytes=0-9"),
        api.get(version["download_url"], {"redirect": "true"}),
        api.head(version["download_url"]),
    ):
        assert response.status_code == 409, response.content
    refused = api.get(version["download_url"]).json()
    assert refused["code"] == "restore_required"
    assert refused["storage_class"] == "GLACIER"
    assert refused["restore_in_progress"] is False
    assert refused["restore_url"] == restore_url
    assert f"Restore first: POST {restore_url}" in refused["detail"]
    by_digest = api.get(project_blob).json()
    assert by_digest["restore_url"] == f"http://testserver{project_blob}/restore/"
    # The portal's version page offers no download link meanwhile.
    assert not artifact_version_downloadable(ArtifactVersion.objects.get(pk=version["id"]))
    # The refusal handed out no bytes, so the log says none were read.
    assert not AuditEntry.objects.filter(action__in=["blob.downloaded", "blob.presigned_url_issued"]).exists()


def test_a_restore_asked_through_the_api_makes_the_archived_bytes_download_again(api, s3_bucket):
    data = os.urandom(4096)
    version = published(api, data, "tiers-restore")
    blob_archive(blob_id=blob_of(data).pk, storage_class="GLACIER")

    # moto restores at once by default: the answer already says so.
    restored = api.post(f"{version['url']}restore/", {"days": 2}, format="json")

    assert restored.status_code == 200, restored.content
    assert restored.json()["readable"] is True
    assert restored.json()["restore_required"] is True
    assert restored.json()["restored_until"] is not None
    assert 'ongoing-request="false"' in head(s3_bucket, data)["Restore"]
    assert blob_of(data).restore_requested_at is not None
    entry = AuditEntry.objects.get(action="blob.restore_requested")
    assert entry.actor_user_id == api.user.pk
    assert json.loads(entry.changes)["days"] == 2
    download = api.get(version["download_url"])
    assert download.status_code == 200
    assert body(download) == data
    assert artifact_version_downloadable(ArtifactVersion.objects.get(pk=version["id"]))
    redirect = api.get(version["download_url"], {"redirect": "true"})
    assert httpx.get(redirect["Location"]).content == data
    # Readable now: asking again restores nothing and records nothing.
    assert api.post(f"{version['url']}restore/").status_code == 200
    assert AuditEntry.objects.filter(action="blob.restore_requested").count() == 1


@pytest.fixture
def slow_restores(s3_bucket) -> Iterator[None]:
    """moto's restores take RESTORE_STEP_SECONDS to start and as long again to finish, instead of none: its state
    manager moves a key's restore one step (none, in progress, restored) at the first read after each period."""
    moto_api = f"{settings.STORAGES['blobs']['OPTIONS']['endpoint_url']}/moto-api/state-manager"
    transition = {"progression": "time", "seconds": RESTORE_STEP_SECONDS}
    httpx.post(f"{moto_api}/set-transition", json={"model_name": "s3::keyrestore", "transition": transition})
    try:
        yield
    finally:
        httpx.post(f"{moto_api}/unset-transition", json={"model_name": "s3::keyrestore"})


def test_while_a_restore_runs_downloads_say_so_and_asking_again_records_nothing(api, s3_bucket, slow_restores):
    data = os.urandom(4096)
    version = published(api, data, "tiers-slow")
    blob_archive(blob_id=blob_of(data).pk, storage_class="DEEP_ARCHIVE")
    time.sleep(RESTORE_STEP_SECONDS + 0.5)  # moto counts the first step from the archived copy's creation

    asked = api.post(f"{version['url']}restore/")
    again = api.post(f"{version['url']}restore/")

    assert asked.status_code == again.status_code == 202, asked.content
    assert asked.json()["restore_in_progress"] is True
    assert asked.json()["readable"] is False
    assert AuditEntry.objects.filter(action="blob.restore_requested").count() == 1
    refused = api.get(version["download_url"])
    assert refused.status_code == 409
    assert refused.json()["restore_in_progress"] is True
    assert "A restore is already in progress" in refused.json()["detail"]

    time.sleep(RESTORE_STEP_SECONDS + 0.5)
    download = api.get(version["download_url"])
    assert download.status_code == 200
    assert body(download) == data


def test_bytes_archived_behind_the_records_back_answer_409_not_a_server_error(api, s3_bucket):
    data = os.urandom(4096)
    version = published(api, data, "tiers-behind")
    key = content_address(sha256(data))
    # A bucket lifecycle rule, or a hand on the bucket: the record still says the bucket's default class.
    s3_bucket.client.copy_object(
        Bucket=s3_bucket.name, Key=key, CopySource={"Bucket": s3_bucket.name, "Key": key}, StorageClass="GLACIER"
    )

    refused = api.get(version["download_url"])

    assert refused.status_code == 409
    assert refused.json()["code"] == "restore_required"


def test_verification_skips_bytes_that_cannot_be_read_without_a_restore(api, s3_bucket, wait_for_blob_state):
    data = os.urandom(4096)
    published(api, data, "tiers-verify")
    proved = wait_for_blob_state(sha256(data), Blob.State.VERIFIED)
    blob_archive(blob_id=proved.pk, storage_class="GLACIER")

    after = blob_verify(blob=blob_of(data))

    assert after.state == Blob.State.VERIFIED
    assert after.verified_at == proved.verified_at
    assert AuditEntry.objects.filter(action="blob.verified").count() == 1
