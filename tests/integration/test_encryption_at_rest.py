"""Encryption at rest in S3: with PROVENANT_S3_SSE (and a KMS key), every object the app writes carries that
server-side encryption, whichever way its bytes arrived, and encrypted blobs still download.

A granian server and a Celery worker are started with the encryption in their environment alone, as production
processes are configured, on the test database and moto's S3 server (see conftest.py). The session's worker stops
taking tasks meanwhile, so the copy that ends a direct upload is made by the worker configured here. What is
stored is read back with the test's own boto3 client: the `ServerSideEncryption` and `SSEKMSKeyId` that S3
answers for the object, not what the app believes it asked for.

moto's server speaks KMS on the same endpoint, so the key is a real KMS key there; moto does not check that an
object's key exists, nor encrypt the bytes it keeps, which only AWS (or a server with KMS) would show.
"""

import hashlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from django.conf import settings
from django.test import override_settings

from artifacts.access.roles import Role
from artifacts.models import UploadSession
from config.celery import app as celery_app
from config.settings.storages import s3_encryption_parameters
from core.audit.recorder import AuditObject, audit_record, tree_head_sign
from core.models import SignedTreeHead
from governance.audit.tasks import sign_audit_tree_head
from tests import live_server
from tests.artifacts.factories import ProjectFactory, grant
from tests.governance.factories import token_for
from tests.integration.conftest import CeleryWorker, S3Bucket, _test_database_url

CLIENT_SOURCE = live_server.ROOT / "clients" / "python" / "src"
if str(CLIENT_SOURCE) not in sys.path:
    sys.path.insert(0, str(CLIENT_SOURCE))

from provenant_client import Client  # noqa: E402 (the checkout's client, put on the path above)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MiB = 1024 * 1024
WAIT_SECONDS = 60


@dataclass(frozen=True)
class Encryption:
    """One way of encrypting at rest, as the environment names it, and what S3 must then answer for an object."""

    sse: str
    kms_key_id: str = ""

    @property
    def env(self) -> dict[str, str]:
        return {"PROVENANT_S3_SSE": self.sse, "PROVENANT_S3_SSE_KMS_KEY_ID": self.kms_key_id}

    def assert_on(self, bucket: S3Bucket, key: str) -> None:
        head = bucket.client.head_object(Bucket=bucket.name, Key=key)
        assert head.get("ServerSideEncryption") == self.sse, f"{key} is not stored with {self.sse}"
        if self.kms_key_id:
            assert head.get("SSEKMSKeyId") == self.kms_key_id, f"{key} is not encrypted with the configured key"


@dataclass(frozen=True)
class EncryptedStack:
    encryption: Encryption
    url: str
    worker: CeleryWorker


@pytest.fixture(scope="module", params=["AES256", "aws:kms"])
def encryption(request, s3_bucket) -> Encryption:
    """SSE-S3, or SSE-KMS with a key made for it in moto's KMS (named by its ARN, which S3 answers with)."""
    if request.param == "AES256":
        return Encryption("AES256")
    options = settings.STORAGES["blobs"]["OPTIONS"]
    kms = boto3.client("kms", endpoint_url=options["endpoint_url"], region_name=options["region_name"])
    key = kms.create_key(Description="provenant-it blobs")["KeyMetadata"]
    return Encryption("aws:kms", key["Arn"])


@pytest.fixture(scope="module")
def stack(encryption, celery_worker, django_db_setup, tmp_path_factory) -> Iterator[EncryptedStack]:
    """granian and a Celery worker with `encryption` in their environment. The session's worker stops consuming
    the `default` queue meanwhile (Celery's remote control), so every task goes to this one, and resumes after."""
    logs = tmp_path_factory.mktemp("encryption")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _test_database_url(),
        "PROVENANT_VAR_DIR": str(settings.VAR_DIR),
        **encryption.env,
    }
    paused = celery_app.control.cancel_consumer("default", destination=[celery_worker.hostname], reply=True)
    try:
        assert paused, f"The session's worker did not answer. Its log ends:\n{celery_worker.log_tail()}"
        worker = CeleryWorker(
            "Celery worker with encryption", queue="default", log_path=logs / "worker.log", env=encryption.env
        )
        try:
            worker.wait_until_ready()
            with live_server.process_on_a_free_port(live_server.GRANIAN, env, log_path=logs / "granian.log") as port:
                yield EncryptedStack(encryption, f"http://127.0.0.1:{port}", worker)
            worker.wait_until_idle()
        finally:
            worker.stop()
    finally:
        celery_app.control.add_consumer("default", destination=[celery_worker.hostname], reply=True)


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def token(project) -> str:
    return token_for(grant(Role.CONTRIBUTOR, on=project).user)


def client_of(stack: EncryptedStack, token: str, cache: Path, **options) -> Client:
    return Client(stack.url, token, cache_dir=cache, backoff=0.05, verification_timeout=WAIT_SECONDS, **options)


@pytest.fixture
def client(stack, token, tmp_path) -> Iterator[Client]:
    with client_of(stack, token, tmp_path / "cache") as client:
        yield client


def content_address(digest: str) -> str:
    hex_digest = digest.removeprefix("sha256:")
    return f"sha256/{hex_digest[:2]}/{hex_digest[2:4]}/{hex_digest}"


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def upload_modes(project) -> list[str]:
    """How each upload session of `project` stored its bytes (its storage sink)."""
    return [session.storage_state["sink"] for session in UploadSession.objects.filter(project=project)]


def test_a_blob_sent_in_one_request_is_stored_encrypted(stack, client, project, s3_bucket, tmp_path):
    source = random_file(tmp_path / "small.bin", 3 * MiB + 5)

    stored = client.upload(source, project=project.slug)

    assert upload_modes(project) == [], "one PUT, no upload session"
    stack.encryption.assert_on(s3_bucket, content_address(stored.digest))


def test_a_blob_sent_in_chunks_through_the_api_is_stored_encrypted(stack, token, project, s3_bucket, tmp_path):
    source = random_file(tmp_path / "chunked.bin", 13 * MiB + 7)
    options = {"upload_session_threshold": 0, "chunk_size": 6 * MiB, "direct_uploads": False}

    with client_of(stack, token, tmp_path / "cache", **options) as client:
        stored = client.upload(source, project=project.slug)

    assert upload_modes(project) == ["s3"]
    stack.encryption.assert_on(s3_bucket, content_address(stored.digest))


def test_a_blob_sent_straight_to_the_bucket_is_stored_encrypted(stack, client, project, s3_bucket, tmp_path):
    """The client sends the parts with presigned URLs and no encryption header: S3 encrypts them as the upload was
    created; the worker's copy to the content address is a new object, encrypted again as configured."""
    source = random_file(tmp_path / "direct.bin", 9 * MiB + 3)
    client.upload_session_threshold = 0
    parts: list[tuple[str | None, str | None]] = []
    client.uploads.bucket_http.event_hooks["response"].append(
        lambda response: parts.append(
            (
                response.request.headers.get("x-amz-server-side-encryption"),
                response.headers.get("x-amz-server-side-encryption"),
            )
        )
    )

    stored = client.upload(source, project=project.slug)

    assert upload_modes(project) == ["s3-direct"]
    assert parts == [(None, stack.encryption.sse)] * 2, "two parts sent without a header, each stored encrypted"
    stack.encryption.assert_on(s3_bucket, content_address(stored.digest))
    assert not [key for key in s3_bucket.object_keys() if key.startswith("uploads/")], "the staging object is gone"


def test_a_signed_tree_heads_copy_is_stored_encrypted(stack, s3_bucket):
    audit_record("project.updated", obj=AuditObject(type="writer", id="1", label="writer 1"))
    before = set(SignedTreeHead.objects.values_list("pk", flat=True))

    sign_audit_tree_head.delay()

    deadline = time.monotonic() + WAIT_SECONDS
    while not (heads := SignedTreeHead.objects.exclude(pk__in=before)):
        stack.worker.assert_running()
        assert time.monotonic() < deadline, f"No tree head was signed. The worker's log:\n{stack.worker.log_tail()}"
        time.sleep(0.1)
    stack.encryption.assert_on(s3_bucket, heads.get().storage_name)


def test_a_tree_head_copy_written_by_this_process_is_encrypted_as_its_storage_says(encryption, s3_bucket):
    """The same write in the test process, configured the way settings configure it from the environment."""
    storages = {**settings.STORAGES, "blobs": {**settings.STORAGES["blobs"]}}
    options = storages["blobs"]["OPTIONS"] = {**storages["blobs"]["OPTIONS"]}
    options["object_parameters"] = s3_encryption_parameters(
        encryption.sse, encryption.kms_key_id, bucket=options["bucket_name"]
    )
    audit_record("project.updated", obj=AuditObject(type="writer", id="2", label="writer 2"))

    with override_settings(STORAGES=storages):
        head = tree_head_sign()

    encryption.assert_on(s3_bucket, head.storage_name)


def test_an_encrypted_blob_downloads_through_the_server_and_from_a_presigned_url(
    stack, client, project, token, s3_bucket, tmp_path
):
    data = random_file(tmp_path / "model.bin", 2 * MiB + 11).read_bytes()
    digest = client.upload(tmp_path / "model.bin", project=project.slug).digest
    stack.encryption.assert_on(s3_bucket, content_address(digest))
    url = f"{stack.url}/api/v1/projects/{project.slug}/blobs/{digest}"
    headers = {"Authorization": f"Bearer {token}"}

    proxied = httpx.get(url, headers=headers, timeout=30)
    redirect = httpx.get(url, params={"redirect": "true"}, headers=headers, timeout=30)

    assert proxied.status_code == 200
    assert hashlib.sha256(proxied.content).hexdigest() == digest.removeprefix("sha256:")
    assert redirect.status_code == 302, redirect.text
    location = redirect.headers["Location"]
    if stack.encryption.sse == "aws:kms":
        # S3 serves an SSE-KMS object only to a request signed with SigV4, presigned ones included.
        assert parse_qs(urlsplit(location).query)["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    from_bucket = httpx.get(location, timeout=30)
    assert from_bucket.status_code == 200
    assert from_bucket.content == data
    assert from_bucket.headers["x-amz-server-side-encryption"] == stack.encryption.sse
