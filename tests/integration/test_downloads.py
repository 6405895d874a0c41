"""Downloads from a real S3 server over HTTP: parallel byte ranges fetched with S3's own Range, bounded memory,
and presigned redirects that a plain HTTP client can follow (see conftest.py for the services).

Tests whose requests run in other threads commit their data (`django_db(transaction=True)`): each thread has its
own database connection and would not see a test's open transaction.
"""

import base64
import hashlib
import os
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connections
from rest_framework.test import APIClient

from artifacts.models import Blob
from artifacts.storage import CHUNK_SIZE, blob_storage
from artifacts.storage.reads import iter_blob
from tests.artifacts.factories import sha256
from tests.governance.factories import token_for

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def upload_to_new_project(api: APIClient, data: bytes, slug: str = "downloads") -> str:
    """The blob's download URL, after a project was made and the bytes PUT to it through the API."""
    response = api.post("/api/v1/projects/", {"slug": slug, "name": slug.title()}, format="json")
    assert response.status_code == 201, response.content
    url = f"/api/v1/projects/{slug}/blobs/{sha256(data)}"
    response = api.put(url, data, content_type="application/octet-stream")
    assert response.status_code == 201, response.content
    return url


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def repr_digest(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


@pytest.fixture
def get_object_calls() -> Iterator[list[dict[str, Any]]]:
    """What the app's S3 client asked of GetObject and what S3 answered, recorded by botocore's own event hooks
    on the client this thread's storage uses."""
    client = blob_storage().connection.meta.client
    calls: list[dict[str, Any]] = []

    def asked(params: dict[str, Any], **kwargs: Any) -> None:
        calls.append({"params": dict(params)})

    def answered(parsed: dict[str, Any], **kwargs: Any) -> None:
        calls[-1]["ContentLength"] = parsed.get("ContentLength")
        calls[-1]["ContentRange"] = parsed.get("ContentRange")

    client.meta.events.register("provide-client-params.s3.GetObject", asked, unique_id="test-downloads-asked")
    client.meta.events.register("after-call.s3.GetObject", answered, unique_id="test-downloads-answered")
    try:
        yield calls
    finally:
        client.meta.events.unregister("provide-client-params.s3.GetObject", unique_id="test-downloads-asked")
        client.meta.events.unregister("after-call.s3.GetObject", unique_id="test-downloads-answered")


@pytest.mark.django_db(transaction=True)
def test_a_large_blob_downloads_as_parallel_ranges_reassembled_byte_for_byte(api):
    data = os.urandom(12 * MiB + 4321)
    url = upload_to_new_project(api, data)
    authorization = f"Bearer {token_for(api.user)}"
    parts = 4
    bounds = [(i * len(data) // parts, (i + 1) * len(data) // parts - 1) for i in range(parts)]

    def fetch(first_last: tuple[int, int]) -> tuple[int, str, str, bytes]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=authorization)
        try:
            first, last = first_last
            response = client.get(url, HTTP_RANGE=f"bytes={first}-{last}")
            return response.status_code, response["Content-Range"], response["Repr-Digest"], body(response)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=parts) as pool:
        results = list(pool.map(fetch, bounds))

    assert [status for status, *_ in results] == [206] * parts
    assert [content_range for _, content_range, *_ in results] == [
        f"bytes {first}-{last}/{len(data)}" for first, last in bounds
    ]
    assert {digest for _, _, digest, _ in results} == {repr_digest(data)}
    assert b"".join(piece for *_, piece in results) == data


@pytest.mark.django_db
def test_a_range_is_fetched_from_s3_with_a_range_request_not_by_reading_the_whole_object(api, get_object_calls):
    data = os.urandom(12 * MiB)
    url = upload_to_new_project(api, data)
    first, last = 11 * MiB, 11 * MiB + 999

    tail = api.get(url, HTTP_RANGE="bytes=-1000")
    middle = api.get(url, HTTP_RANGE=f"bytes={first}-{last}")

    assert (tail.status_code, middle.status_code) == (206, 206)
    assert body(tail) == data[-1000:]
    assert body(middle) == data[first : last + 1]
    assert [call["params"].get("Range") for call in get_object_calls] == [
        f"bytes={len(data) - 1000}-{len(data) - 1}",
        f"bytes={first}-{last}",
    ]
    # S3 itself sent only the 1000 bytes of each range, out of 12 MiB.
    assert [call["ContentLength"] for call in get_object_calls] == [1000, 1000]
    assert get_object_calls[0]["ContentRange"] == f"bytes {len(data) - 1000}-{len(data) - 1}/{len(data)}"


@pytest.mark.django_db
def test_a_whole_blob_streams_from_s3_in_bounded_memory(api):
    data = os.urandom(12 * MiB)
    upload_to_new_project(api, data)
    key = Blob.objects.get(digest=sha256(data)[7:]).storage_key
    digest, size, largest_chunk = hashlib.sha256(), 0, 0

    tracemalloc.start()
    try:
        with iter_blob(key) as chunks:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                largest_chunk = max(largest_chunk, len(chunk))
                del chunk
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (digest.hexdigest(), size) == (sha256(data)[7:], len(data))
    assert largest_chunk <= CHUNK_SIZE
    # Reading the object whole (as django-storages' S3File does) would hold all 12 MiB at once.
    assert peak < 4 * CHUNK_SIZE, f"peak {peak / MiB:.1f} MiB while streaming 12 MiB"


@pytest.mark.django_db
def test_redirect_answers_302_to_a_presigned_url_that_serves_the_exact_bytes(api, settings):
    data = os.urandom(3 * MiB + 17)
    url = upload_to_new_project(api, data)
    settings.PROVENANT_S3_PRESIGN_SECONDS = 120

    response = api.get(url, {"redirect": "true"})

    assert response.status_code == 302, response.content
    assert response["Cache-Control"] == "no-store"
    assert response["ETag"] == f'"{sha256(data)}"'
    assert response["Repr-Digest"] == repr_digest(data)
    location = response["Location"]
    query = parse_qs(urlsplit(location).query)
    if "X-Amz-Expires" in query:
        assert query["X-Amz-Expires"] == ["120"]
    else:
        assert abs(int(query["Expires"][0]) - time.time() - 120) < 30
    with urllib.request.urlopen(location, timeout=30) as fetched:  # noqa: S310 (the test's own S3 server)
        assert fetched.status == 200
        assert fetched.headers["Content-Type"] == "application/octet-stream"
        assert fetched.headers["Content-Disposition"] == f'attachment; filename="{sha256(data).replace(":", "_")}"'
        assert fetched.read() == data
    ranged = urllib.request.Request(location, headers={"Range": "bytes=-100"})  # noqa: S310
    with urllib.request.urlopen(ranged, timeout=30) as fetched:  # noqa: S310
        assert fetched.status == 206
        assert fetched.read() == data[-100:]


@pytest.mark.django_db
def test_head_with_redirect_gets_a_url_signed_for_head(api):
    data = os.urandom(2048)
    url = upload_to_new_project(api, data)

    response = api.head(url, {"redirect": "true"})

    assert response.status_code == 302
    request = urllib.request.Request(response["Location"], method="HEAD")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as fetched:  # noqa: S310
        assert fetched.status == 200
        assert fetched.headers["Content-Length"] == str(len(data))


@pytest.mark.django_db
def test_the_redirect_setting_redirects_every_download_without_asking(api, settings):
    data = os.urandom(2048)
    url = upload_to_new_project(api, data)
    settings.PROVENANT_S3_REDIRECT_DOWNLOADS = True

    response = api.get(url)

    assert response.status_code == 302
    with urllib.request.urlopen(response["Location"], timeout=30) as fetched:  # noqa: S310
        assert fetched.read() == data


@pytest.mark.django_db
def test_a_corrupt_blob_gets_no_presigned_url(api):
    data = os.urandom(2048)
    url = upload_to_new_project(api, data)
    Blob.objects.filter(digest=sha256(data)[7:]).update(state=Blob.State.CORRUPT, verified_at="2026-01-01T00:00:00Z")

    for response in [api.get(url, {"redirect": "true"}), api.head(url, {"redirect": "true"})]:
        assert response.status_code == 409
        assert "Location" not in response
