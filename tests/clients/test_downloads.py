"""Pulls (clients/python/src/provenant_client/downloads.py) against a real server process on the demo, through a
TCP relay (tests/clients/relay.py) that records what crosses it and can cut, change or corrupt it on the way.

A large blob comes in byte ranges over several connections at once, each range read by the server (its audit log
says so); a server that answers a range with the whole blob is met with one plain stream; a connection cut inside a
range resumes inside that range; bytes that do not hash right, or a pull interrupted by Ctrl-C, leave nothing in the
cache.
"""

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from provenant_client import Client, DigestMismatch, transfers
from provenant_client.downloads import Route, _Assembly, origin

from tests.clients.conftest import PROJECT, DemoServer
from tests.clients.relay import Crossed, Relay

MiB = 1024 * 1024
THRESHOLD = 16 * MiB
#: Six pieces of the downloader's smallest size (8 MiB), the last one short.
SIZE = 40 * MiB + 12345
PIECE = 8 * MiB
PIECE_STARTS = list(range(0, SIZE, PIECE))
WRONG_ETAG = '"sha256:' + "0" * 64 + '"'


@pytest.fixture
def random_file(tmp_path) -> Callable[[int], Path]:
    def make(size: int) -> Path:
        path = tmp_path / "model.bin"
        path.write_bytes(os.urandom(size))
        return path

    return make


@pytest.fixture
def contributor(demo_server: DemoServer, tmp_path) -> Iterator[Client]:
    """Pushes straight to the server, with a cache of its own."""
    with Client(demo_server.url, demo_server.contributor_token, cache_dir=tmp_path / "push-cache") as client:
        yield client


@pytest.fixture
def relay(demo_server: DemoServer) -> Iterator[Relay]:
    relay = Relay(urlsplit(demo_server.url).port)
    yield relay
    relay.close()


@pytest.fixture(params=["http.client", "httpx"])
def puller(demo_server: DemoServer, relay: Relay, tmp_path, request) -> Iterator[Client]:
    """Pulls through the relay: four ranges at once for blobs of 16 MiB or more, retries without waiting. Bodies
    are read by `http.client`, or by httpx when the Client is given a transport of its own (a real one here)."""
    with Client(
        relay.url,
        demo_server.contributor_token,
        cache_dir=tmp_path / "cache",
        backoff=0,
        download_parallelism=4,
        parallel_download_threshold=THRESHOLD,
        transport=httpx.HTTPTransport() if request.param == "httpx" else None,
    ) as client:
        yield client


def first_byte(request: Crossed) -> int | None:
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("range", ""))
    return int(match[1]) if match else None


def downloads(relay: Relay) -> list[Crossed]:
    return [request for request in relay.crossed if request.method == "GET" and "/download/" in request.path]


def nothing_cached(cache: Path) -> bool:
    """No file under blobs/: none admitted to blobs/sha256/, no partial one left in blobs/incoming/."""
    return not any(path.is_file() for path in (cache / "blobs").rglob("*"))


def audited_ranges(demo_server: DemoServer, artifact: int, digest: str) -> list[tuple[int, int]]:
    """The byte ranges the server logged handing out for `digest` (first, last), from its audit log."""
    with Client(demo_server.url, demo_server.auditor_token) as auditor:
        entries = auditor.get("/audit/entries/", action="blob.downloaded", artifact=artifact, page_size=500)
    return sorted(
        (entry["changes"]["range"]["first"], entry["changes"]["range"]["last"])
        for entry in entries["results"]
        if entry["changes"].get("digest") == digest and "range" in entry["changes"]
    )


def test_a_large_blob_comes_in_ranges_over_several_connections_each_read_by_the_server(
    demo_server, contributor, puller, relay, random_file, tmp_path
):
    source = random_file(SIZE)
    pushed = contributor.push(source, project=PROJECT, artifact="client-parallel")

    pulled = puller.pull(pushed.version["id"], tmp_path / "pulled.bin")

    assert pulled.read_bytes() == source.read_bytes()
    ranges = downloads(relay)
    assert sorted(first_byte(request) for request in ranges) == PIECE_STARTS
    assert all(request.status == 206 and request.headers["if-range"] == f'"{pushed.digest}"' for request in ranges)
    assert all(request.headers["user-agent"].startswith("provenant-client/") for request in ranges)  # audited
    assert len({request.connection for request in ranges}) > 1
    expected = [(start, min(start + PIECE, SIZE) - 1) for start in PIECE_STARTS]
    assert audited_ranges(demo_server, pushed.version["artifact"], pushed.digest) == expected


def test_a_blob_below_the_threshold_comes_in_one_plain_request(contributor, puller, relay, random_file, tmp_path):
    source = random_file(THRESHOLD - 1)
    pushed = contributor.push(source, project=PROJECT, artifact="client-parallel")

    pulled = puller.pull(pushed.version["id"], tmp_path / "pulled.bin")

    assert pulled.read_bytes() == source.read_bytes()
    assert [(request.status, "range" in request.headers) for request in downloads(relay)] == [(200, False)]


def test_by_default_a_large_blob_the_server_serves_itself_comes_in_one_stream_from_the_first_byte(
    demo_server, contributor, relay, random_file, tmp_path
):
    """With no parallelism asked for, the route decides: the API serving the bytes itself (no redirect to storage)
    means one stream, which SHA-256 bounds, not the link; ranges would only add requests and audit entries."""
    source = random_file(SIZE)
    pushed = contributor.push(source, project=PROJECT, artifact="client-parallel")

    with Client(relay.url, demo_server.contributor_token, cache_dir=tmp_path / "auto", backoff=0) as client:
        assert client.downloads.parallelism is None
        pulled = client.pull(pushed.version["id"], tmp_path / "pulled.bin")

    assert pulled.read_bytes() == source.read_bytes()
    assert [(request.status, request.headers.get("range")) for request in downloads(relay)] == [(206, "bytes=0-")]
    assert audited_ranges(demo_server, pushed.version["artifact"], pushed.digest) == [(0, SIZE - 1)]


def test_a_digest_is_sized_by_its_state_then_pulled_in_ranges(contributor, puller, relay, random_file, tmp_path):
    source = random_file(SIZE)
    digest = contributor.upload(source, project=PROJECT).digest

    pulled = puller.pull(digest, tmp_path / "pulled.bin", project=PROJECT)

    assert pulled.read_bytes() == source.read_bytes()
    blob_requests = [request for request in relay.crossed if digest in request.path]
    assert (blob_requests[0].method, blob_requests[0].path.rsplit("/", 2)[-2]) == ("GET", "state")
    assert sorted(first_byte(request) for request in blob_requests[1:]) == PIECE_STARTS


@pytest.mark.parametrize("refused", [0, 2 * PIECE], ids=["first range", "a later range"])
def test_a_range_answered_with_the_whole_blob_makes_the_pull_one_plain_stream(
    contributor, puller, relay, random_file, tmp_path, refused
):
    source = random_file(SIZE)
    pushed = contributor.push(source, project=PROJECT, artifact="client-parallel")

    def spoil_if_range(head: bytes) -> bytes:
        # An If-Range the server does not match: RFC 9110 says it then sends the whole blob, with 200.
        if f"Range: bytes={refused}-".encode() in head:
            return re.sub(rb'If-Range: "[^"]*"', f"If-Range: {WRONG_ETAG}".encode(), head)
        return head

    relay.rewrite = spoil_if_range

    pulled = puller.pull(pushed.version["id"], tmp_path / "pulled.bin")

    assert pulled.read_bytes() == source.read_bytes()
    requests = downloads(relay)
    spoiled = next(index for index, request in enumerate(requests) if request.headers.get("if-range") == WRONG_ETAG)
    assert requests[spoiled].status == 200
    # Ranges already asked for by other threads may follow; then the whole blob, once, in one plain request.
    plain = [request for request in requests[spoiled + 1 :] if "range" not in request.headers]
    assert [request.status for request in plain] == [200]
    assert requests[-1] is plain[0]


def test_a_connection_cut_inside_a_range_resumes_inside_that_range(contributor, puller, relay, random_file, tmp_path):
    source = random_file(SIZE)
    pushed = contributor.push(source, project=PROJECT, artifact="client-parallel")
    cut_at = 3 * MiB + 2000  # answer bytes, its head (well under 2,000 bytes) included

    relay.cut_after = lambda request: cut_at if first_byte(request) == PIECE and relay.cuts == 0 else None

    pulled = puller.pull(pushed.version["id"], tmp_path / "pulled.bin")

    assert pulled.read_bytes() == source.read_bytes()
    assert relay.cuts == 1
    resumed = [request for request in downloads(relay) if PIECE < (first_byte(request) or 0) < 2 * PIECE]
    assert len(resumed) == 1
    assert PIECE + 3 * MiB < first_byte(resumed[0]) < PIECE + cut_at
    assert resumed[0].headers["range"].endswith(f"-{2 * PIECE - 1}")
    assert resumed[0].status == 206


def test_a_single_stream_cut_off_resumes_from_the_bytes_it_has(contributor, puller, relay, random_file, tmp_path):
    source = random_file(5 * MiB)
    pushed = contributor.push(source, project=PROJECT, artifact="client-parallel")
    relay.cut_after = lambda request: 2 * MiB + 2000 if relay.cuts == 0 and "/download/" in request.path else None

    pulled = puller.pull(pushed.version["id"], tmp_path / "pulled.bin")

    assert pulled.read_bytes() == source.read_bytes()
    first, resumed = downloads(relay)
    assert "range" not in first.headers
    assert 2 * MiB < first_byte(resumed) < 2 * MiB + 2000
    assert resumed.headers["if-range"] == f'"{pushed.digest}"'
    assert resumed.status == 206


def test_bytes_that_do_not_hash_right_leave_nothing_in_the_cache(contributor, puller, relay, random_file, tmp_path):
    source = random_file(SIZE)
    pushed = contributor.push(source, project=PROJECT, artifact="client-parallel")
    relay.corrupt = lambda request: MiB if first_byte(request) == 3 * PIECE else None

    with pytest.raises(DigestMismatch):
        puller.pull(pushed.version["id"], tmp_path / "pulled.bin")

    assert nothing_cached(tmp_path / "cache")
    assert not (tmp_path / "pulled.bin").exists()


def test_a_pull_interrupted_by_ctrl_c_leaves_no_partial_file_and_a_later_pull_succeeds(
    contributor, puller, random_file, tmp_path
):
    source = random_file(SIZE)
    pushed = contributor.push(source, project=PROJECT, artifact="client-parallel")

    def interrupt(done: int, total: int | None) -> None:
        if done > 10 * MiB:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        puller.pull(pushed.version["id"], tmp_path / "pulled.bin", progress=interrupt)

    assert nothing_cached(tmp_path / "cache")
    assert puller.pull(pushed.version["id"], tmp_path / "pulled.bin").read_bytes() == source.read_bytes()


def folder_holds_only(folder: Path, *names: str) -> bool:
    return sorted(path.name for path in folder.iterdir()) == sorted(names)


def test_a_pull_to_a_file_writes_it_as_the_bytes_arrive_and_keeps_its_own_copy_in_the_cache(
    contributor, puller, random_file, tmp_path
):
    source = random_file(5 * MiB)
    pushed = contributor.push(source, project=PROJECT, artifact="client-parallel")

    pulled = puller.pull(pushed.version["id"], tmp_path / "serving" / "model.bin")

    cached = puller.cache.cached_blob(pushed.digest)
    assert pulled.read_bytes() == cached.read_bytes() == source.read_bytes()
    assert pulled.stat().st_ino != cached.stat().st_ino  # the user's copy: editing it leaves the cache whole
    assert pulled.stat().st_mode & 0o777 == 0o644
    assert folder_holds_only(pulled.parent, "model.bin")


def test_one_stream_that_does_not_hash_right_leaves_nothing_beside_the_file_or_in_the_cache(
    contributor, puller, relay, random_file, tmp_path
):
    source = random_file(5 * MiB)
    pushed = contributor.push(source, project=PROJECT, artifact="client-parallel")
    relay.corrupt = lambda request: MiB if "/download/" in request.path else None
    (tmp_path / "serving").mkdir()

    with pytest.raises(DigestMismatch):
        puller.pull(pushed.version["id"], tmp_path / "serving" / "model.bin")

    assert nothing_cached(tmp_path / "cache")
    assert folder_holds_only(tmp_path / "serving")


def test_one_stream_interrupted_by_ctrl_c_leaves_nothing_beside_the_file(contributor, puller, random_file, tmp_path):
    source = random_file(5 * MiB)
    pushed = contributor.push(source, project=PROJECT, artifact="client-parallel")

    def interrupt(done: int, total: int | None) -> None:
        if done > 2 * MiB:
            raise KeyboardInterrupt

    (tmp_path / "serving").mkdir()
    with pytest.raises(KeyboardInterrupt):
        puller.pull(pushed.version["id"], tmp_path / "serving" / "model.bin", progress=interrupt)

    assert nothing_cached(tmp_path / "cache")
    assert folder_holds_only(tmp_path / "serving")
    assert puller.pull(pushed.version["id"], tmp_path / "serving" / "model.bin").read_bytes() == source.read_bytes()


def test_progress_hears_the_bytes_of_every_range_in_order_up_to_the_size(contributor, puller, random_file, tmp_path):
    pushed = contributor.push(random_file(SIZE), project=PROJECT, artifact="client-parallel")
    heard: list[tuple[int, int | None]] = []

    puller.pull(pushed.version["id"], tmp_path / "pulled.bin", progress=lambda *position: heard.append(position))

    positions = [done for done, _ in heard]
    assert positions == sorted(positions)
    assert heard[-1] == (SIZE, SIZE)


def test_the_bearer_token_and_if_range_go_to_the_servers_origin_only_never_to_a_presigned_url():
    api = "https://provenant.example.com/api/v1/artifact-versions/7/download/"
    route = Route(
        start=api,
        url=api,
        authorization="Bearer secret",
        user_agent="provenant-client/0",
        api_origin=origin(api),
        etag='"sha256:ab"',
    )
    presigned = "https://bucket.s3.example.com/blobs/ab?X-Amz-Signature=f00"

    to_server = route.headers("https://provenant.example.com:443/api/v1/blobs/x", (0, 99))
    to_storage = route.headers(presigned, (0, 99))

    assert to_server["Authorization"] == "Bearer secret"
    assert to_server["If-Range"] == '"sha256:ab"'
    assert "Authorization" not in to_storage
    assert "If-Range" not in to_storage
    assert to_storage["Range"] == to_server["Range"] == "bytes=0-99"
    assert "Authorization" not in route.headers("http://provenant.example.com/api/v1/blobs/x", None)  # not TLS


def test_a_thread_that_outlives_a_stopped_download_writes_nothing_more(tmp_path):
    """Once the download halts (failed, or fell back to one stream in a fresh file), a range thread still reading
    from the network may not write its block: the file may be gone, or its descriptor's number another file's."""
    assembly = _Assembly(size=4, pieces=[(0, 4)], written=[0])
    path = tmp_path / "download"
    with path.open("wb") as file:
        assert assembly.write(file.fileno(), 0, memoryview(b"ab"), 0)
        assembly.halt()
        assert not assembly.write(file.fileno(), 0, memoryview(b"cd"), 2)

    assert path.read_bytes() == b"ab"
    assert (assembly.written, assembly.total) == ([2], 2)


def test_a_copy_interrupted_while_being_placed_leaves_no_partial_file(tmp_path, monkeypatch):
    source = tmp_path / "cached"
    source.write_bytes(os.urandom(MiB))
    dest = tmp_path / "serving" / "model.bin"
    real_copy = transfers.shutil.copyfile

    def copy_then_interrupted(from_path, to_path):  # the real copy, then Ctrl-C before it is renamed into place
        real_copy(from_path, to_path)
        raise KeyboardInterrupt

    monkeypatch.setattr(transfers.shutil, "copyfile", copy_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        transfers.place(source, dest, link=False)

    assert list(dest.parent.iterdir()) == []
