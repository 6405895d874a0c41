"""Resumable uploads over real HTTP into a real S3 server: a 100 MB+ file in chunks, a connection that
drops in the middle of a chunk, the resume, and nothing left in the bucket when the bytes are wrong."""

import hashlib
import http.client
import json
import os
import socket
import time
import uuid
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from artifacts.models import Blob, ProjectBlob, UploadSession, storage_key_for
from artifacts.storage.writes import sink_for
from tests.artifacts.factories import ProjectFactory, UserFactory, sha256
from tests.governance.factories import token_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MiB = 1024 * 1024
CHUNK = 16 * MiB


def content_address(digest: str) -> str:
    h = digest.removeprefix("sha256:")
    return f"sha256/{h[:2]}/{h[2:4]}/{h}"


class Client:
    """A plain HTTP client for the live server, so bodies really cross a socket."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.token = token

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            connection.request(
                method, path, body=body, headers={"Authorization": f"Bearer {self.token}", **(headers or {})}
            )
            response = connection.getresponse()
            payload = response.read()
            return response.status, (json.loads(payload) if payload else None), dict(response.getheaders())
        finally:
            connection.close()

    def start(self, project, digest: str, size: int):
        body = json.dumps({"digest": digest, "size": size}).encode()
        return self.request(
            "POST", f"/api/v1/projects/{project.slug}/uploads/", body, {"Content-Type": "application/json"}
        )

    def chunk(self, path: str, data: bytes, offset: int):
        headers = {"Content-Type": "application/octet-stream", "Upload-Offset": str(offset)}
        return self.request("PATCH", path, data, headers)

    def chunk_then_hang_up(self, path: str, data: bytes, offset: int, *, send: int) -> None:
        """Announce a whole chunk, send only `send` bytes of it, and drop the connection."""
        with socket.create_connection((self.host, self.port), timeout=30) as raw:
            head = (
                f"PATCH {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Bearer {self.token}\r\nContent-Type: application/octet-stream\r\n"
                f"Upload-Offset: {offset}\r\nContent-Length: {len(data)}\r\n\r\n"
            )
            raw.sendall(head.encode() + data[:send])


def resume_when_free(client: Client, path: str, data: bytes, offset: int, timeout: float = 30.0):
    """The server notices the dropped connection a moment later; until then the session is busy."""
    deadline = time.monotonic() + timeout
    while True:
        status, body, headers = client.chunk(path, data, offset)
        if status != 409 or time.monotonic() > deadline:
            return status, body, headers
        time.sleep(0.2)


def multipart_uploads_at(bucket, key: str) -> list:
    """Multipart uploads still open at `key` (other tests' abandoned sessions may hold some elsewhere until they
    expire)."""
    uploads = bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads") or []
    return [upload for upload in uploads if upload["Key"] == key]


@pytest.fixture
def client(live_server):
    # A superuser, as the projects are made per test; who may upload where is tested in tests/artifacts/access.
    return Client(live_server.url, token_for(UserFactory(is_superuser=True)))


def test_a_100_mb_file_survives_a_dropped_connection_and_lands_whole_in_the_bucket(client, s3_bucket):
    project = ProjectFactory()
    data = os.urandom(105 * MiB + 7)
    digest = sha256(data)
    status, session, headers = client.start(project, digest, len(data))
    assert status == 201, session
    path = urlsplit(session["url"]).path

    assert client.chunk(path, data[:CHUNK], 0)[0] == 202
    client.chunk_then_hang_up(path, data[CHUNK : 2 * CHUNK], CHUNK, send=5 * MiB)

    status, where, headers = client.request("GET", path)
    assert where["offset"] == CHUNK
    assert headers["Upload-Offset"] == str(CHUNK)
    for offset in range(CHUNK, len(data), CHUNK):
        status, body, _ = resume_when_free(client, path, data[offset : offset + CHUNK], offset)
        assert status == 202, body
    status, blob, _ = client.request("PUT", f"{path}?digest={digest}")

    assert status == 201, blob
    stored = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=content_address(digest))["Body"]
    received = hashlib.sha256()
    for piece in stored.iter_chunks(MiB):
        received.update(piece)
    assert f"sha256:{received.hexdigest()}" == digest
    assert not multipart_uploads_at(s3_bucket, content_address(digest))
    assert UploadSession.objects.get().state == UploadSession.State.COMPLETED


def test_bytes_that_do_not_match_leave_no_object_and_no_multipart_upload(client, s3_bucket):
    project = ProjectFactory()
    data = os.urandom(20 * MiB)
    claimed = sha256(b"not these bytes")
    keys_before = s3_bucket.object_keys()
    path = urlsplit(client.start(project, claimed, len(data))[1]["url"]).path
    assert client.chunk(path, data[:CHUNK], 0)[0] == 202
    assert client.chunk(path, data[CHUNK:], CHUNK)[0] == 202

    status, body, _ = client.request("PUT", path)

    assert status == 400
    assert body["code"] == "digest_mismatch"
    assert s3_bucket.object_keys() == keys_before
    assert not multipart_uploads_at(s3_bucket, content_address(claimed))
    assert not Blob.objects.filter(digest=claimed.removeprefix("sha256:")).exists()


def test_a_second_project_proves_it_has_the_bytes_without_a_second_copy(client, s3_bucket):
    first, second = ProjectFactory(), ProjectFactory()
    data = os.urandom(6 * MiB)
    digest = sha256(data)
    for project in (first, second):
        path = urlsplit(client.start(project, digest, len(data))[1]["url"]).path
        assert client.chunk(path, data, 0)[0] == 202
        assert client.request("PUT", path)[0] in (200, 201)

    assert [key for key in s3_bucket.object_keys() if digest.removeprefix("sha256:") in key] == [
        content_address(digest)
    ]
    blob = Blob.objects.get(digest=digest.removeprefix("sha256:"))
    assert set(ProjectBlob.objects.filter(blob=blob).values_list("project", flat=True)) == {first.pk, second.pk}
    assert client.start(second, digest, len(data))[0] == 200  # now held: nothing to send


def put_parts(parts: list[dict], data: bytes) -> None:
    """Send each part straight to the bucket with its presigned URL, as a client would."""
    for part in parts:
        url = urlsplit(part["url"])
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        try:
            body = data[part["offset"] : part["offset"] + part["length"]]
            connection.request("PUT", f"{url.path}?{url.query}", body=body)
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
        finally:
            connection.close()


def wait_for_session_state(client: Client, path: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.request("GET", path)[1]
        if body["state"] in ("completed", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def start_direct(client: Client, project, digest: str, size: int):
    body = json.dumps({"digest": digest, "size": size, "direct": True}).encode()
    return client.request(
        "POST", f"/api/v1/projects/{project.slug}/uploads/", body, {"Content-Type": "application/json"}
    )


def test_a_direct_upload_goes_to_the_bucket_and_becomes_a_blob_only_after_the_worker_checked_it(client, s3_bucket):
    project = ProjectFactory()
    data = os.urandom(21 * MiB)
    digest = sha256(data)
    status, session, _ = start_direct(client, project, digest, len(data))
    assert status == 201, session
    assert session["mode"] == "direct"
    assert [part["length"] for part in session["parts"]] == [8 * MiB, 8 * MiB, 5 * MiB]
    assert [part["received"] for part in session["parts"]] == [False, False, False]
    path = urlsplit(session["url"]).path

    put_parts(session["parts"][:2], data)
    # The bucket is asked which parts it holds, so a client resuming after a crash sends only the third.
    assert [part["received"] for part in client.request("GET", path)[1]["parts"]] == [True, True, False]
    incomplete = client.request("PUT", path)
    assert incomplete[0] == 400
    assert "3" in incomplete[1]["detail"]

    put_parts(session["parts"][2:], data)
    status, sealed, _ = client.request("PUT", f"{path}?digest={digest}")
    assert status == 202, sealed
    assert sealed["state"] == "verifying"
    assert wait_for_session_state(client, path)["state"] == "completed"

    assert s3_bucket.read(content_address(digest)) == data
    assert not [key for key in s3_bucket.object_keys() if key.startswith("uploads/")]
    assert ProjectBlob.objects.filter(project=project, blob__digest=digest.removeprefix("sha256:")).exists()


def test_a_direct_upload_of_other_bytes_fails_and_leaves_nothing(client, s3_bucket):
    project = ProjectFactory()
    data = os.urandom(6 * MiB)
    claimed = sha256(b"something else entirely")
    keys_before = s3_bucket.object_keys()
    _, session, _ = start_direct(client, project, claimed, len(data))
    path = urlsplit(session["url"]).path
    put_parts(session["parts"], data)
    assert client.request("PUT", path)[0] == 202

    outcome = wait_for_session_state(client, path)
    assert outcome["state"] == "failed"
    assert "nothing was stored" in outcome["failure"]
    assert s3_bucket.object_keys() == keys_before
    assert not Blob.objects.filter(digest=claimed.removeprefix("sha256:")).exists()


def test_parts_of_any_size_assemble_the_exact_bytes(client, s3_bucket, settings):
    """A part size that is no multiple of the 1 MiB read size (as part_size_for picks for files over 78 GiB)."""
    settings.PROVENANT_UPLOAD_PART_SIZE = 6_000_000
    project = ProjectFactory()
    data = os.urandom(20 * MiB + 3)
    digest = sha256(data)
    path = urlsplit(client.start(project, digest, len(data))[1]["url"]).path
    assert client.chunk(path, data[: 13 * MiB], 0)[0] == 202
    assert client.chunk(path, data[13 * MiB :], 13 * MiB)[0] == 202
    status, blob, _ = client.request("PUT", path)

    assert status == 201, blob
    assert s3_bucket.read(content_address(digest)) == data
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=content_address(digest), ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"]  # each part was sent with its CRC32, which S3 checked on arrival


def test_a_short_chunk_before_the_end_is_refused_before_s3_sees_a_part_and_a_repeated_finish_is_answered(
    client, s3_bucket
):
    data = os.urandom(12 * MiB)
    digest = sha256(data)
    session = client.start(ProjectFactory(), digest, len(data))[1]
    path = urlsplit(session["url"]).path

    status, refused, _ = client.chunk(path, data[:MiB], 0)

    assert (status, refused["code"]) == (400, "chunk_too_small")
    state = UploadSession.objects.get(pk=session["id"]).storage_state
    listed = s3_bucket.client.list_parts(Bucket=s3_bucket.name, Key=state["key"], UploadId=state["upload_id"])
    assert listed.get("Parts", []) == []
    assert client.chunk(path, data[: 6 * MiB], 0)[0] == 202
    assert client.chunk(path, data[6 * MiB :], 6 * MiB)[0] == 202
    finished = client.request("PUT", f"{path}?digest={digest}")
    again = client.request("PUT", f"{path}?digest={digest}")
    assert (finished[0], again[0]) == (201, 200)
    assert again[1] == finished[1]


def test_a_chunked_body_through_a_real_server_is_a_411(client, s3_bucket):
    data = os.urandom(4096)  # small enough to be sent whole before the server answers and closes
    path = urlsplit(client.start(ProjectFactory(), sha256(data), None)[1]["url"]).path
    connection = http.client.HTTPConnection(client.host, client.port, timeout=60)
    try:
        connection.request(
            "PATCH", path, body=iter([data[:2048], data[2048:]]), encode_chunked=True,
            headers={"Authorization": f"Bearer {client.token}", "Upload-Offset": "0",
                     "Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"},
        )  # fmt: skip
        response = connection.getresponse()
        status, body = response.status, json.loads(response.read())
    finally:
        connection.close()

    assert (status, body["code"]) == (411, "length_required")
    assert client.request("GET", path)[1]["offset"] == 0


def test_the_repeat_of_a_finish_killed_after_s3_assembled_the_parts_keeps_the_blob(client, s3_bucket):
    """A web process killed inside the finishing PUT, after S3 assembled the parts and before its transaction
    committed: the client's repeat finishes. moto answers a second complete of the same upload itself; S3 may answer
    NoSuchUpload once it has forgotten the upload id, which the sink takes as done when the object is there."""
    project = ProjectFactory()
    data = os.urandom(CHUNK + 11)
    digest = sha256(data)
    status, session, _ = client.start(project, digest, len(data))
    path = urlsplit(session["url"]).path
    assert client.chunk(path, data[:CHUNK], 0)[0] == 202
    assert client.chunk(path, data[CHUNK:], CHUNK)[0] == 202
    row = UploadSession.objects.get()
    sink_for(row.storage_state).complete(row.storage_state, storage_key_for(row.digest))  # what the killed PUT did
    UploadSession.objects.filter(pk=row.pk).update(writer=uuid.uuid4(), writer_until=timezone.now())

    status, blob, _ = client.request("PUT", f"{path}?digest={digest}")

    assert status == 201, blob
    stored = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=content_address(digest))["Body"].read()
    assert stored == data
    assert UploadSession.objects.get().state == UploadSession.State.COMPLETED
