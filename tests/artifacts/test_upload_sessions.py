"""Resumable uploads: chunks in order, resume after an interruption, nothing kept unless the digest matches."""

import io
import json
import os
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from artifacts.models import Blob, ProjectBlob, UploadSession
from artifacts.models.blobs import storage_key_for
from artifacts.services import uploads
from artifacts.storage.writes import MAX_PARTS, MIN_PART_SIZE, min_chunk_size, parts_past_the_limit, sink_for
from core.errors import InvalidInput
from core.models import AuditEntry
from tests.artifacts.factories import BlobFactory, ProjectFactory, UserFactory, sha256
from tests.governance.factories import token_for
from tests.schema_contract import assert_conforms

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


@pytest.fixture
def data() -> bytes:
    return os.urandom(11 * MiB + 123)


def start(api, project, data, **extra):
    return api.post(f"/api/v1/projects/{project.slug}/uploads/", {"digest": sha256(data), **extra}, format="json")


def patch(api, url, chunk: bytes, offset: int):
    return api.patch(url, chunk, content_type="application/octet-stream", HTTP_UPLOAD_OFFSET=str(offset))


def staged(folder) -> list[str]:
    uploads_folder = folder / "uploads"
    return sorted(os.listdir(uploads_folder)) if uploads_folder.exists() else []


def upload_in_chunks(api, url, data, size=5 * MiB):
    for offset in range(0, len(data), size):
        response = patch(api, url, data[offset : offset + size], offset)
        assert response.status_code == 202, response.json()
    return api.put(f"{url}?digest={sha256(data)}")


def test_a_file_sent_in_chunks_is_kept_at_its_content_address(api, data, isolated_blob_folder):
    project = ProjectFactory()
    session = start(api, project, data, size=len(data))
    assert session.status_code == 201, session.json()
    assert session.json()["offset"] == 0
    assert session.json()["min_chunk_size"] == MIN_PART_SIZE

    finished = upload_in_chunks(api, session.json()["url"], data)

    assert finished.status_code == 201, finished.json()
    assert finished.json()["digest"] == sha256(data)
    blob = Blob.objects.get()
    assert (isolated_blob_folder / blob.storage_key).read_bytes() == data
    assert ProjectBlob.objects.filter(project=project, blob=blob).exists()
    assert UploadSession.objects.get().state == UploadSession.State.COMPLETED
    assert staged(isolated_blob_folder) == []


def a_finish_killed_after_moving_the_bytes(session: UploadSession) -> None:
    """What a web process killed inside the finishing PUT leaves: the bytes moved to the blob's key (the sink's
    complete ran), its transaction never committed, and its writer lease left to run out."""
    sink_for(session.storage_state).complete(session.storage_state, storage_key_for(session.digest))
    UploadSession.objects.filter(pk=session.pk).update(
        writer=uuid.uuid4(), writer_until=timezone.now() - timedelta(seconds=1)
    )


def test_the_clients_repeat_of_a_finish_killed_after_moving_the_bytes_keeps_the_blob(api, data, isolated_blob_folder):
    project = ProjectFactory()
    url = start(api, project, data, size=len(data)).json()["url"]
    for offset in range(0, len(data), 5 * MiB):
        assert patch(api, url, data[offset : offset + 5 * MiB], offset).status_code == 202
    a_finish_killed_after_moving_the_bytes(UploadSession.objects.get())

    repeated = api.put(f"{url}?digest={sha256(data)}")

    assert repeated.status_code == 201, repeated.json()
    blob = Blob.objects.get()
    assert (isolated_blob_folder / blob.storage_key).read_bytes() == data
    assert UploadSession.objects.get().state == UploadSession.State.COMPLETED


def test_repeating_a_finished_uploads_put_answers_the_same_blob_again(api, data):
    project = ProjectFactory()
    url = start(api, project, data, size=len(data)).json()["url"]
    first = upload_in_chunks(api, url, data)
    assert first.status_code == 201

    again = api.put(f"{url}?digest={sha256(data)}")
    without_digest = api.put(url)

    assert (again.status_code, without_digest.status_code) == (200, 200)
    assert again.json() == without_digest.json() == first.json()
    assert api.get(again.json()["url"]).status_code == 200
    assert api.get(url).json()["state"] == "completed"
    assert Blob.objects.count() == 1


def test_a_finished_upload_refuses_more_bytes_and_another_digest_and_names_its_blob(api, data):
    project = ProjectFactory()
    url = start(api, project, data, size=len(data)).json()["url"]
    upload_in_chunks(api, url, data)

    more = patch(api, url, data[:MIN_PART_SIZE], len(data))
    other = api.put(f"{url}?digest={sha256(b'other')}")

    assert more.status_code == 409
    assert f"projects/{project.slug}/blobs/{sha256(data)}" in more.json()["detail"]
    assert other.status_code == 400
    assert f"finished as {sha256(data)}" in other.json()["detail"]


def test_a_finished_session_is_removed_quietly_once_expired_and_its_blob_stays(api, data, isolated_blob_folder):
    url = start(api, ProjectFactory(), data, size=len(data)).json()["url"]
    upload_in_chunks(api, url, data)
    UploadSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert api.put(url).status_code == 404
    assert uploads.upload_sessions_expire() == 0  # it had ended when it finished
    assert not UploadSession.objects.exists()
    assert not AuditEntry.objects.filter(action="upload_session.expired").exists()
    assert (isolated_blob_folder / Blob.objects.get().storage_key).read_bytes() == data


def test_an_unknown_upload_session_is_a_404_that_names_it(api):
    response = api.get("/api/v1/uploads/00000000-0000-0000-0000-000000000009/")
    assert response.status_code == 404
    assert response.json()["detail"] == "No upload session with id 00000000-0000-0000-0000-000000000009."


def test_an_unknown_project_slug_is_a_404_that_names_it(api, data):
    response = api.post("/api/v1/projects/no-such-project/uploads/", {"digest": sha256(data)}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"] == "No project 'no-such-project'."


def test_a_project_lists_the_callers_own_upload_sessions_newest_first(api, api_as, data):
    project = ProjectFactory()
    first = start(api, project, data, size=len(data)).json()
    second = start(api, project, data[:100]).json()
    patch(api, second["url"], data[:100], 0)
    start(api, ProjectFactory(), data)  # another project's
    expired = start(api, project, data[:200]).json()
    UploadSession.objects.filter(pk=expired["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    stranger = UserFactory(is_superuser=True)
    start(api_as(stranger), project, data[:300])

    listed = api.get(f"/api/v1/projects/{project.slug}/uploads/")

    assert listed.status_code == 200
    rows = listed.json()["results"]
    assert [row["id"] for row in rows] == [second["id"], first["id"]]
    assert rows[0]["offset"] == 100
    assert rows[1] | {"parts": None} == first | {"parts": None}  # the session as POST gave it, bar the parts
    assert {"state", "offset", "size", "expires_at", "url"} <= set(rows[0])
    assert "parts" not in rows[0]
    assert api_as(stranger).get(f"/api/v1/projects/{project.slug}/uploads/").json()["results"][0]["digest"] == (
        sha256(data[:300])
    )


def test_listing_upload_sessions_costs_the_same_queries_whatever_the_page_size(api, data):
    project = ProjectFactory()
    for size in range(1, 13):
        start(api, project, data[:size])
    url = f"/api/v1/projects/{project.slug}/uploads/"

    def queries_for(page_size: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = api.get(url, {"page_size": page_size})
        assert len(response.json()["results"]) == page_size
        return len(captured)

    assert queries_for(2) == queries_for(12)
    second_page = api.get(api.get(url, {"page_size": 5}).json()["next"])
    assert len(second_page.json()["results"]) == 5


def test_an_interrupted_chunk_leaves_the_session_where_it_was_and_the_upload_resumes(api, data):
    project = ProjectFactory()
    url = start(api, project, data).json()["url"]
    assert patch(api, url, data[: 5 * MiB], 0).status_code == 202

    # The connection drops three megabytes into the second chunk.
    session = UploadSession.objects.get()
    with pytest.raises(InvalidInput, match="ended after"):
        uploads.upload_session_append(
            session=session, stream=io.BytesIO(data[5 * MiB : 8 * MiB]), start=5 * MiB, length=5 * MiB
        )

    where = api.get(url)
    assert where.json()["offset"] == 5 * MiB
    assert where["Upload-Offset"] == str(5 * MiB)
    assert where["Range"] == f"0-{5 * MiB - 1}"
    assert patch(api, url, data[5 * MiB : 10 * MiB], 5 * MiB).status_code == 202
    assert patch(api, url, data[10 * MiB :], 10 * MiB).status_code == 202
    finished = api.put(f"{url}?digest={sha256(data)}")
    assert finished.status_code == 201, finished.json()


def test_a_chunk_that_does_not_start_at_the_offset_is_refused(api, data):
    url = start(api, ProjectFactory(), data).json()["url"]
    patch(api, url, data[: 5 * MiB], 0)

    skipped = patch(api, url, data[6 * MiB : 11 * MiB], 6 * MiB)
    repeated = patch(api, url, data[: 5 * MiB], 0)
    assert (skipped.status_code, repeated.status_code) == (416, 416)
    assert f"starts at {5 * MiB}" in skipped.json()["detail"]
    assert api.get(url).json()["offset"] == 5 * MiB


def test_a_chunk_must_say_where_it_starts(api, data):
    url = start(api, ProjectFactory(), data).json()["url"]
    response = api.patch(url, data[: 5 * MiB], content_type="application/octet-stream")
    assert response.status_code == 400
    assert "Upload-Offset" in response.json()["detail"]


def test_content_range_is_accepted_and_checked_against_the_body(api, data):
    url = start(api, ProjectFactory(), data).json()["url"]
    chunk = data[: 5 * MiB]
    wrong = api.patch(url, chunk, content_type="application/octet-stream", HTTP_CONTENT_RANGE="0-99")
    right = api.patch(url, chunk, content_type="application/octet-stream", HTTP_CONTENT_RANGE=f"0-{5 * MiB - 1}")
    assert wrong.status_code == 400
    assert right.status_code == 202


def test_only_the_last_chunk_may_be_short(api, data):
    url = start(api, ProjectFactory(), data).json()["url"]
    assert patch(api, url, data[:MiB], 0).status_code == 202
    refused = patch(api, url, data[MiB : 6 * MiB], MiB)
    assert refused.status_code == 400
    assert refused.json()["code"] == "chunk_too_small"


def test_a_short_chunk_before_the_announced_end_is_refused_and_leaves_the_session_as_it_was(
    api, data, isolated_blob_folder
):
    url = start(api, ProjectFactory(), data, size=len(data)).json()["url"]

    refused = patch(api, url, data[:MiB], 0)

    assert refused.status_code == 400
    assert refused.json()["code"] == "chunk_too_small"
    detail = refused.json()["detail"]
    assert f"has {MiB} bytes" in detail
    assert f"at least {MIN_PART_SIZE}" in detail
    assert "still stands at 0" in detail
    assert api.get(url).json()["offset"] == 0
    assert staged(isolated_blob_folder) == []
    assert not UploadSession.objects.get().short_chunk_received
    # The refusal is followable: the same upload goes on with chunks of the minimum.
    assert upload_in_chunks(api, url, data).status_code == 201


def test_a_short_chunk_in_the_middle_is_refused_even_after_full_ones(api, data):
    url = start(api, ProjectFactory(), data, size=len(data)).json()["url"]
    assert patch(api, url, data[: 5 * MiB], 0).status_code == 202

    refused = patch(api, url, data[5 * MiB : 6 * MiB], 5 * MiB)

    assert refused.status_code == 400
    assert f"still stands at {5 * MiB}" in refused.json()["detail"]
    assert patch(api, url, data[5 * MiB : 10 * MiB], 5 * MiB).status_code == 202
    assert patch(api, url, data[10 * MiB :], 10 * MiB).status_code == 202  # short, but it is the last
    assert api.put(url).status_code == 201


def test_with_no_size_announced_a_short_chunk_is_the_last_and_finishing_still_works(api, data):
    content = data[: 6 * MiB + 7]
    url = start(api, ProjectFactory(), content).json()["url"]
    assert patch(api, url, content[: 5 * MiB], 0).status_code == 202
    assert patch(api, url, content[5 * MiB :], 5 * MiB).status_code == 202

    more = patch(api, url, b"x" * MIN_PART_SIZE, len(content))

    assert more.status_code == 400
    assert more.json()["code"] == "chunk_too_small"
    assert "finish the upload now (PUT" in more.json()["detail"]
    finished = api.put(f"{url}?digest={sha256(content)}")
    assert finished.status_code == 201, finished.json()


def test_a_last_chunk_sent_with_the_finish_must_reach_the_announced_size(api, data, isolated_blob_folder):
    url = start(api, ProjectFactory(), data, size=len(data)).json()["url"]
    patch(api, url, data[: 5 * MiB], 0)

    response = api.put(url, data[5 * MiB : 10 * MiB], content_type="application/octet-stream")

    assert response.status_code == 400
    assert response.json()["code"] == "incomplete"
    assert f"{len(data) - 10 * MiB} would still be missing" in response.json()["detail"]
    assert api.get(url).json()["offset"] == 5 * MiB
    assert (isolated_blob_folder / UploadSession.objects.get().storage_state["staging"]).stat().st_size == 5 * MiB


def test_a_session_left_stranded_by_an_earlier_short_chunk_says_to_cancel(api, data):
    url = start(api, ProjectFactory(), data, size=len(data)).json()["url"]
    UploadSession.objects.update(offset=MiB, short_chunk_received=True)

    response = patch(api, url, data[MiB : 6 * MiB], MiB)

    assert response.status_code == 400
    assert "cancel it (DELETE)" in response.json()["detail"]
    assert api.delete(url).status_code == 204


def test_a_very_large_announced_size_raises_the_minimum_chunk_so_the_parts_suffice(api):
    size = MAX_PARTS * MIN_PART_SIZE * 3
    session = api.post(
        f"/api/v1/projects/{ProjectFactory().slug}/uploads/", {"digest": sha256(b"big"), "size": size}, format="json"
    )
    minimum = session.json()["min_chunk_size"]
    assert minimum > MIN_PART_SIZE
    assert -(-size // minimum) < MAX_PARTS
    assert min_chunk_size(None) == MIN_PART_SIZE


def test_an_s3_upload_of_unannounced_size_is_told_before_it_runs_out_of_parts(api, user):
    """Refused under the lock, before a byte is read or S3 is called: the unit suite needs no bucket for it."""
    part_size = 8 * MiB
    session = UploadSession.objects.create(
        project=ProjectFactory(), created_by=user, digest=sha256(b"huge").removeprefix("sha256:"),
        offset=(MAX_PARTS - 1) * MIN_PART_SIZE, hash_state=b"",
        storage_state={"sink": "s3", "key": "k", "upload_id": "u", "part_size": part_size, "parts": [],
                       "next_part": MAX_PARTS},
        expires_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    chunk = b"x" * (2 * part_size)

    response = patch(api, f"/api/v1/uploads/{session.pk}/", chunk, session.offset)

    assert response.status_code == 400
    assert response.json()["code"] == "too_many_parts"
    assert f"in {MAX_PARTS - 1} parts" in response.json()["detail"]
    assert f"up to {2 * part_size - 1} bytes still fits" in response.json()["detail"]
    session.refresh_from_db()
    assert (session.offset, session.writer) == ((MAX_PARTS - 1) * MIN_PART_SIZE, None)
    assert parts_past_the_limit(session.storage_state, 2 * part_size - 1) == 0
    assert parts_past_the_limit({"sink": "file"}, 10**12) == 0


@pytest.mark.parametrize("method", ["patch", "put"])
def test_a_chunked_body_without_content_length_is_a_411(api, data, method):
    url = start(api, ProjectFactory(), data).json()["url"]
    response = getattr(api, method)(
        url, data[: 5 * MiB], content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="0",
        HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH="",
    )  # fmt: skip
    assert response.status_code == 411
    assert response.json()["code"] == "length_required"
    assert "Content-Length" in response.json()["detail"]
    assert api.get(url).json()["offset"] == 0


def test_the_last_chunk_can_come_with_the_finishing_request(api, data):
    url = start(api, ProjectFactory(), data).json()["url"]
    patch(api, url, data[: 10 * MiB], 0)
    finished = api.put(
        f"{url}?digest={sha256(data)}", data[10 * MiB :], content_type="application/octet-stream",
        HTTP_UPLOAD_OFFSET=str(10 * MiB),
    )  # fmt: skip
    assert finished.status_code == 201, finished.json()
    assert Blob.objects.get().size == len(data)


def test_bytes_that_do_not_match_the_digest_are_not_kept(api, data, isolated_blob_folder):
    project = ProjectFactory()
    url = start(api, project, data).json()["url"]
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    for offset in (0, 5 * MiB, 10 * MiB):
        patch(api, url, tampered[offset : offset + 5 * MiB], offset)

    response = api.put(url)
    assert response.status_code == 400
    assert response.json()["code"] == "digest_mismatch"
    assert not Blob.objects.exists()
    assert not UploadSession.objects.exists()
    assert staged(isolated_blob_folder) == []
    assert not (isolated_blob_folder / "sha256").exists()
    assert api.get(url).status_code == 404


def test_finishing_before_everything_announced_arrived_is_refused(api, data):
    url = start(api, ProjectFactory(), data, size=len(data)).json()["url"]
    patch(api, url, data[: 5 * MiB], 0)
    response = api.put(url)
    assert response.status_code == 400
    assert response.json()["code"] == "incomplete"
    assert api.get(url).json()["offset"] == 5 * MiB


def test_finishing_with_another_digest_is_refused(api, data):
    url = start(api, ProjectFactory(), data).json()["url"]
    patch(api, url, data[: 5 * MiB], 0)
    assert api.put(f"{url}?digest={sha256(b'other')}").status_code == 400


def test_chunks_beyond_the_announced_size_are_refused(api, data):
    url = start(api, ProjectFactory(), data, size=6 * MiB).json()["url"]
    response = patch(api, url, data[: 7 * MiB], 0)
    assert response.status_code == 400
    assert response.json()["code"] == "beyond_size"


def test_bytes_the_project_already_holds_need_no_upload(api):
    blob = BlobFactory()
    project = blob.project_links.get().project
    response = api.post(f"/api/v1/projects/{project.slug}/uploads/", {"digest": blob.prefixed_digest}, format="json")
    assert response.status_code == 200
    assert response.json()["digest"] == blob.prefixed_digest
    assert not UploadSession.objects.exists()


def test_held_bytes_with_their_own_size_need_no_upload(api):
    blob = BlobFactory(content=b"x" * 100)
    project = blob.project_links.get().project
    body = {"digest": blob.prefixed_digest, "size": 100}

    response = api.post(f"/api/v1/projects/{project.slug}/uploads/", body, format="json")

    assert response.status_code == 200
    assert response.json()["digest"] == blob.prefixed_digest


def test_held_bytes_declared_with_another_size_are_a_409_naming_both_sizes(api):
    """The digest names 100 bytes: a client declaring 101 has the wrong file or the wrong digest, and the blob it
    would be handed back silently is not the file it meant to send."""
    blob = BlobFactory(content=b"x" * 100)
    project = blob.project_links.get().project
    body = {"digest": blob.prefixed_digest, "size": 101}

    response = api.post(f"/api/v1/projects/{project.slug}/uploads/", body, format="json")

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "size_mismatch"
    assert response.json()["field"] == "size"
    assert "holds these bytes" in response.json()["detail"]
    assert "with size 100, not 101" in response.json()["detail"]
    assert_conforms(response, "POST", "/api/v1/projects/{slug}/uploads/")
    assert not UploadSession.objects.exists()


def test_bytes_stored_for_another_project_must_still_be_sent_but_are_not_written_again(api, isolated_blob_folder):
    content = os.urandom(6 * MiB)
    blob = BlobFactory(content=content)
    stored = isolated_blob_folder / blob.storage_key
    written_at = stored.stat().st_mtime_ns
    other = ProjectFactory()

    url = start(api, other, content).json()["url"]
    assert patch(api, url, content, 0).status_code == 202
    finished = api.put(url)

    assert finished.status_code == 200  # not new to the store
    assert ProjectBlob.objects.filter(project=other, blob=blob).exists()
    assert stored.stat().st_mtime_ns == written_at
    assert staged(isolated_blob_folder) == []


def test_sessions_belong_to_their_creator(api, data):
    url = start(api, ProjectFactory(), data).json()["url"]
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(UserFactory())}")
    assert stranger.get(url).status_code == 404
    assert patch(stranger, url, data[: 5 * MiB], 0).status_code == 404
    assert stranger.delete(url).status_code == 404


def test_a_session_being_written_refuses_a_second_writer(api, data):
    url = start(api, ProjectFactory(), data).json()["url"]
    UploadSession.objects.update(writer="00000000-0000-0000-0000-000000000001",
                                 writer_until=timezone.now() + timedelta(minutes=5))  # fmt: skip
    response = patch(api, url, data[: 5 * MiB], 0)
    assert response.status_code == 409
    assert response.json()["code"] == "upload_busy"


def test_cancelling_removes_the_partial_data(api, data, isolated_blob_folder):
    url = start(api, ProjectFactory(), data).json()["url"]
    patch(api, url, data[: 5 * MiB], 0)
    assert staged(isolated_blob_folder)
    assert api.delete(url).status_code == 204
    assert staged(isolated_blob_folder) == []
    assert api.get(url).status_code == 404


def test_abandoned_sessions_expire_with_their_partial_data(api, data, isolated_blob_folder):
    url = start(api, ProjectFactory(), data).json()["url"]
    patch(api, url, data[: 5 * MiB], 0)
    UploadSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert api.get(url).status_code == 404
    assert uploads.upload_sessions_expire() == 1
    assert not UploadSession.objects.exists()
    assert staged(isolated_blob_folder) == []


def test_partial_data_no_session_owns_is_removed_once_old(isolated_blob_folder):
    folder = isolated_blob_folder / "uploads"
    folder.mkdir(parents=True)
    old, recent = folder / "crashed-upload", folder / "in-progress"
    old.write_bytes(b"half a file")
    recent.write_bytes(b"being written")
    two_days_ago = (timezone.now() - timedelta(days=2)).timestamp()
    os.utime(old, (two_days_ago, two_days_ago))

    uploads.upload_sessions_expire()
    assert staged(isolated_blob_folder) == ["in-progress"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"digest": "sha256:nope"}, "digest"),
        ({"digest": "sha256:" + "a" * 64, "size": 0}, "size"),
        ({"size": 0}, "size"),
    ],
)
def test_bad_session_requests_are_a_400(api, payload, field):
    response = api.post(f"/api/v1/projects/{ProjectFactory().slug}/uploads/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_beat_runs_the_expiry_and_the_task_ends_idle_sessions(api, data, isolated_blob_folder, settings):
    from artifacts.tasks import expire_upload_sessions

    assert settings.CELERY_BEAT_SCHEDULE["expire-upload-sessions"]["task"] == "artifacts.tasks.expire_upload_sessions"
    url = start(api, ProjectFactory(), data).json()["url"]
    patch(api, url, data[: 5 * MiB], 0)
    UploadSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert expire_upload_sessions.delay().get() == 1
    assert staged(isolated_blob_folder) == []


def test_direct_uploads_need_s3_storage(api):
    response = api.post(
        f"/api/v1/projects/{ProjectFactory().slug}/uploads/",
        {"digest": sha256(b"x"), "size": 1, "direct": True},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "direct_needs_s3"
    assert not UploadSession.objects.exists()


# Sessions whose digest is named when they finish -----------------------------------------------------------------


def start_without_digest(api, project, **extra):
    return api.post(f"/api/v1/projects/{project.slug}/uploads/", extra, format="json")


def test_a_session_started_without_a_digest_keeps_the_bytes_under_the_digest_named_at_the_end(
    api, data, isolated_blob_folder
):
    project = ProjectFactory()
    started = start_without_digest(api, project, size=len(data))
    assert started.status_code == 201, started.json()
    assert started.json()["digest"] is None
    assert_conforms(started, "POST", "/api/v1/projects/{slug}/uploads/")

    finished = upload_in_chunks(api, started.json()["url"], data)

    assert finished.status_code == 201, finished.json()
    blob = Blob.objects.get()
    assert blob.digest == sha256(data).split(":")[1]
    assert (isolated_blob_folder / blob.storage_key).read_bytes() == data
    assert api.get(started.json()["url"]).json()["digest"] == sha256(data)
    assert staged(isolated_blob_folder) == []
    started_entry = AuditEntry.objects.get(action="upload_session.started")
    assert json.loads(started_entry.changes)["digest"] is None


def test_finishing_a_session_started_without_a_digest_needs_one_and_reads_nothing_without_it(
    api, data, isolated_blob_folder
):
    url = start_without_digest(api, ProjectFactory(), size=len(data)).json()["url"]
    assert patch(api, url, data[: 5 * MiB], 0).status_code == 202

    refused = api.put(url, data[5 * MiB :], content_type="application/octet-stream", HTTP_UPLOAD_OFFSET=str(5 * MiB))

    assert refused.status_code == 400
    assert (refused.json()["code"], refused.json()["field"]) == ("digest_required", "digest")
    assert "?digest=sha256:" in refused.json()["detail"]
    assert api.get(url).json()["offset"] == 5 * MiB  # the last chunk was not taken
    assert not Blob.objects.exists()
    finished = api.put(
        f"{url}?digest={sha256(data)}", data[5 * MiB :], content_type="application/octet-stream",
        HTTP_UPLOAD_OFFSET=str(5 * MiB),
    )  # fmt: skip
    assert finished.status_code == 201, finished.json()


def test_a_session_started_without_a_digest_that_ends_with_the_wrong_one_keeps_nothing(api, data, isolated_blob_folder):
    url = start_without_digest(api, ProjectFactory(), size=len(data)).json()["url"]
    for offset in range(0, len(data), 5 * MiB):
        assert patch(api, url, data[offset : offset + 5 * MiB], offset).status_code == 202

    refused = api.put(f"{url}?digest={sha256(b'other bytes')}")

    assert refused.status_code == 400
    assert refused.json()["code"] == "digest_mismatch"
    assert not Blob.objects.exists()
    assert not UploadSession.objects.exists()
    assert staged(isolated_blob_folder) == []


def test_the_database_keeps_a_session_without_its_digest_receiving(api):
    started = start_without_digest(api, ProjectFactory(), size=MiB)
    session = UploadSession.objects.get(pk=started.json()["id"])

    for state in ("verifying", "completed", "failed"):
        with pytest.raises(IntegrityError), transaction.atomic():
            UploadSession.objects.filter(pk=session.pk).update(state=state)

    assert UploadSession.objects.get(pk=session.pk).state == "receiving"


def test_held_bytes_sent_without_a_digest_are_recorded_but_not_written_again(api, isolated_blob_folder):
    content = os.urandom(6 * MiB)
    blob = BlobFactory(content=content)
    stored = isolated_blob_folder / blob.storage_key
    written_at = stored.stat().st_mtime_ns
    other = ProjectFactory()

    url = start_without_digest(api, other).json()["url"]
    assert patch(api, url, content, 0).status_code == 202
    finished = api.put(f"{url}?digest={sha256(content)}")

    assert finished.status_code == 200  # not new to the store
    assert ProjectBlob.objects.filter(project=other, blob=blob).exists()
    assert stored.stat().st_mtime_ns == written_at
    assert staged(isolated_blob_folder) == []


def test_a_chunk_cut_short_in_a_session_without_a_digest_leaves_no_blob_and_the_session_where_it_was(
    api, data, isolated_blob_folder
):
    url = start_without_digest(api, ProjectFactory(), size=len(data)).json()["url"]
    assert patch(api, url, data[: 5 * MiB], 0).status_code == 202
    session = UploadSession.objects.get()
    hash_state = bytes(session.hash_state)

    with pytest.raises(InvalidInput, match="ended after"):
        uploads.upload_session_finish(
            session=session, digest=sha256(data), stream=io.BytesIO(data[5 * MiB : 7 * MiB]), start=5 * MiB,
            length=len(data) - 5 * MiB,
        )  # fmt: skip

    session.refresh_from_db()
    assert (session.offset, session.digest, bytes(session.hash_state)) == (5 * MiB, "", hash_state)
    assert not Blob.objects.exists()
    finished = api.put(
        f"{url}?digest={sha256(data)}", data[5 * MiB :], content_type="application/octet-stream",
        HTTP_UPLOAD_OFFSET=str(5 * MiB),
    )  # fmt: skip
    assert finished.status_code == 201, finished.json()
    assert (isolated_blob_folder / Blob.objects.get().storage_key).read_bytes() == data
