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
from typing import Any

import httpx
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from artifacts.models import Blob
from artifacts.services.tiers import blob_archive
from core.models import AuditEntry
from tests.artifacts.factories import sha256
from tests.integration.conftest import S3Bucket
from tests.integration.test_artifact_store import content_address, created, model_artifact, project_with_blobs

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MiB = 1024 * 1024


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
