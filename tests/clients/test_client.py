"""The client against a real server process on the demo (clients/python/src/provenant_client/client.py): bytes
round-trip, what is already held or cached is never sent or fetched again, an upload cut off by a killed process
resumes where the server stands, and refusals arrive as typed errors with the server's code and detail.

What crosses the network is counted with httpx event hooks on the client's own connection, never guessed.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from provenant_client import (
    AuthenticationFailed,
    Client,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ProvenantError,
    ServerError,
    transfers,
)

from tests import live_server
from tests.clients.conftest import CLIENT_SOURCE, PROJECT, DemoServer
from tests.clients.relay import Relay

MiB = 1024 * 1024
#: The server's smallest chunk but the last (artifacts/storage/writes.py, MIN_PART_SIZE).
SERVER_MIN_CHUNK = 5 * MiB


class Traffic:
    """Every request a client sends: method, URL path and how many body bytes it announced."""

    def __init__(self, client: Client) -> None:
        self.requests: list[tuple[str, str, int]] = []
        client.http.event_hooks["request"].append(self._record)

    def _record(self, request: httpx.Request) -> None:
        self.requests.append((request.method, request.url.path, int(request.headers.get("Content-Length", 0))))

    def body_bytes(self, *methods: str) -> int:
        return sum(length for method, _, length in self.requests if method in methods)


@pytest.fixture
def random_file(tmp_path) -> Callable[..., Path]:
    """`random_file(size)`: a file of `size` random bytes, new to every project."""

    def make(size: int, name: str = "model.bin") -> Path:
        path = tmp_path / name
        path.write_bytes(os.urandom(size))
        return path

    return make


@pytest.fixture
def contributor(demo_server: DemoServer, tmp_path) -> Client:
    with Client(demo_server.url, demo_server.contributor_token, cache_dir=tmp_path / "cache", backoff=0) as client:
        yield client


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_push_then_pull_round_trips_the_bytes(contributor, random_file, tmp_path):
    source = random_file(300_000)

    pushed = contributor.push(source, project=PROJECT, artifact="client-round-trip", metadata={"epoch": 3})
    pulled = contributor.pull(pushed.version["id"], tmp_path / "pulled.bin")

    assert pushed.digest == pushed.version["digest"] == sha256(source)
    assert (pushed.bytes_sent, pushed.already_held) == (source.stat().st_size, False)
    assert pushed.version["artifact_name"] == "client-round-trip"
    assert pushed.version["metadata"] == {"epoch": 3}
    assert pulled.read_bytes() == source.read_bytes()


def test_push_declares_the_bytes_license_and_an_unknown_one_is_refused_by_name(contributor, random_file):
    pushed = contributor.push(random_file(1000), project=PROJECT, artifact="client-licensed", license="mit")

    with pytest.raises(InvalidInput, match="Unknown SPDX license identifier"):
        contributor.push(random_file(1000, "other.bin"), project=PROJECT, artifact="client-licensed", license="Nope-1")

    assert pushed.version["license"] == "MIT"


def delete_and_collect(demo_server: DemoServer, version_id: int) -> None:
    """On the server: delete the version and let the garbage collector remove its bytes."""
    code = (
        "from artifacts.models import ArtifactVersion\n"
        "from artifacts.services.lifecycle import blob_collect, version_delete\n"
        f"version = ArtifactVersion.objects.get(pk={int(version_id)})\n"
        "version_delete(version=version, deleted_by=None, reason='Deleted by the client tests.')\n"
        "blob_collect(blob_id=version.blob_id)\n"
    )
    live_server.manage("shell", "-c", code, env=live_server.environment(demo_server.var_dir, DJANGO_DEBUG="true"))


def test_a_push_whose_held_bytes_are_collected_before_it_publishes_sends_them_and_publishes(
    demo_server, contributor, random_file, tmp_path, monkeypatch
):
    source = random_file(200_000)
    old = contributor.push(source, project=PROJECT, artifact="client-gc-old")
    real_upload = contributor.uploads.upload_file
    uploads = []

    def upload_then_collect(*args, **kwargs):
        stored = real_upload(*args, **kwargs)
        uploads.append(stored)
        if len(uploads) == 1:  # the HEAD found the bytes held; the collector removes them before the publish
            delete_and_collect(demo_server, old.version["id"])
        return stored

    monkeypatch.setattr(contributor.uploads, "upload_file", upload_then_collect)

    pushed = contributor.push(source, project=PROJECT, artifact="client-gc-new")

    assert [stored.already_held for stored in uploads] == [True, False]
    assert (pushed.version["artifact_name"], pushed.bytes_sent) == ("client-gc-new", source.stat().st_size)
    assert contributor.pull(pushed.version["id"], tmp_path / "pulled.bin").read_bytes() == source.read_bytes()
    # A client that never cached the old version's bytes hears they are gone.
    fresh = Client(demo_server.url, demo_server.contributor_token, cache_dir=tmp_path / "fresh", backoff=0)
    with fresh, pytest.raises(ProvenantError) as gone:
        fresh.pull(old.version["id"], tmp_path / "old.bin")
    assert (gone.value.status, gone.value.code) == (410, "version_deleted")


def test_pushing_bytes_the_project_holds_sends_no_body(contributor, random_file):
    source = random_file(200_000)
    first = contributor.push(source, project=PROJECT, artifact="client-dedup")
    traffic = Traffic(contributor)

    again = contributor.push(source, project=PROJECT, artifact="client-dedup")

    assert (again.bytes_sent, again.already_held) == (0, True)
    assert again.version["id"] == first.version["id"]  # the same bytes and details: the same version
    assert traffic.body_bytes("PUT", "PATCH") == 0
    assert ("HEAD", f"/api/v1/projects/{PROJECT}/blobs/{first.digest}", 0) in traffic.requests


def test_a_large_file_goes_through_an_upload_session_in_chunks(demo_server, random_file, tmp_path):
    source = random_file(2 * SERVER_MIN_CHUNK + 1234)
    options = {"cache_dir": tmp_path / "cache", "upload_session_threshold": 0, "chunk_size": 1, "max_chunk_size": 1}
    with Client(demo_server.url, demo_server.contributor_token, **options) as client:
        traffic = Traffic(client)
        pushed = client.push(source, project=PROJECT, artifact="client-session")

    # Chunks of 1 byte asked for: the server's minimum is used instead, and the last one finishes the upload.
    chunks = [(method, length) for method, path, length in traffic.requests if path.startswith("/api/v1/uploads/")]
    assert chunks == [("PATCH", SERVER_MIN_CHUNK), ("PATCH", SERVER_MIN_CHUNK), ("PUT", 1234)]
    assert pushed.version["digest"] == sha256(source)
    assert not list((tmp_path / "cache" / "uploads").iterdir()), "a finished upload leaves no state to resume"


def test_chunks_grow_with_the_speed_measured_up_to_the_largest_allowed(demo_server, random_file, tmp_path):
    source = random_file(4 * SERVER_MIN_CHUNK + 1234)
    options = {"cache_dir": tmp_path / "cache", "upload_session_threshold": 0, "chunk_size": 1}
    with Client(
        demo_server.url, demo_server.contributor_token, max_chunk_size=2 * SERVER_MIN_CHUNK, **options
    ) as client:
        traffic = Traffic(client)
        pushed = client.push(source, project=PROJECT, artifact="client-growing-chunks")

    # A loopback link sends far more than 10 MiB in CHUNK_SECONDS: after the first chunk, the largest allowed.
    chunks = [(method, length) for method, path, length in traffic.requests if path.startswith("/api/v1/uploads/")]
    assert chunks == [("PATCH", SERVER_MIN_CHUNK), ("PATCH", 2 * SERVER_MIN_CHUNK), ("PUT", SERVER_MIN_CHUNK + 1234)]
    assert pushed.version["digest"] == sha256(source)


def test_a_large_file_is_sent_while_it_is_hashed_and_its_digest_named_at_the_end(demo_server, random_file, tmp_path):
    source = random_file(2 * SERVER_MIN_CHUNK + 1234)
    options = {"cache_dir": tmp_path / "cache", "upload_session_threshold": 0, "chunk_size": 1, "max_chunk_size": 1}
    with Client(demo_server.url, demo_server.contributor_token, **options) as client:
        starts: list[dict] = []
        client.http.event_hooks["request"].append(
            lambda request: (
                starts.append(json.loads(request.read())) if request.url.path.endswith("/uploads/") else None
            )
        )
        finishes: list[str] = []
        client.http.event_hooks["request"].append(
            lambda request: finishes.append(request.url.params.get("digest")) if request.method == "PUT" else None
        )
        pushed = client.push(source, project=PROJECT, artifact="client-digest-later")

    # Folder-backed: direct refused, then a session with no digest, named by the finishing PUT.
    assert [("digest" in body, body.get("direct", False)) for body in starts] == [(False, True), (False, False)]
    assert finishes == [sha256(source)]
    assert (pushed.bytes_sent, pushed.already_held) == (source.stat().st_size, False)
    assert pushed.version["digest"] == sha256(source)


def test_bytes_held_but_new_to_this_cache_stop_being_sent_once_the_hash_is_done(demo_server, random_file, tmp_path):
    source = random_file(4 * SERVER_MIN_CHUNK + 1234)
    options = {"upload_session_threshold": 0, "chunk_size": 1, "max_chunk_size": 1}
    with Client(demo_server.url, demo_server.contributor_token, cache_dir=tmp_path / "first", **options) as first:
        first.upload(source, project=PROJECT)
    # Another machine's cache (or a colleague's) has never seen the file: it starts sending before it knows.
    with Client(demo_server.url, demo_server.contributor_token, cache_dir=tmp_path / "other", **options) as other:
        traffic = Traffic(other)
        again = other.push(source, project=PROJECT, artifact="client-held-elsewhere")
        listed = other.get(f"/projects/{PROJECT}/uploads/")["results"]

    assert again.already_held
    assert again.bytes_sent < source.stat().st_size  # at the latest, the last chunk is not sent
    assert "DELETE" in {method for method, *_ in traffic.requests}
    assert not any(method == "PUT" for method, *_ in traffic.requests)
    assert again.version["digest"] == sha256(source)
    assert not [session for session in listed if session["state"] == "receiving"], "the session was cancelled"


def test_a_large_file_this_cache_pushed_is_hashed_first_and_not_sent_again(demo_server, random_file, tmp_path):
    source = random_file(2 * SERVER_MIN_CHUNK + 1234)
    options = {"cache_dir": tmp_path / "cache", "upload_session_threshold": 0, "chunk_size": 1}
    with Client(demo_server.url, demo_server.contributor_token, **options) as client:
        first = client.push(source, project=PROJECT, artifact="client-hinted")
        traffic = Traffic(client)
        again = client.push(source, project=PROJECT, artifact="client-hinted")

    assert (again.bytes_sent, again.already_held) == (0, True)
    assert traffic.body_bytes("PUT", "PATCH") == 0
    assert ("HEAD", f"/api/v1/projects/{PROJECT}/blobs/{first.digest}", 0) in traffic.requests
    assert again.version["id"] == first.version["id"]


def test_a_server_that_keeps_blobs_in_a_folder_is_asked_for_a_direct_upload_once(demo_server, random_file, tmp_path):
    options = {"cache_dir": tmp_path / "cache", "upload_session_threshold": 0}
    with Client(demo_server.url, demo_server.contributor_token, **options) as client:
        starts: list[bytes] = []
        client.http.event_hooks["request"].append(
            lambda request: starts.append(request.read()) if request.url.path.endswith("/uploads/") else None
        )
        first = client.push(random_file(1000, "first.bin"), project=PROJECT, artifact="client-no-direct")
        second = client.push(random_file(1000, "second.bin"), project=PROJECT, artifact="client-no-direct")

    # The first session asked for direct (refused: direct_needs_s3) then for chunks; the second only for chunks.
    assert [b'"direct": true' in body or b'"direct":true' in body for body in starts] == [True, False, False]
    assert (first.version["number"], second.version["number"]) == (1, 2)


def test_progress_hears_every_byte_of_a_push_in_a_session_and_of_a_pull(demo_server, random_file, tmp_path):
    source = random_file(SERVER_MIN_CHUNK + 4321)
    size = source.stat().st_size
    options = {"cache_dir": tmp_path / "cache", "upload_session_threshold": 0, "chunk_size": 1, "max_chunk_size": 1}
    pushed_so_far: list[tuple[int, int | None]] = []
    pulled_so_far: list[tuple[int, int | None]] = []
    with Client(demo_server.url, demo_server.contributor_token, **options) as client:
        pushed = client.push(
            source, project=PROJECT, artifact="client-progress", progress=lambda *p: pushed_so_far.append(p)
        )
        client.pull(pushed.version["id"], tmp_path / "pulled.bin", progress=lambda *p: pulled_so_far.append(p))

    for heard in (pushed_so_far, pulled_so_far):
        positions = [done for done, _ in heard]
        assert positions == sorted(positions)
        assert heard[-1] == (size, size)


def test_a_second_pull_reads_nothing_from_the_network(demo_server, contributor, random_file, tmp_path):
    source = random_file(150_000)
    pushed = contributor.push(source, project=PROJECT, artifact="client-cache")
    contributor.pull(pushed.version["id"], tmp_path / "first.bin")
    # A new client (a new process) on the same cache folder, by version id and by digest.
    with Client(demo_server.url, demo_server.contributor_token, cache_dir=tmp_path / "cache") as later:
        traffic = Traffic(later)
        by_id = later.pull(pushed.version["id"], tmp_path / "second.bin")
        by_digest = later.pull(pushed.digest, tmp_path / "third.bin", project=PROJECT)

    assert traffic.requests == []
    assert by_id.read_bytes() == by_digest.read_bytes() == source.read_bytes()


def test_a_pull_lands_in_the_content_addressed_cache_read_only(contributor, random_file, tmp_path):
    source = random_file(100_000)
    digest = contributor.upload(source, project=PROJECT).digest

    cached = contributor.pull(digest, project=PROJECT)

    assert cached == tmp_path / "cache" / "blobs" / "sha256" / digest.split(":")[1]
    assert cached.read_bytes() == source.read_bytes()
    assert not os.access(cached, os.W_OK) or os.geteuid() == 0
    linked = contributor.pull(digest, tmp_path, project=PROJECT, link=True)
    assert linked == tmp_path / digest.split(":")[1]
    assert linked.stat().st_ino == cached.stat().st_ino


def test_the_cache_folder_follows_the_environment(demo_server, random_file, monkeypatch, tmp_path):
    monkeypatch.setenv("PROVENANT_CACHE_DIR", str(tmp_path / "elsewhere"))
    with Client(demo_server.url, demo_server.contributor_token) as client:
        digest = client.upload(random_file(1000), project=PROJECT).digest
        client.pull(digest, project=PROJECT)

    assert (tmp_path / "elsewhere" / "blobs" / "sha256" / digest.split(":")[1]).exists()


def test_the_servers_repr_digest_is_read_so_downloads_are_checked_against_it(contributor, random_file):
    digest = contributor.upload(random_file(5000), project=PROJECT).digest

    answer = contributor.request("HEAD", f"/projects/{PROJECT}/blobs/{digest}")

    assert transfers.repr_digest_hex(answer.headers["Repr-Digest"]) == digest.split(":")[1]


KILLED_AFTER_ONE_CHUNK = """
import os, signal, sys
from provenant_client import Client

url, token, cache, path, project = sys.argv[1:]
client = Client(url, token, cache_dir=cache, upload_session_threshold=0, chunk_size=1)

def die_after_the_first_chunk(response):
    if response.request.method == "PATCH":
        os.kill(os.getpid(), signal.SIGKILL)

client.http.event_hooks["response"].append(die_after_the_first_chunk)
client.upload(path, project=project)
"""


def test_an_upload_killed_mid_way_resumes_from_the_servers_offset(demo_server, random_file, tmp_path):
    source = random_file(2 * SERVER_MIN_CHUNK + 4321)
    cache = tmp_path / "cache"
    # The client in a process of its own, SIGKILLed as soon as the server took its first chunk.
    search_path = [str(CLIENT_SOURCE), str(Path(httpx.__file__).parents[1]), *sys.path]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(search_path)}
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_AFTER_ONE_CHUNK,
            demo_server.url,
            demo_server.contributor_token,
            str(cache),
            str(source),
            PROJECT,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list((cache / "uploads").iterdir())) == 1, "the session was saved for a later process"

    with Client(demo_server.url, demo_server.contributor_token, cache_dir=cache) as client:
        traffic = Traffic(client)
        pushed = client.push(source, project=PROJECT, artifact="client-resume")

    assert pushed.resumed_from == SERVER_MIN_CHUNK
    assert pushed.bytes_sent == traffic.body_bytes("PATCH", "PUT") == source.stat().st_size - SERVER_MIN_CHUNK
    assert not any(method == "POST" and "/uploads/" in path for method, path, _ in traffic.requests)
    assert pushed.version["digest"] == sha256(source)
    assert pushed.version["size"] == source.stat().st_size
    assert not list((cache / "uploads").iterdir())


def test_a_saved_session_the_server_no_longer_has_starts_a_new_one(contributor, random_file, tmp_path):
    source = random_file(3000)
    digest = sha256(source)
    state = contributor.cache.upload_state_path(contributor.server, PROJECT, digest)
    contributor.cache.save_json(
        state, {"server": contributor.server, "session": f"{contributor.server}/api/v1/uploads/{'0' * 32}/"}
    )

    pushed = contributor.push(source, project=PROJECT, artifact="client-stale-session")

    assert pushed.version["digest"] == digest
    assert not state.exists()


# Refusals -------------------------------------------------------------------------------------------------------


def test_a_missing_version_is_not_found_with_the_servers_words(contributor):
    with pytest.raises(NotFound) as refused:
        contributor.pull(10**9)

    assert (refused.value.status, refused.value.code) == (404, "not_found")
    assert refused.value.detail == f"No artifact version with id {10**9}."


def test_a_viewer_pushing_is_denied_naming_the_roles_that_may(demo_server, random_file, tmp_path):
    viewer = Client(demo_server.url, demo_server.viewer_token, cache_dir=tmp_path / "cache")
    with viewer, pytest.raises(PermissionDenied) as refused:
        viewer.push(random_file(1000), project=PROJECT, artifact="client-denied")

    assert (refused.value.status, refused.value.code) == (403, "permission_denied")
    assert "contributor" in refused.value.detail


def test_input_that_does_not_validate_names_its_field(contributor, random_file):
    with pytest.raises(InvalidInput) as refused:
        contributor.push(random_file(1000), project=PROJECT, artifact="client-invalid", media_type="")

    assert (refused.value.status, refused.value.code, refused.value.field) == (400, "invalid", "media_type")
    assert list(refused.value.errors) == ["media_type"]
    assert "media_type" in str(refused.value)


def test_a_token_the_server_does_not_know_fails_authentication(demo_server, tmp_path):
    stranger = Client(demo_server.url, "prv_not-a-token", cache_dir=tmp_path / "cache")
    with stranger, pytest.raises(AuthenticationFailed) as refused:
        stranger.get("/projects/")

    assert refused.value.status == 401
    assert refused.value.detail


def test_a_refusal_is_not_retried(contributor):
    traffic = Traffic(contributor)
    with pytest.raises(NotFound):
        contributor.get("/artifact-versions/999999999/")

    assert len(traffic.requests) == 1


def test_a_server_that_does_not_answer_is_retried_then_reported(tmp_path):
    with Client(
        f"http://127.0.0.1:{live_server.free_port()}", "prv_x", cache_dir=tmp_path, retries=2, backoff=0
    ) as client:
        traffic = Traffic(client)
        with pytest.raises(ServerError) as refused:
            client.get("/projects/")

    assert (refused.value.status, refused.value.code) == (None, "unreachable")
    assert len(traffic.requests) == 3


def test_a_server_error_is_retried_then_reported_with_its_code(tmp_path):
    """A server whose database cannot be opened answers every request 500 (JSON, `server_error`)."""
    env = live_server.environment(
        tmp_path,
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="client-tests-only-" + "k" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        PROVENANT_HTTPS="false",
        DATABASE_URL=f"sqlite:///{tmp_path / 'missing' / 'db.sqlite3'}",
    )
    with live_server.process_on_a_free_port(live_server.GRANIAN, env, log_path=tmp_path / "server.log") as port:
        client = Client(f"http://127.0.0.1:{port}", "prv_x", cache_dir=tmp_path / "cache", retries=2, backoff=0)
        traffic = Traffic(client)
        with client, pytest.raises(ServerError) as refused:
            client.get("/projects/")

    assert (refused.value.status, refused.value.code) == (500, "server_error")
    assert len(traffic.requests) == 3


def test_a_model_stage_reference_pulls_the_version_in_that_stage_now(contributor, tmp_path):
    resolution = contributor.resolve("fraud-scorer@production", project=PROJECT)
    pulled = contributor.pull("fraud-scorer@production", tmp_path, project=PROJECT)

    assert resolution["model_version"]["stage"] == "production"
    assert sha256(pulled) == resolution["artifact_version"]["digest"]
    version = resolution["artifact_version"]
    assert version["metadata"]["filename"] == "model.safetensors"  # the suffix of the file it was pushed from
    assert pulled.name == f"{version['artifact_name']}-v{version['number']}.safetensors"


def test_a_reference_is_asked_of_the_server_each_time_but_its_bytes_are_not(contributor, tmp_path):
    contributor.pull("fraud-scorer@champion", tmp_path / "first", project=PROJECT)
    requests: list[str] = []
    contributor.http.event_hooks["request"].append(lambda request: requests.append(request.url.path))

    contributor.pull("fraud-scorer@champion", tmp_path / "second", project=PROJECT)

    assert requests == ["/api/v1/resolve/"]
    assert (tmp_path / "second").read_bytes() == (tmp_path / "first").read_bytes()


def test_an_unknown_reference_is_not_found_and_a_malformed_one_is_invalid(contributor):
    with pytest.raises(NotFound, match="ghost"):
        contributor.pull("fraud-scorer@ghost", project=PROJECT)
    with pytest.raises(InvalidInput) as refused:
        contributor.resolve("fraud-scorer@", project=PROJECT)
    assert refused.value.field == "ref"


@pytest.fixture
def relay(demo_server: DemoServer) -> Iterator[Relay]:
    relay = Relay(urlsplit(demo_server.url).port)
    yield relay
    relay.close()


def test_a_post_whose_answer_was_lost_is_not_sent_again(demo_server, relay, tmp_path):
    """Carried out by the server, its answer cut: sending it again could do it twice, so it is reported instead."""
    relay.cut_after = lambda request: 0 if request.method == "POST" else None
    name = f"lost-answer-{os.urandom(4).hex()}"
    with Client(relay.url, demo_server.contributor_token, cache_dir=tmp_path / "cache", backoff=0) as client:
        with pytest.raises(ServerError) as unknown:
            client.post("/artifacts/", {"project": PROJECT, "name": name, "kind": "model"})
        assert client.artifact(PROJECT, name)["name"] == name

    assert unknown.value.code == "outcome_unknown"
    assert [(request.method, request.status) for request in relay.crossed if request.method == "POST"] == [
        ("POST", 201)
    ]


def test_a_push_to_an_artifact_name_the_server_refuses_sends_no_byte(contributor, random_file):
    traffic = Traffic(contributor)
    with pytest.raises(InvalidInput) as refused:
        contributor.push(random_file(2 * MiB), project=PROJECT, artifact="not a valid name!")

    assert refused.value.field == "name"
    assert [method for method, _, _ in traffic.requests] == ["GET", "POST"]  # the artifact asked for, then refused
    assert traffic.body_bytes("PUT", "PATCH") == 0


def test_a_pull_to_a_folder_path_that_does_not_exist_creates_the_folder(contributor, random_file, tmp_path):
    pushed = contributor.push(
        random_file(MiB), project=PROJECT, artifact="pulled-into-folder", metadata={"filename": "model.safetensors"}
    )

    written = contributor.pull(pushed.version["id"], f"{tmp_path / 'serving'}{os.sep}")

    assert written == tmp_path / "serving" / f"pulled-into-folder-v{pushed.version['number']}.safetensors"
    assert sha256(written) == pushed.digest


def test_the_token_is_not_sent_to_a_url_of_another_origin(contributor, relay):
    """A URL the server gave (a session, a page's `next`) pointing elsewhere is refused before anything is sent."""
    with pytest.raises(ProvenantError) as refused:
        contributor.request("GET", f"{relay.url}/api/v1/projects/")

    assert refused.value.code == "foreign_url"
    assert relay.crossed == []


def test_a_download_url_of_another_origin_is_not_asked(contributor, random_file, relay):
    pushed = contributor.push(random_file(MiB), project=PROJECT, artifact="foreign-download")
    foreign = f"{relay.url}/api/v1/projects/{PROJECT}/blobs/{pushed.digest}"

    with pytest.raises(ProvenantError) as refused:
        contributor.downloads.download(foreign, pushed.digest, pushed.size)

    assert refused.value.code == "foreign_url"
    assert relay.crossed == []


def test_upload_state_files_no_push_will_resume_are_removed_when_an_upload_starts(contributor, random_file, tmp_path):
    """Kept: a session whose source is still there as it was. Removed: one whose source is gone or changed size,
    and one older than any server keeps a session (a week)."""
    uploads = contributor.cache.root / "uploads"
    uploads.mkdir(parents=True)
    kept_source = tmp_path / "kept.bin"
    kept_source.write_bytes(b"x" * 10)

    def state(name: str, source: Path, size: int) -> Path:
        path = uploads / f"{name}.json"
        path.write_text(json.dumps({"server": contributor.server, "path": str(source), "size": size}))
        return path

    kept = state("kept", kept_source, 10)
    gone = state("gone", tmp_path / "deleted.bin", 10)
    changed = state("changed", kept_source, 11)
    old = state("old", kept_source, 10)
    week_ago = time.time() - transfers.STALE_UPLOAD_SECONDS - 60
    os.utime(old, (week_ago, week_ago))
    os.utime(kept_source, (week_ago - 60, week_ago - 60))

    contributor.upload(random_file(MiB), project=PROJECT)

    assert (kept.exists(), gone.exists(), changed.exists(), old.exists()) == (True, False, False, False)


def test_the_part_threads_share_one_connection_pool_to_the_bucket(contributor):
    threads = 8
    barrier = threading.Barrier(threads)
    pools = []

    def ask() -> None:
        barrier.wait()
        pools.append(contributor.uploads.bucket_http)

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert len({id(pool) for pool in pools}) == 1
