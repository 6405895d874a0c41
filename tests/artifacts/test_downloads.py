"""Downloading blob bytes: byte ranges (RFC 9110), conditional requests, digest headers, the redirect option,
constant-memory reads from storage, answers handed to nginx (PROVENANT_ACCEL_REDIRECT), and corrupt bytes refused
on every path."""

import base64
import hashlib
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.files.storage import FileSystemStorage

from artifacts.models import Blob
from artifacts.storage import blob_storage
from artifacts.storage.reads import accel_redirect_uri, iter_blob
from core.models import AuditEntry
from tests.artifacts.factories import ArtifactVersionFactory, BlobFactory, sha256

pytestmark = pytest.mark.django_db

SIZE = 1000
MiB = 1024 * 1024


def blob_url(blob: Blob) -> str:
    return f"/api/v1/projects/{blob.project_links.get().project.slug}/blobs/{blob.prefixed_digest}"


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def etag(data: bytes) -> str:
    return f'"{sha256(data)}"'


@pytest.fixture
def data() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def url(data) -> str:
    return blob_url(BlobFactory(content=data))


def mark_corrupt(blob: Blob) -> None:
    Blob.objects.filter(pk=blob.pk).update(state=Blob.State.CORRUPT, verified_at="2026-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=10-10", 10, 11),
        ("bytes=900-", 900, SIZE),
        ("bytes=-50", SIZE - 50, SIZE),
        ("bytes=990-5000", 990, SIZE),  # a last byte past the end means "to the end"
        ("bytes=-5000", 0, SIZE),  # a suffix longer than the blob is the whole blob
        ("bytes=0-", 0, SIZE),
        ("Bytes = 0-0", 0, 1),  # the unit is case-insensitive
        ("bytes=0007-0009", 7, 10),
        ("bytes=0-" + "9" * 5000, 0, SIZE),  # thousands of digits cost nothing and mean "to the end"
    ],
)
def test_a_single_range_is_answered_with_206_and_exactly_those_bytes(api, data, url, header, start, end):
    response = api.get(url, HTTP_RANGE=header)

    assert response.status_code == 206, body(response)
    assert body(response) == data[start:end]
    assert response["Content-Range"] == f"bytes {start}-{end - 1}/{SIZE}"
    assert response["Content-Length"] == str(end - start)


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0", "bytes=" + "9" * 5000 + "-"])
def test_a_range_past_the_end_is_416_naming_the_size(api, data, url, header):
    response = api.get(url, HTTP_RANGE=header)

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{SIZE}"
    assert response.json()["code"] == "range_not_satisfiable"
    assert response["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    "header",
    ["bytes=5-1", "bytes=abc", "items=0-5", "bytes=", "bytes=-", "0-5", "bytes=1-2-3", "bytes 0-5", "bytes=0x10-"],
)
def test_a_range_header_that_is_not_valid_syntax_is_ignored(api, data, url, header):
    response = api.get(url, HTTP_RANGE=header)

    assert response.status_code == 200
    assert body(response) == data
    assert "Content-Range" not in response


def test_several_ranges_get_the_whole_blob_with_200(api, data, url):
    response = api.get(url, HTTP_RANGE="bytes=0-9, 20-29")

    assert response.status_code == 200
    assert body(response) == data
    assert response["Content-Digest"] == f"sha-256=:{b64_sha256(data)}:"


def test_if_range_with_the_etag_honours_the_range(api, data, url):
    response = api.get(url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag(data))

    assert response.status_code == 206
    assert body(response) == data[:10]


@pytest.mark.parametrize(
    "if_range",
    [f'"{sha256(b"an older version")}"', "W/{etag}", "Wed, 21 Oct 2015 07:28:00 GMT"],
)
def test_if_range_that_does_not_match_strongly_sends_the_whole_blob(api, data, url, if_range):
    response = api.get(url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=if_range.format(etag=etag(data)))

    assert response.status_code == 200
    assert body(response) == data


@pytest.mark.parametrize("if_none_match", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_if_none_match_with_the_etag_is_304_without_a_body(api, data, url, if_none_match):
    response = api.get(url, HTTP_IF_NONE_MATCH=if_none_match.format(etag=etag(data)), HTTP_RANGE="bytes=0-9")

    assert response.status_code == 304
    assert body(response) == b""
    assert response["ETag"] == etag(data)
    assert response["Repr-Digest"] == f"sha-256=:{b64_sha256(data)}:"


def test_if_none_match_with_another_etag_sends_the_blob(api, data, url):
    response = api.get(url, HTTP_IF_NONE_MATCH=f'"{sha256(b"other")}"')

    assert response.status_code == 200
    assert body(response) == data


@pytest.mark.parametrize("range_header", [None, "bytes=100-199", "bytes=2000-"])
def test_head_answers_the_headers_of_get_without_a_body(api, url, range_header):
    extra = {"HTTP_RANGE": range_header} if range_header else {}
    get, head = api.get(url, **extra), api.head(url, **extra)

    assert head.status_code == get.status_code
    assert head.content == b""
    for name in ["ETag", "Repr-Digest", "Content-Digest", "Content-Length", "Content-Range", "Content-Type",
                 "Content-Disposition", "Cache-Control", "Accept-Ranges", "X-Content-Type-Options"]:  # fmt: skip
        assert head.headers.get(name) == get.headers.get(name), name


def test_whole_blob_carries_content_and_representation_digests_and_caching_headers(api, data, url):
    response = api.get(url)

    assert response.status_code == 200
    assert response.streaming
    assert response["ETag"] == etag(data)
    assert response["Repr-Digest"] == f"sha-256=:{b64_sha256(data)}:"
    assert response["Content-Digest"] == response["Repr-Digest"]
    assert response["Content-Length"] == str(SIZE)
    assert response["Accept-Ranges"] == "bytes"
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == f'attachment; filename="{sha256(data).replace(":", "_")}"'


def test_a_range_carries_the_digest_of_the_whole_blob_but_no_content_digest(api, data, url):
    response = api.get(url, HTTP_RANGE="bytes=0-9")

    assert response.status_code == 206
    assert response["Repr-Digest"] == f"sha-256=:{b64_sha256(data)}:"
    assert "Content-Digest" not in response
    assert response["ETag"] == etag(data)
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"


def test_parallel_range_requests_reassemble_the_blob_byte_for_byte(api):
    data = os.urandom(3 * MiB + 12345)
    url = blob_url(BlobFactory(content=data))
    parts = 5
    bounds = [(i * len(data) // parts, (i + 1) * len(data) // parts - 1) for i in range(parts)]
    # The requests are answered here (the test database lives in this thread's transaction); their bodies, which
    # hold open reads of the same stored file, are streamed concurrently.
    responses = [api.get(url, HTTP_RANGE=f"bytes={first}-{last}") for first, last in bounds]
    assert {response.status_code for response in responses} == {206}

    with ThreadPoolExecutor(max_workers=parts) as pool:
        pieces = list(pool.map(body, responses))

    assert b"".join(pieces) == data
    assert hashlib.sha256(b"".join(pieces)).digest() == base64.b64decode(responses[0]["Repr-Digest"][9:-1])


class ReadRecorder:
    """A stored file that remembers where each read started and how much it returned."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.reads: list[tuple[int, int]] = []

    def seek(self, *args) -> int:
        return self.handle.seek(*args)

    def read(self, size: int = -1) -> bytes:
        position = self.handle.tell()
        chunk = self.handle.read(size)
        self.reads.append((position, len(chunk)))
        return chunk

    def close(self) -> None:
        self.handle.close()


def test_a_range_at_the_end_of_a_large_blob_reads_only_those_bytes(api, monkeypatch):
    data = os.urandom(8 * MiB)
    url = blob_url(BlobFactory(content=data))
    opened: list[ReadRecorder] = []
    original_open = FileSystemStorage.open

    def recording_open(storage, name, mode="rb"):
        opened.append(ReadRecorder(original_open(storage, name, mode)))
        return opened[-1]

    monkeypatch.setattr(FileSystemStorage, "open", recording_open)

    response = api.get(url, HTTP_RANGE="bytes=-100")

    assert body(response) == data[-100:]
    [recorder] = opened
    assert recorder.reads[0] == (len(data) - 100, 100)
    assert sum(size for _, size in recorder.reads) == 100


def test_iter_blob_reads_any_slice_in_bounded_chunks_and_whole_blobs_by_default():
    data = os.urandom(3 * 1024 + 5)
    key = BlobFactory(content=data).storage_key

    with iter_blob(key) as chunks:
        assert b"".join(chunks) == data
    with iter_blob(key, 1000, 2500, chunk_size=512) as chunks:
        pieces = list(chunks)
    assert b"".join(pieces) == data[1000:2500]
    assert max(len(piece) for piece in pieces) <= 512
    assert b"".join(iter_blob(key, 3000)) == data[3000:]
    assert b"".join(iter_blob(key, 10, 10)) == b""


def test_iter_blob_of_missing_bytes_fails_before_the_first_chunk(isolated_blob_folder):
    blob = BlobFactory()
    (isolated_blob_folder / blob.storage_key).unlink()

    with pytest.raises(FileNotFoundError):
        iter_blob(blob.storage_key)


@pytest.mark.parametrize("redirect", ["true", "1"])
def test_redirect_is_ignored_with_local_storage_and_the_bytes_are_streamed(api, data, url, redirect):
    response = api.get(url, {"redirect": redirect})

    assert response.status_code == 200
    assert body(response) == data


def test_redirect_setting_is_ignored_with_local_storage(api, data, url, settings):
    settings.PROVENANT_S3_REDIRECT_DOWNLOADS = True

    response = api.get(url)

    assert response.status_code == 200
    assert body(response) == data


@pytest.mark.parametrize("if_none_match", [None, "*"])
def test_redirect_that_is_not_a_boolean_is_a_400(api, url, if_none_match):
    # Found by the fuzzer: with a matching If-None-Match the malformed parameter was answered 304.
    headers = {"HTTP_IF_NONE_MATCH": if_none_match} if if_none_match else {}
    response = api.get(url, {"redirect": "-1.7976931348623157e+308"}, **headers)

    assert response.status_code == 400
    assert response.json()["field"] == "redirect"


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("get", {}),
        ("head", {}),
        ("get", {"HTTP_RANGE": "bytes=0-9"}),
        ("get", {"HTTP_RANGE": "bytes=5000-"}),
        ("get", {"QUERY_STRING": "redirect=true"}),
        ("head", {"QUERY_STRING": "redirect=true"}),
    ],
)
def test_corrupt_blob_is_refused_on_every_download_path(api, data, method, extra):
    blob = BlobFactory(content=data)
    mark_corrupt(blob)

    response = getattr(api, method)(blob_url(blob), **extra)

    assert response.status_code == 409
    if method == "get":
        assert response.json()["code"] == "blob_corrupt"


def test_corrupt_blob_is_refused_even_to_a_client_holding_its_etag(api, data):
    blob = BlobFactory(content=data)
    mark_corrupt(blob)

    assert api.get(blob_url(blob), HTTP_IF_NONE_MATCH=etag(data)).status_code == 409


def test_artifact_version_download_supports_ranges_conditionals_and_head(api, data):
    version = ArtifactVersionFactory(content=data, metadata={"filename": "model.safetensors"})
    url = f"/api/v1/artifact-versions/{version.pk}/download/"

    partial = api.get(url, HTTP_RANGE="bytes=-10")
    head = api.head(url)

    assert partial.status_code == 206
    assert body(partial) == data[-10:]
    assert partial["Content-Range"] == f"bytes {SIZE - 10}-{SIZE - 1}/{SIZE}"
    assert partial["Content-Disposition"] == 'attachment; filename="model.safetensors"'
    assert head.status_code == 200
    assert head.content == b""
    assert head["Content-Length"] == str(SIZE)
    assert head["Repr-Digest"] == f"sha-256=:{b64_sha256(data)}:"
    assert api.get(url, HTTP_IF_NONE_MATCH=etag(data)).status_code == 304
    assert api.get(url, HTTP_RANGE="bytes=1000-").status_code == 416


@pytest.mark.parametrize(("method", "extra"), [("get", {}), ("head", {}), ("get", {"HTTP_RANGE": "bytes=0-9"})])
def test_corrupt_blob_is_refused_through_the_artifact_version_download(api, data, method, extra):
    version = ArtifactVersionFactory(content=data)
    mark_corrupt(version.blob)

    response = getattr(api, method)(f"/api/v1/artifact-versions/{version.pk}/download/", **extra)

    assert response.status_code == 409


# Behind nginx (PROVENANT_ACCEL_REDIRECT) ----------------------------------------------------------------------
# What nginx then sends is checked against a real nginx in tests/integration/test_nginx_accel.py.

ACCEL = "/_provenant_blobs/"
#: What the app leaves to nginx on an X-Accel-Redirect answer: nginx writes them from the file and the range.
NGINX_WRITES = {"Content-Length", "Content-Range"}
STREAMED_HEADERS = ["ETag", "Repr-Digest", "Content-Digest", "Content-Type", "Content-Disposition", "Cache-Control",
                    "Accept-Ranges", "X-Content-Type-Options"]  # fmt: skip


@pytest.fixture
def accel(settings) -> str:
    settings.PROVENANT_ACCEL_REDIRECT = ACCEL
    return ACCEL


def downloads(api, url: str, settings, **extra) -> tuple:
    """The streamed answer (setting off), then the one handed to nginx (setting on), to the same request."""
    settings.PROVENANT_ACCEL_REDIRECT = ""
    streamed = api.get(url, **extra)
    settings.PROVENANT_ACCEL_REDIRECT = ACCEL
    return streamed, api.get(url, **extra)


def test_a_whole_download_is_handed_to_nginx_with_every_header_of_the_streamed_answer(api, data, settings):
    blob = BlobFactory(content=data)
    streamed, handed = downloads(api, blob_url(blob), settings)

    assert handed["X-Accel-Redirect"] == ACCEL + blob.storage_key
    assert not handed.streaming
    assert handed.content == b""
    assert handed["Content-Length"] == "0"
    assert "Content-Range" not in handed
    # nginx's range filter adds Accept-Ranges to every whole answer; a second copy would repeat the header.
    assert "Accept-Ranges" not in handed
    for name in set(STREAMED_HEADERS) - {"Accept-Ranges"}:
        assert handed[name] == streamed[name], name
    assert handed["Content-Digest"] == f"sha-256=:{b64_sha256(data)}:"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 100), ("bytes=-10", SIZE - 10, SIZE), ("bytes=990-", 990, SIZE), ("bytes=0-5000", 0, SIZE)],
)
def test_a_range_is_handed_to_nginx_which_reads_the_same_range_from_the_header(
    api, data, url, settings, header, start, end
):
    streamed, handed = downloads(api, url, settings, HTTP_RANGE=header, HTTP_IF_RANGE=etag(data))

    assert streamed.status_code == 206
    assert streamed["Content-Range"] == f"bytes {start}-{end - 1}/{SIZE}"
    assert handed["X-Accel-Redirect"].startswith(ACCEL)
    assert "Content-Range" not in handed
    assert handed["Content-Length"] == "0"
    # nginx adds no Accept-Ranges to a 206: the app's is kept on the redirect.
    assert "Content-Digest" not in handed
    for name in set(STREAMED_HEADERS) - {"Content-Digest"}:
        assert handed[name] == streamed[name], name


def test_an_if_range_that_does_not_match_is_handed_to_nginx_as_the_whole_blob(api, data, url, settings):
    streamed, handed = downloads(api, url, settings, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=f'"{sha256(b"older")}"')

    assert streamed.status_code == 200
    assert "X-Accel-Redirect" in handed
    assert handed["Content-Digest"] == streamed["Content-Digest"]
    assert "Accept-Ranges" not in handed


@pytest.mark.parametrize(
    ("extra", "status", "start", "end"),
    [
        ({"HTTP_RANGE": "Bytes = 0-0"}, 206, 0, 1),  # nginx wants `bytes=` with nothing around the `=`
        ({"HTTP_RANGE": "bytes=0-9, 20-29"}, 200, 0, SIZE),
        ({"HTTP_RANGE": "bytes=5-1"}, 200, 0, SIZE),  # nginx answers 416 where the app ignores it
        ({"HTTP_RANGE": "bytes=0-" + "9" * 19}, 206, 0, SIZE),  # past nginx's off_t: 416 there
        ({"HTTP_RANGE": "bytes=-0"}, 416, 0, 0),
        ({"HTTP_RANGE": "bytes=5000-", "HTTP_IF_RANGE": '"other"'}, 200, 0, SIZE),
        ({"HTTP_IF_MATCH": '"other"'}, 200, 0, SIZE),  # nginx would answer 412
        ({"HTTP_IF_UNMODIFIED_SINCE": "Wed, 21 Oct 2015 07:28:00 GMT"}, 200, 0, SIZE),
    ],
)
def test_requests_nginx_would_answer_otherwise_are_streamed_by_the_app(
    api, data, url, accel, extra, status, start, end
):
    response = api.get(url, **extra)

    assert response.status_code == status
    assert "X-Accel-Redirect" not in response
    if status != 416:
        assert body(response) == data[start:end]


def test_head_is_answered_by_the_app_as_before(api, url, settings):
    settings.PROVENANT_ACCEL_REDIRECT = ""
    before = api.head(url, HTTP_RANGE="bytes=0-9")
    settings.PROVENANT_ACCEL_REDIRECT = ACCEL
    head = api.head(url, HTTP_RANGE="bytes=0-9")

    assert head.status_code == before.status_code == 206
    assert {**head.headers, "X-Request-ID": ""} == {**before.headers, "X-Request-ID": ""}


@pytest.mark.parametrize(
    ("extra", "status"),
    [({"HTTP_IF_NONE_MATCH": "{etag}"}, 304), ({"HTTP_RANGE": "bytes=1000-"}, 416),
     ({"QUERY_STRING": "redirect=maybe"}, 400)],
)  # fmt: skip
def test_answers_without_bytes_are_the_apps_own(api, data, url, accel, extra, status):
    extra = {name: value.format(etag=etag(data)) for name, value in extra.items()}

    response = api.get(url, **extra)

    assert response.status_code == status
    assert "X-Accel-Redirect" not in response
    assert not AuditEntry.objects.filter(action="blob.downloaded").exists()


def test_a_corrupt_blob_is_refused_and_never_handed_to_nginx(api, data, accel):
    blob = BlobFactory(content=data)
    mark_corrupt(blob)

    response = api.get(blob_url(blob))

    assert response.status_code == 409
    assert "X-Accel-Redirect" not in response


@pytest.mark.parametrize(
    ("header", "logged_range"), [(None, None), ("bytes=100-199", {"first": 100, "last": 199, "length": 100})]
)
def test_a_download_handed_to_nginx_is_audited_as_one_streamed(api, url, accel, header, logged_range):
    response = api.get(url, **({"HTTP_RANGE": header} if header else {}))

    assert "X-Accel-Redirect" in response
    [entry] = AuditEntry.objects.filter(action="blob.downloaded")
    assert json.loads(entry.changes).get("range") == logged_range


def test_accel_redirect_uri_names_the_stored_file_quoted_for_a_uri(isolated_blob_folder):
    blob = BlobFactory()
    blob_storage().save("odd/a name?.bin", io.BytesIO(b"x"))

    assert accel_redirect_uri(blob.storage_key, prefix=ACCEL) == ACCEL + blob.storage_key
    # Unquoted, nginx would take `?.bin` for a query string and look for `odd/a name`.
    assert accel_redirect_uri("odd/a name?.bin", prefix=ACCEL) == ACCEL + "odd/a%20name%3F.bin"


def test_a_missing_file_fails_in_the_app_as_a_streamed_read_does(isolated_blob_folder):
    blob = BlobFactory()
    (isolated_blob_folder / blob.storage_key).unlink()

    with pytest.raises(FileNotFoundError):
        accel_redirect_uri(blob.storage_key, prefix=ACCEL)


def test_bytes_in_s3_are_never_handed_to_nginx(settings):
    options = {"bucket_name": "provenant-unit", "endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"}
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }

    # Decided before any request to the bucket (nothing listens on port 9): nginx cannot read a bucket from disk.
    assert accel_redirect_uri("sha256/00/00/" + "0" * 64, prefix=ACCEL) is None
