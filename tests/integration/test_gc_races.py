"""The garbage collector raced against every way bytes come back, on PostgreSQL and a real S3 server: a publish
that skipped its upload after HEAD said the bytes were held, an upload session, a direct-to-S3 upload and a plain
PUT. Whatever the interleaving, the end is the bytes in the bucket with the version or blob live, or the upload
refused with `blob_collected`; never a version whose blob is collected or whose object is missing.

Luck does not pick the interleavings here: each racer runs in its own thread and database connection and stops
at a named point (`Pause`) inside its transaction, after it took the blob's row lock, or after it wrote or deleted
the object. The other racer is then started, and the test waits until PostgreSQL shows it blocked on that lock
(pg_stat_activity) before letting the first go on. Both orders are forced for each path.

The collections that deletions queue are not sent to the worker in these tests (`no_queued_collection`): each
test runs the collector itself, at the moment it forces.
"""

import hashlib
import http.client
import io
import os
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from artifacts.models import ArtifactVersion, Blob, DatasetVersion, UploadSession
from artifacts.services import catalog as catalog_services
from artifacts.services import lifecycle as lifecycle_services
from artifacts.services import uploads as upload_services
from artifacts.services.blobs import BlobCollected
from artifacts.services.lifecycle import blob_collect, version_delete
from artifacts.services.uploads import (
    upload_session_append,
    upload_session_finish,
    upload_session_seal,
    upload_session_start,
    upload_session_verify_direct,
)
from artifacts.storage import blob_storage
from artifacts.storage.writes import S3DirectSink
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory, PublisherFactory, sha256
from tests.governance.factories import token_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MiB = 1024 * 1024
# Far above what one step takes, far below the suite's patience: a racer still waiting then is stuck.
TIMEOUT = 30.0


class Pause:
    """A point where a racer stops until the test releases it, telling the test it got there. It stops nobody
    until armed, so the test's own set-up goes through the same code freely."""

    def __init__(self) -> None:
        self.armed = False
        self.reached = threading.Event()
        self.released = threading.Event()

    def arm(self) -> "Pause":
        self.armed = True
        return self

    def __call__(self) -> None:
        if not self.armed:
            return
        self.reached.set()
        assert self.released.wait(TIMEOUT), "never released"

    def wait_reached(self) -> None:
        assert self.reached.wait(TIMEOUT), "the racer never reached its pause"


class Racer(threading.Thread):
    """`call` in its own thread and database connection; `result` or `error` (a traceback) once joined."""

    def __init__(self, name: str, call: Callable[[], Any]) -> None:
        super().__init__(name=name)
        self.call = call
        self.result: Any = None
        self.error: BaseException | None = None
        self.trace = ""
        self.start()

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as error:
            self.error, self.trace = error, traceback.format_exc()
        finally:
            connection.close()

    def outcome(self) -> Any:
        self.join(TIMEOUT)
        assert not self.is_alive(), f"{self.name} is still running after {TIMEOUT:.0f} s (a lock never released?)"
        return self.result


def wait_until_blocked_on_a_lock(waiters: int = 1) -> None:
    """Until PostgreSQL shows `waiters` other sessions of this database waiting for a lock: the racer started
    second has reached the row lock the first holds."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] >= waiters:
                return
        time.sleep(0.02)
    raise AssertionError("No racer ever waited for the lock: the interleaving was not forced.")


def assert_no_version_points_at_nothing() -> None:
    """The invariant: every live version's blob is not collected and its object is in the bucket."""
    storage = blob_storage()
    for model in (ArtifactVersion, DatasetVersion):
        for version in model.objects.filter(tombstone__isnull=True, blob__isnull=False).select_related("blob"):
            assert not version.blob.is_collected, f"{version} is live and its blob {version.blob} collected"
            assert storage.exists(version.blob.storage_key), f"{version} is live and its bytes are missing"
    for blob in Blob.objects.filter(collected_at__isnull=False):
        assert not storage.exists(blob.storage_key), f"{blob} is recorded collected but its bytes are stored"


@pytest.fixture(autouse=True)
def no_queued_collection(monkeypatch) -> None:
    monkeypatch.setattr(lifecycle_services, "enqueue_on_commit", lambda *args, **kwargs: None)


@pytest.fixture
def gc_pauses_after_deleting(monkeypatch) -> Pause:
    """The collector stops right after deleting the object, still holding the blob's row lock, before it commits
    `collected_at`."""
    pause = Pause()
    real = blob_storage

    class Deleting:
        def __getattr__(self, name: str) -> Any:
            return getattr(real(), name)

        def delete(self, key: str) -> None:
            real().delete(key)
            pause()

    monkeypatch.setattr(lifecycle_services, "blob_storage", Deleting)
    return pause


@pytest.fixture
def publish_pauses_holding_the_lock(monkeypatch) -> Pause:
    """A publish stops right after it locked the blob and found it stored, before it inserts the version."""
    pause = Pause()
    real = catalog_services.blob_locked_stored

    def locked(*args, **kwargs):
        blob = real(*args, **kwargs)
        pause()
        return blob

    monkeypatch.setattr(catalog_services, "blob_locked_stored", locked)
    return pause


def deleted_version(content: bytes) -> ArtifactVersion:
    """A version of `content` deleted, its bytes still in the bucket: what the collector will remove."""
    version = ArtifactVersionFactory(content=content)
    version_delete(version=version, deleted_by=None, reason="Older than 90 days.")
    return version


def client(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return api


def publish(api: APIClient, artifact, digest: str):
    return api.post("/api/v1/artifact-versions/", {"artifact": artifact.pk, "digest": digest}, format="json")


def head_skip_publish(api: APIClient, artifact, digest: str):
    """What the Python client does: HEAD the digest, and publish without uploading when it is held."""
    held = api.head(f"/api/v1/projects/{artifact.project.slug}/blobs/{digest}")
    assert held.status_code == 200, held.status_code
    return publish(api, artifact, digest)


def upload_and_publish(api: APIClient, artifact, content: bytes):
    """The client's answer to `blob_collected`: upload the bytes again, then publish."""
    uploaded = api.put(
        f"/api/v1/projects/{artifact.project.slug}/blobs/{sha256(content)}",
        content,
        content_type="application/octet-stream",
    )
    assert uploaded.status_code in (200, 201), uploaded.content
    return publish(api, artifact, sha256(content))


# The HEAD-skip path: publishing a digest without uploading it -------------------------------------------------


def test_a_publish_that_waits_for_the_collectors_lock_is_refused_and_succeeds_after_uploading_again(
    gc_pauses_after_deleting, s3_bucket
):
    content = os.urandom(4096)
    version = deleted_version(content)
    artifact = ArtifactFactory(project=version.artifact.project)
    api = client(PublisherFactory())
    assert api.head(f"/api/v1/projects/{artifact.project.slug}/blobs/{sha256(content)}").status_code == 200

    gc_pauses_after_deleting.arm()
    collector = Racer("collector", lambda: blob_collect(blob_id=version.blob_id))
    gc_pauses_after_deleting.wait_reached()
    publisher = Racer(
        "publisher",
        lambda: publish(api, artifact, sha256(content)),
    )
    wait_until_blocked_on_a_lock()
    gc_pauses_after_deleting.released.set()

    assert collector.outcome() is True
    refused = publisher.outcome()
    assert (refused.status_code, refused.json()["code"]) == (409, "blob_collected")
    assert not artifact.versions.exists()
    assert_no_version_points_at_nothing()

    published = upload_and_publish(api, artifact, content)
    assert published.status_code == 201
    assert s3_bucket.read(version.blob.storage_key) == content
    assert_no_version_points_at_nothing()


def test_a_collector_that_waits_for_a_publishs_lock_finds_the_new_version_and_keeps_the_bytes(
    publish_pauses_holding_the_lock, s3_bucket
):
    content = os.urandom(4096)
    version = deleted_version(content)
    artifact = ArtifactFactory(project=version.artifact.project)
    api = client(PublisherFactory())

    publish_pauses_holding_the_lock.arm()
    publisher = Racer("publisher", lambda: head_skip_publish(api, artifact, sha256(content)))
    publish_pauses_holding_the_lock.wait_reached()
    collector = Racer("collector", lambda: blob_collect(blob_id=version.blob_id))
    wait_until_blocked_on_a_lock()
    publish_pauses_holding_the_lock.released.set()

    assert publisher.outcome().status_code == 201
    assert collector.outcome() is False
    assert s3_bucket.read(version.blob.storage_key) == content
    assert not Blob.objects.get(pk=version.blob_id).is_collected
    assert_no_version_points_at_nothing()


# Upload sessions ----------------------------------------------------------------------------------------------


def started_session(project, content: bytes) -> UploadSession:
    session, held = upload_session_start(
        project=project, digest=sha256(content), size=len(content), created_by=PublisherFactory()
    )
    assert held is None
    return session


def test_a_session_that_only_hashed_held_bytes_and_finishes_behind_the_collector_is_refused(
    gc_pauses_after_deleting, s3_bucket
):
    content = os.urandom(6 * MiB)
    version = deleted_version(content)
    # Another project, so the start does not hand back the blob; the store holds the bytes, so it only hashes.
    session = started_session(ProjectFactory(), content)
    assert session.storage_state["sink"] == "discard"
    session = upload_session_append(session=session, stream=io.BytesIO(content), start=0, length=len(content))

    gc_pauses_after_deleting.arm()
    collector = Racer("collector", lambda: blob_collect(blob_id=version.blob_id))
    gc_pauses_after_deleting.wait_reached()
    finisher = Racer("finisher", lambda: upload_session_finish(session=session))
    wait_until_blocked_on_a_lock()
    gc_pauses_after_deleting.released.set()

    assert collector.outcome() is True
    finisher.outcome()
    assert isinstance(finisher.error, BlobCollected), finisher.trace
    assert not UploadSession.objects.filter(pk=session.pk).exists()
    assert Blob.objects.get(pk=version.blob_id).is_collected
    assert_no_version_points_at_nothing()

    # The client starts again: the bytes are written this time, and the blob is stored again.
    again = started_session(session.project, content)
    assert again.storage_state["sink"] != "discard"
    blob, _ = upload_session_finish(session=again, stream=io.BytesIO(content), length=len(content))
    assert not blob.is_collected
    assert s3_bucket.read(blob.storage_key) == content
    assert_no_version_points_at_nothing()


def test_a_collector_behind_a_finishing_session_collects_after_it_and_the_publish_that_follows_is_refused(
    monkeypatch, s3_bucket
):
    """The session commits first: its bytes are only held, no version uses them, so the collector (which waited)
    may remove them. What must not follow is a version pointing at nothing: the publish is refused."""
    content = os.urandom(6 * MiB)
    version = deleted_version(content)
    project = ProjectFactory()
    session = started_session(project, content)
    session = upload_session_append(session=session, stream=io.BytesIO(content), start=0, length=len(content))
    pause = Pause().arm()
    real = upload_services._session_completed

    def completed(*args, **kwargs):
        real(*args, **kwargs)
        pause()

    monkeypatch.setattr(upload_services, "_session_completed", completed)

    finisher = Racer("finisher", lambda: upload_session_finish(session=session))
    pause.wait_reached()
    collector = Racer("collector", lambda: blob_collect(blob_id=version.blob_id))
    wait_until_blocked_on_a_lock()
    pause.released.set()

    finisher.outcome()
    assert finisher.error is None, finisher.trace
    assert collector.outcome() is True
    api = client(PublisherFactory())
    artifact = ArtifactFactory(project=project)
    refused = publish(api, artifact, sha256(content))
    assert (refused.status_code, refused.json()["code"]) == (409, "blob_collected")
    assert_no_version_points_at_nothing()
    assert upload_and_publish(api, artifact, content).status_code == 201
    assert_no_version_points_at_nothing()


# A plain PUT ---------------------------------------------------------------------------------------------------


def test_a_put_whose_write_lands_after_the_collectors_delete_stores_the_bytes_again(
    gc_pauses_after_deleting, s3_bucket
):
    content = os.urandom(4096)
    version = deleted_version(content)
    api = client(PublisherFactory())
    project = ProjectFactory()

    gc_pauses_after_deleting.arm()
    collector = Racer("collector", lambda: blob_collect(blob_id=version.blob_id))
    gc_pauses_after_deleting.wait_reached()
    uploader = Racer(
        "uploader",
        lambda: api.put(
            f"/api/v1/projects/{project.slug}/blobs/{sha256(content)}", content, content_type="application/octet-stream"
        ),
    )
    wait_until_blocked_on_a_lock()
    gc_pauses_after_deleting.released.set()

    assert collector.outcome() is True
    assert uploader.outcome().status_code == 201
    blob = Blob.objects.get(pk=version.blob_id)
    assert not blob.is_collected
    assert s3_bucket.read(blob.storage_key) == content
    assert_no_version_points_at_nothing()


# Direct-to-S3 uploads --------------------------------------------------------------------------------------------


def sealed_direct_upload(project, content: bytes, monkeypatch) -> UploadSession:
    """A direct upload whose parts are in the bucket and assembled, its check not yet run (the test runs it)."""
    session, _ = upload_session_start(
        project=project, digest=sha256(content), size=len(content), created_by=PublisherFactory(), direct=True
    )
    for part in upload_services.upload_session_part_urls(session=session):
        url = urlsplit(part["url"])
        http_connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        try:
            body = content[part["offset"] : part["offset"] + part["length"]]
            http_connection.request("PUT", f"{url.path}?{url.query}", body=body)
            assert http_connection.getresponse().status == 200
        finally:
            http_connection.close()
    with monkeypatch.context() as patched:
        patched.setattr(upload_services, "enqueue_on_commit", lambda *args, **kwargs: None)
        upload_session_seal(session=session)
    return UploadSession.objects.select_related("project", "created_by").get(pk=session.pk)


def test_a_direct_upload_copied_into_place_before_the_collectors_delete_fails_and_says_upload_again(
    monkeypatch, s3_bucket
):
    content = os.urandom(6 * MiB)
    version = deleted_version(content)
    session = sealed_direct_upload(ProjectFactory(), content, monkeypatch)
    pause = Pause().arm()
    real = S3DirectSink.complete

    def complete(self, state, key):
        real(self, state, key)
        pause()

    monkeypatch.setattr(S3DirectSink, "complete", complete)

    checker = Racer("worker's check", lambda: upload_session_verify_direct(session=session))
    pause.wait_reached()  # the bytes are at their content address
    assert blob_collect(blob_id=version.blob_id) is True  # and the collector removes them
    pause.released.set()

    checker.outcome()
    assert checker.error is None, checker.trace
    session.refresh_from_db()
    assert session.state == UploadSession.State.FAILED
    assert "Upload the file again" in session.failure
    assert Blob.objects.get(pk=version.blob_id).is_collected
    assert version.blob.storage_key not in s3_bucket.object_keys()
    assert_no_version_points_at_nothing()


def test_a_direct_upload_copied_into_place_after_the_collectors_delete_stores_the_bytes_again(
    gc_pauses_after_deleting, monkeypatch, s3_bucket
):
    content = os.urandom(6 * MiB)
    version = deleted_version(content)
    project = ProjectFactory()
    session = sealed_direct_upload(project, content, monkeypatch)

    gc_pauses_after_deleting.arm()
    collector = Racer("collector", lambda: blob_collect(blob_id=version.blob_id))
    gc_pauses_after_deleting.wait_reached()
    checker = Racer("worker's check", lambda: upload_session_verify_direct(session=session))
    wait_until_blocked_on_a_lock()  # it copied the bytes into place and waits to record them
    gc_pauses_after_deleting.released.set()

    assert collector.outcome() is True
    checker.outcome()
    assert checker.error is None, checker.trace
    session.refresh_from_db()
    assert session.state == UploadSession.State.COMPLETED
    blob = Blob.objects.get(pk=version.blob_id)
    assert not blob.is_collected
    assert hashlib.sha256(s3_bucket.read(blob.storage_key)).hexdigest() == blob.digest
    api = client(PublisherFactory())
    published = api.post(
        "/api/v1/artifact-versions/",
        {"artifact": ArtifactFactory(project=project).pk, "digest": sha256(content)},
        format="json",
    )
    assert published.status_code == 201
    assert_no_version_points_at_nothing()


# What the safety costs ------------------------------------------------------------------------------------------


def test_the_collectors_safety_costs_a_publish_one_locking_read_and_an_upload_nothing():
    """The figure to report: the blob row locks each act takes on PostgreSQL. A PUT took one before the collector
    existed (to record the blob) and reads `collected_at` from it; a publish takes one more, its only extra query."""
    api = client(PublisherFactory())
    project = ProjectFactory()
    content = os.urandom(4096)
    artifact = ArtifactFactory(project=project)

    def blob_locks(queries: list[dict]) -> int:
        return sum('FROM "artifacts_blob"' in q["sql"] and "FOR NO KEY UPDATE" in q["sql"] for q in queries)

    with CaptureQueriesContext(connection) as upload:
        assert (
            api.put(
                f"/api/v1/projects/{project.slug}/blobs/{sha256(content)}",
                content,
                content_type="application/octet-stream",
            ).status_code
            == 201
        )
    with CaptureQueriesContext(connection) as publishing:
        assert publish(api, artifact, sha256(content)).status_code == 201

    assert blob_locks(upload.captured_queries) == 1
    assert blob_locks(publishing.captured_queries) == 1
