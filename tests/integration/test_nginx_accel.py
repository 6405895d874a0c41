"""Downloads from the local blob folder through a real nginx running the shipped deploy/nginx/provenant.conf: the app
checks access, logs the read and answers with an X-Accel-Redirect, and nginx sends the file. Whatever the request,
the client must get the answer granian gives without nginx: the same status, headers and bytes.

Two granian servers share the test database and one blob folder: one with PROVENANT_ACCEL_REDIRECT behind nginx,
one without, whose answers are the reference. Both keep blobs in that local folder (the session's own storage is S3)
and run tasks in-process, so the session's worker, which reads S3, never checks the blobs they store. nginx's access
log tells which answers it sent from the file itself.
"""

import http.client
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import pytest

from artifacts.access.roles import Role
from artifacts.models import Blob
from core.models import AuditEntry
from tests import live_server, nginx
from tests.artifacts.factories import ProjectFactory, grant, sha256
from tests.governance.factories import token_for
from tests.integration.conftest import ChildProcess, _listening, _test_database_url
from tests.integration.test_downloads import upload_to_new_project

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PREFIX = nginx.ACCEL_PREFIX
#: Not an answer's own: they describe the connection or the server that sent it.
CONNECTION_HEADERS = {"connection", "keep-alive", "date", "server", "transfer-encoding"}
#: More than granian's and the app's 1 MiB chunks, and not a whole number of them.
SIZE = 2 * 1024 * 1024 + 321
LOG_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Answer:
    status: int
    #: Lower-case names; a header sent twice has its values joined, so a repeated one does not compare equal.
    headers: dict[str, str]
    body: bytes


def fetch(port: int, path: str, headers: dict[str, str], method: str = "GET") -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        values: dict[str, list[str]] = {}
        for name, value in response.getheaders():
            values.setdefault(name.lower(), []).append(value)
        kept = {name: ", ".join(value) for name, value in values.items() if name not in CONNECTION_HEADERS}
        return Answer(response.status, kept, body)
    finally:
        connection.close()


@dataclass(frozen=True)
class Servers:
    direct: int
    nginx: int
    blobs: Path
    access_log: Path

    def both(self, path: str, headers: dict[str, str], method: str = "GET") -> tuple[Answer, Answer]:
        """The answers to one request sent to granian alone and through nginx, under one X-Request-ID (which the
        app echoes) so that the two can be compared whole."""
        headers = {"X-Request-ID": uuid.uuid4().hex, **headers}
        return fetch(self.direct, path, headers, method), fetch(self.nginx, path, headers, method)

    def sent_from_file(self, answer: Answer) -> bool:
        """Whether nginx sent this answer from the file (its final URI is under the internal location) rather than
        passing on what the app sent. nginx logs a request after its last byte is sent, so the line may lag."""
        request_id = answer.headers["x-request-id"]
        deadline = time.monotonic() + LOG_WAIT_SECONDS
        while time.monotonic() < deadline:
            for line in self.access_log.read_text().splitlines():
                logged_id, uri = line.split(" ", 1)
                if logged_id == request_id:
                    return uri.startswith(PREFIX)
            time.sleep(0.05)
        pytest.fail(f"nginx logged no request {request_id}; its log:\n{self.access_log.read_text()}")


def server_environment(var_dir: Path, **settings: str) -> dict[str, str]:
    """The test database, blobs in `var_dir`, tasks in-process. One hash seed for both servers: the order of the
    Content-Security-Policy's directives depends on it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROVENANT_", "CELERY_"))}
    return env | {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _test_database_url(),
        "PROVENANT_VAR_DIR": str(var_dir),
        "PYTHONHASHSEED": "0",
        **settings,
    }


@pytest.fixture(scope="module")
def servers(django_db_setup, tmp_path_factory) -> Iterator[Servers]:
    if not nginx.installed():
        if os.environ.get("CI") == "true":
            pytest.fail(f"nginx is not at {nginx.BINARY}: CI must install Debian's nginx-light (.ci/run does).")
        pytest.skip(f"nginx is not at {nginx.BINARY} (apt-get install nginx-light); the nginx tests are skipped.")
    var_dir = tmp_path_factory.mktemp("nginx-accel")
    workdir = var_dir / "nginx"
    workdir.mkdir()
    with ExitStack() as stack:
        direct = stack.enter_context(
            live_server.process_on_a_free_port(
                live_server.GRANIAN, server_environment(var_dir), log_path=var_dir / "direct.log"
            )
        )
        behind_nginx = stack.enter_context(
            live_server.process_on_a_free_port(
                live_server.GRANIAN,
                server_environment(var_dir, PROVENANT_ACCEL_REDIRECT=PREFIX),
                log_path=var_dir / "behind-nginx.log",
            )
        )
        port = live_server.free_port()
        config = nginx.render_config(workdir, port=port, upstream_port=behind_nginx, blobs=var_dir / "blobs")
        front = ChildProcess("nginx", nginx.command(workdir, config), log_path=workdir / "output.log")
        stack.callback(front.stop)
        front.wait_until(lambda: _listening("127.0.0.1", port), f"listening on 127.0.0.1:{port}")
        yield Servers(direct=direct, nginx=port, blobs=var_dir / "blobs", access_log=workdir / "access.log")


@dataclass(frozen=True)
class StoredBlob:
    path: str
    data: bytes
    authorization: dict[str, str]
    digest: str

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


@pytest.fixture
def blob(servers) -> StoredBlob:
    """Random bytes uploaded through granian into the shared local folder, and a viewer's token for them."""
    project = ProjectFactory()
    uploader = {"Authorization": f"Bearer {token_for(grant(Role.CONTRIBUTOR, on=project).user)}"}
    data = os.urandom(SIZE)
    path = f"/api/v1/projects/{project.slug}/blobs/{sha256(data)}"
    connection = http.client.HTTPConnection("127.0.0.1", servers.direct, timeout=30)
    connection.request("PUT", path, body=data, headers={**uploader, "Content-Type": "application/octet-stream"})
    response = connection.getresponse()
    assert response.status == 201, response.read()
    connection.close()
    viewer = {"Authorization": f"Bearer {token_for(grant(Role.VIEWER, on=project).user)}"}
    return StoredBlob(path=path, data=data, authorization=viewer, digest=sha256(data))


def http_date(path: Path) -> str:
    return formatdate(path.stat().st_mtime, usegmt=True)


# The file's own mtime is what nginx would compare dates with: the app ignores them, and nginx must too.
@pytest.mark.parametrize(
    ("headers", "status", "from_file"),
    [
        ({}, 200, True),
        ({"Range": "bytes=0-99"}, 206, True),
        ({"Range": "bytes=-10"}, 206, True),
        ({"Range": "bytes=2097000-"}, 206, True),
        ({"Range": "bytes=100-99999999"}, 206, True),
        ({"Range": "bytes=1048000-1049999", "If-Range": "{etag}"}, 206, True),
        # If-Range that does not match the ETag strongly: the whole blob, also from nginx.
        ({"Range": "bytes=0-99", "If-Range": '"sha256:older"'}, 200, True),
        ({"Range": "bytes=0-99", "If-Range": "W/{etag}"}, 200, True),
        ({"Range": "bytes=0-99", "If-Range": "{mtime}"}, 200, True),
        ({"If-None-Match": '"sha256:older"'}, 200, True),
        ({"If-Modified-Since": "{mtime}"}, 200, True),
        # Headers nginx would read otherwise than the app: the app streams these itself.
        ({"Range": "Bytes = 0-0"}, 206, False),
        ({"Range": "bytes=0-9, 20-29"}, 200, False),
        ({"Range": "bytes=5-2"}, 200, False),
        ({"If-Match": '"sha256:older"'}, 200, False),
        ({"If-Unmodified-Since": "Wed, 21 Oct 2015 07:28:00 GMT"}, 200, False),
        # No bytes: the app's answer, passed on.
        ({"If-None-Match": "{etag}"}, 304, False),
        ({"Range": f"bytes={SIZE}-"}, 416, False),
    ],
)
def test_through_nginx_a_download_is_the_answer_granian_gives_alone(servers, blob, headers, status, from_file):
    mtime = http_date(servers.blobs / Blob.objects.get(digest=blob.digest.removeprefix("sha256:")).storage_key)
    headers = {name: value.format(etag=blob.etag, mtime=mtime) for name, value in headers.items()}

    direct, proxied = servers.both(blob.path, blob.authorization | headers)

    assert direct.status == status
    assert proxied.status == direct.status
    assert proxied.headers == direct.headers
    assert proxied.body == direct.body
    assert servers.sent_from_file(proxied) is from_file


def test_nginx_sends_the_whole_blob_with_its_digests_and_the_app_logs_the_read(servers, blob):
    direct, proxied = servers.both(blob.path, blob.authorization)

    assert proxied.body == blob.data
    assert proxied.headers["etag"] == blob.etag
    assert proxied.headers["repr-digest"] == proxied.headers["content-digest"] == direct.headers["content-digest"]
    assert proxied.headers["content-length"] == str(SIZE)
    assert "last-modified" not in proxied.headers
    assert "x-accel-redirect" not in proxied.headers
    assert servers.sent_from_file(proxied)
    # One entry for the direct read, one for the read nginx sent.
    stored = Blob.objects.get(digest=blob.digest.removeprefix("sha256:"))
    assert AuditEntry.objects.filter(action="blob.downloaded", object_id=str(stored.pk)).count() == 2


@pytest.mark.parametrize("headers", [{}, {"Range": "bytes=0-99"}])
def test_head_is_answered_by_the_app(servers, blob, headers):
    direct, proxied = servers.both(blob.path, blob.authorization | headers, method="HEAD")

    assert proxied == direct
    assert not servers.sent_from_file(proxied)


def test_refusals_come_from_the_app(servers, blob):
    other = ProjectFactory()
    others_viewer = {"Authorization": f"Bearer {token_for(grant(Role.VIEWER, on=other).user)}"}

    refusals = [
        (blob.path, {}, 401),
        (blob.path, {"Authorization": "Bearer prv_not-a-token"}, 401),
        (blob.path.replace(blob.digest, sha256(b"never uploaded")), blob.authorization, 404),
        # Another project's member: the blob is not theirs to see.
        (blob.path, others_viewer, 404),
    ]
    for path, headers, status in refusals:
        direct, proxied = servers.both(path, headers)
        assert direct.status == status, path
        assert proxied == direct, path
        assert not servers.sent_from_file(proxied)
        assert blob.data[:64] not in proxied.body


def test_a_corrupt_blob_is_refused_by_the_app_and_never_sent(servers, blob):
    Blob.objects.filter(digest=blob.digest.removeprefix("sha256:")).update(state=Blob.State.CORRUPT)

    direct, proxied = servers.both(blob.path, blob.authorization)

    assert direct.status == 409
    assert proxied == direct
    assert json.loads(proxied.body)["code"] == "blob_corrupt"
    assert not servers.sent_from_file(proxied)


def test_a_missing_file_fails_in_the_app_as_without_nginx(servers, blob):
    (servers.blobs / Blob.objects.get(digest=blob.digest.removeprefix("sha256:")).storage_key).unlink()

    direct, proxied = servers.both(blob.path, blob.authorization)

    assert direct.status == 500
    assert proxied == direct
    assert json.loads(proxied.body)["code"] == "server_error"


@pytest.mark.parametrize("authorized", [False, True])
def test_the_internal_location_cannot_be_asked_for_from_outside(servers, blob, authorized):
    key = Blob.objects.get(digest=blob.digest.removeprefix("sha256:")).storage_key

    answer = fetch(servers.nginx, PREFIX + key, blob.authorization if authorized else {})

    assert answer.status == 404
    assert blob.data[:64] not in answer.body


def test_bytes_in_s3_are_streamed_by_the_app_whatever_the_setting(api, settings):
    # The session's storage is the S3 server: nginx cannot read a bucket from disk.
    settings.PROVENANT_ACCEL_REDIRECT = PREFIX
    data = os.urandom(4096)
    url = upload_to_new_project(api, data, slug="accel-s3")

    whole, partial = api.get(url), api.get(url, HTTP_RANGE="bytes=10-19")

    assert "X-Accel-Redirect" not in whole
    assert b"".join(whole.streaming_content) == data
    assert "X-Accel-Redirect" not in partial
    assert b"".join(partial.streaming_content) == data[10:20]
