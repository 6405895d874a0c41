"""The Python client (clients/python) against the integration stack: a granian server process on PostgreSQL with
blobs in moto's S3 server, and the real Celery worker that checks what was uploaded.

The server runs on pytest-django's test database, the one the session's worker uses, so what a test commits
(`django_db(transaction=True)`) is what the server and the worker see. What crosses the network is counted with
httpx event hooks on the client's own connections (the API's, and the bucket's for direct parts), never guessed.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings

from artifacts.access.roles import Role
from governance.registry.services.registry import promotion_policy_set
from tests import live_server
from tests.artifacts.factories import ProjectFactory, grant
from tests.governance.factories import token_for
from tests.integration.conftest import _test_database_url

CLIENT_SOURCE = live_server.ROOT / "clients" / "python" / "src"
if str(CLIENT_SOURCE) not in sys.path:
    sys.path.insert(0, str(CLIENT_SOURCE))

from provenant_client import Client  # noqa: E402 (the checkout's client, put on the path above)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MiB = 1024 * 1024
#: The server's S3 part size (PROVENANT_UPLOAD_PART_SIZE's default): a direct upload's parts are this long.
PART = 8 * MiB
WAIT_SECONDS = 60
#: The child processes import the checkout's client and the venv's httpx.
CHILD_PATH = os.pathsep.join([str(CLIENT_SOURCE), str(Path(httpx.__file__).parents[1]), *sys.path])


@pytest.fixture(scope="module")
def server(celery_worker, django_db_setup, tmp_path_factory) -> Iterator[str]:
    """granian serving the app on the test database, the integration bucket and broker, with downloads answered
    by a redirect to the bucket; its base URL."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _test_database_url(),
        "PROVENANT_VAR_DIR": str(settings.VAR_DIR),
        "PROVENANT_S3_REDIRECT_DOWNLOADS": "true",
    }
    log = tmp_path_factory.mktemp("client-server") / "granian.log"
    with live_server.process_on_a_free_port(live_server.GRANIAN, env, log_path=log) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def contributor_token(project) -> str:
    return token_for(grant(Role.CONTRIBUTOR, on=project).user)


@pytest.fixture
def client(server, contributor_token, tmp_path) -> Iterator[Client]:
    with Client(server, contributor_token, cache_dir=tmp_path / "cache", backoff=0.05) as client:
        yield client


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


class Traffic:
    """Requests on one httpx client: method, host:port, path, the body length announced and whether they carried
    an Authorization header; and how many were in flight at most (sent, not yet answered)."""

    def __init__(self, http: httpx.Client) -> None:
        self.requests: list[tuple[str, str, str, int, bool]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        http.event_hooks["request"].append(self._sent)
        http.event_hooks["response"].append(self._answered)

    def _sent(self, request: httpx.Request) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        length = int(request.headers.get("Content-Length", 0))
        where = f"{request.url.host}:{request.url.port}"
        self.requests.append((request.method, where, request.url.path, length, "Authorization" in request.headers))

    def _answered(self, response: httpx.Response) -> None:
        self.in_flight -= 1

    def body_bytes(self, *methods: str) -> int:
        return sum(request[3] for request in self.requests if request[0] in methods)


def bucket_host() -> str:
    endpoint = urlsplit(settings.STORAGES["blobs"]["OPTIONS"]["endpoint_url"])
    return f"{endpoint.hostname}:{endpoint.port}"


def blob_state(client: Client, slug: str, digest: str) -> str:
    return client.get(f"/projects/{slug}/blobs/{digest}/state/")["state"]


def eventually(check, what: str, celery_worker) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        celery_worker.assert_running()
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} did not happen in {WAIT_SECONDS} s. The worker's log ends:\n{celery_worker.log_tail()}"
            )
        time.sleep(0.2)


def cli(server: str, token: str, *args: str, cache: Path) -> dict:
    """`provenant <args> --json` in a process of its own; its output parsed."""
    env = {
        **os.environ,
        "PYTHONPATH": CHILD_PATH,
        "PROVENANT_URL": server,
        "PROVENANT_TOKEN": token,
        "PROVENANT_CACHE_DIR": str(cache),
        "XDG_CONFIG_HOME": str(cache / "no-config"),
    }
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from provenant_client.cli import main; sys.exit(main())", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_push_then_pull_round_trips_and_the_pull_follows_the_redirect_to_the_bucket(
    client, project, tmp_path, celery_worker
):
    source = random_file(tmp_path / "model.bin", 3 * MiB + 17)
    pushed = client.push(source, project=project.slug, artifact="round-trip")
    eventually(lambda: blob_state(client, project.slug, pushed.digest) == "verified", "verification", celery_worker)
    redirects: list[str] = []
    client.http.event_hooks["response"].append(
        lambda response: redirects.append(response.headers["Location"]) if response.status_code == 302 else None
    )

    pulled = client.pull(pushed.version["id"], tmp_path / "pulled.bin")

    assert pulled.read_bytes() == source.read_bytes()
    assert [urlsplit(location).netloc for location in redirects] == [bucket_host()]


def test_a_large_pull_comes_from_the_bucket_in_parallel_ranges_without_the_token(
    client, project, tmp_path, celery_worker
):
    """The server redirects to the bucket: there, by default, the blob comes in ranges fetched by several threads
    (the link, not hashing, is what limits a pull from storage), none of them carrying the bearer token."""
    source = random_file(tmp_path / "model.bin", 40 * MiB + 4321)
    pushed = client.push(source, project=project.slug, artifact="ranged-pull")
    eventually(lambda: blob_state(client, project.slug, pushed.digest) == "verified", "verification", celery_worker)
    traffic = Traffic(client.http)

    pulled = client.pull(pushed.version["id"], tmp_path / "pulled.bin")

    assert pulled.read_bytes() == source.read_bytes()
    from_bucket = [request for request in traffic.requests if request[1] == bucket_host()]
    assert len(from_bucket) > 1, "the blob comes in ranges"
    assert all(request[0] == "GET" and not request[4] for request in from_bucket), "the token never goes there"
    downloads_asked = [request for request in traffic.requests if request[2].endswith("/download/")]
    assert len(downloads_asked) == 1, "the server is asked once, for the redirect"


def test_a_large_file_goes_to_the_bucket_in_parallel_parts_and_the_worker_verifies_it(
    server, client, project, tmp_path, celery_worker
):
    source = random_file(tmp_path / "model.bin", 4 * PART + 12345)
    client.upload_session_threshold = 0
    api, bucket = Traffic(client.http), Traffic(client.uploads.bucket_http)

    pushed = client.push(source, project=project.slug, artifact="direct")

    parts = [request for request in bucket.requests if request[0] == "PUT"]
    assert sorted(request[3] for request in parts) == [12345, PART, PART, PART, PART]
    assert {request[1] for request in parts} == {bucket_host()}
    assert not any(request[4] for request in bucket.requests), "the token never goes to the bucket"
    assert bucket.most_in_flight > 1, "parts are sent several at a time"
    assert api.body_bytes("PUT", "PATCH") == 0, "no byte of the file went through the API"
    assert (pushed.bytes_sent, pushed.already_held) == (source.stat().st_size, False)
    # The version could only be published once the worker had checked the bytes: the blob exists only then.
    assert blob_state(client, project.slug, pushed.digest) == "verified"
    assert pushed.version["digest"] == sha256(source)
    assert client.pull(pushed.version["id"]).read_bytes() == source.read_bytes()
    assert not list((tmp_path / "cache" / "uploads").iterdir()), "a finished upload leaves no state to resume"


def test_pushing_bytes_the_project_holds_sends_no_body(client, project, tmp_path):
    source = random_file(tmp_path / "model.bin", 2 * PART)
    client.upload_session_threshold = 0
    first = client.push(source, project=project.slug, artifact="dedup")
    api, bucket = Traffic(client.http), Traffic(client.uploads.bucket_http)

    again = client.push(source, project=project.slug, artifact="dedup")

    assert (again.bytes_sent, again.already_held) == (0, True)
    assert again.version["id"] == first.version["id"]
    assert api.body_bytes("PUT", "PATCH") == 0
    assert bucket.requests == []
    assert not any(request[0] == "POST" and request[2].endswith("/uploads/") for request in api.requests)


KILLED_AFTER_ONE_PART = """
import os, signal, sys
from provenant_client import Client

url, token, cache, path, project = sys.argv[1:]
client = Client(url, token, cache_dir=cache, upload_session_threshold=0, upload_parallelism=1)

def die_after_the_first_part(response):
    if response.request.method == "PUT" and response.status_code == 200:
        os.kill(os.getpid(), signal.SIGKILL)

client.uploads.bucket_http.event_hooks["response"].append(die_after_the_first_part)
client.upload(path, project=project)
"""


def test_a_direct_upload_killed_mid_way_sends_only_the_parts_the_bucket_lacks(
    server, contributor_token, project, tmp_path
):
    source = random_file(tmp_path / "model.bin", 3 * PART + 999)
    cache = tmp_path / "cache"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_ONE_PART, server, contributor_token, str(cache), str(source), project.slug],
        env={**os.environ, "PYTHONPATH": CHILD_PATH},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list((cache / "uploads").iterdir())) == 1, "the session was saved for a later process"

    with Client(server, contributor_token, cache_dir=cache) as client:
        api, bucket = Traffic(client.http), Traffic(client.uploads.bucket_http)
        pushed = client.push(source, project=project.slug, artifact="resumed")

    assert pushed.resumed_from == PART
    assert pushed.bytes_sent == bucket.body_bytes("PUT") == source.stat().st_size - PART
    assert sorted(request[3] for request in bucket.requests) == [999, PART, PART]
    assert not any(request[0] == "POST" and request[2].endswith("/uploads/") for request in api.requests)
    assert pushed.version["digest"] == sha256(source)
    with Client(server, contributor_token, cache_dir=tmp_path / "fresh-cache") as reader:
        assert reader.pull(pushed.version["id"]).read_bytes() == source.read_bytes()
    assert not list((cache / "uploads").iterdir())


def test_model_at_production_names_the_version_promoted_by_two_reviewers(
    server, client, project, contributor_token, tmp_path, celery_worker
):
    maintainer = grant(Role.MAINTAINER, on=project).user
    promotion_policy_set(
        project=project, stage="production", changed_by=maintainer, approvals_required=2,
        require_complete_lineage=False, require_model_card=True,
    )  # fmt: skip
    reviewers = [token_for(grant(Role.REVIEWER, on=project).user) for _ in range(2)]
    cache = tmp_path / "cli-cache"
    source = random_file(tmp_path / "scorer.bin", 2 * MiB)
    pushed = cli(server, contributor_token, "push", str(source), "--project", project.slug, "--artifact",
                 "scorer", cache=cache)  # fmt: skip
    assert (pushed["digest"], pushed["bytes_sent"], pushed["already_held"]) == (sha256(source), 2 * MiB, False)
    model = client.post("/models/", {"project": project.slug, "name": "scorer", "model_card": "# Scorer\n\nFraud."})
    model_version = client.post("/model-versions/", {"model": model["id"], "artifact_version": pushed["version"]["id"]})

    requested = cli(server, contributor_token, "promote", str(model_version["id"]), "--stage", "production",
                    "--justification", "Better recall on last month.", cache=cache)  # fmt: skip
    awaiting = cli(server, reviewers[0], "status", cache=cache)
    decisions = [cli(server, token, "approve", str(requested["id"]), cache=cache) for token in reviewers]

    assert requested["approvals_required"] == 2
    assert [request["id"] for request in awaiting] == [requested["id"]]
    assert [decision["id"] for decision in decisions] == [requested["id"]] * 2

    def promoted() -> bool:
        try:
            client.resolve("scorer@production", project=project.slug)
        except Exception:
            return False
        return True

    # The last gate is the bytes' verification, which the worker does; the promotion applies after it.
    eventually(promoted, "the promotion to production", celery_worker)
    resolved = client.resolve("scorer@production", project=project.slug)
    assert resolved["artifact_version"]["id"] == pushed["version"]["id"]
    assert client.pull("scorer@production", tmp_path / "serving.bin", project=project.slug).read_bytes() == (
        source.read_bytes()
    )
