"""Uploading and downloading blob bytes through a project: digest checks, dedup, nothing half-written."""

import base64
import hashlib
import io
import os

import pytest

from artifacts import services
from artifacts.models import Blob, ProjectBlob
from artifacts.storage import blob_storage
from core.errors import InvalidInput
from tests.artifacts.factories import BlobFactory, ProjectFactory, sha256

pytestmark = pytest.mark.django_db


def put_blob(api, project, data, digest=None):
    return api.put(
        f"/api/v1/projects/{project.slug}/blobs/{digest or sha256(data)}", data, content_type="application/octet-stream"
    )


def stored_files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_upload_stores_bytes_once_at_their_content_address(api, isolated_blob_folder):
    project = ProjectFactory()
    data = os.urandom(3000)
    response = put_blob(api, project, data)

    assert response.status_code == 201, response.json()
    hex_digest = hashlib.sha256(data).hexdigest()
    assert response.json()["digest"] == f"sha256:{hex_digest}"
    assert response.json()["size"] == 3000
    assert stored_files(isolated_blob_folder) == [f"sha256/{hex_digest[:2]}/{hex_digest[2:4]}/{hex_digest}"]
    assert (isolated_blob_folder / stored_files(isolated_blob_folder)[0]).read_bytes() == data


def test_same_bytes_again_answer_200_and_store_nothing_new(api, isolated_blob_folder):
    project = ProjectFactory()
    data = b"checkpoint" * 50
    assert put_blob(api, project, data).status_code == 201
    assert put_blob(api, project, data).status_code == 200
    assert Blob.objects.count() == 1
    assert len(stored_files(isolated_blob_folder)) == 1


def test_two_projects_share_one_stored_copy_but_each_has_its_own_claim(api, isolated_blob_folder):
    first, second = ProjectFactory(), ProjectFactory()
    data = b"shared weights" * 20
    assert put_blob(api, first, data).status_code == 201
    assert put_blob(api, second, data).status_code == 200
    assert len(stored_files(isolated_blob_folder)) == 1
    assert ProjectBlob.objects.filter(blob__digest=hashlib.sha256(data).hexdigest()).count() == 2


def test_wrong_digest_is_rejected_and_leaves_nothing_behind(api, isolated_blob_folder):
    project = ProjectFactory()
    response = put_blob(api, project, b"actual bytes", digest=sha256(b"other bytes"))

    assert response.status_code == 400
    assert response.json()["code"] == "digest_mismatch"
    assert sha256(b"actual bytes") in response.json()["detail"]
    assert not Blob.objects.exists()
    assert stored_files(isolated_blob_folder) == []  # no object, and no staging file under uploads/


@pytest.mark.parametrize(
    "digest",
    ["sha256:abc", "md5:" + "a" * 32, "sha256:" + "g" * 64, "sha256:" + "a" * 65, "nonsense"],
)
def test_malformed_digest_is_a_400_naming_the_expected_form(api, digest):
    response = put_blob(api, ProjectFactory(), b"data", digest=digest)
    assert response.status_code == 400
    assert "sha256" in response.json()["detail"]
    assert not Blob.objects.exists()


def test_empty_body_is_rejected(api):
    response = put_blob(api, ProjectFactory(), b"", digest=sha256(b""))
    assert response.status_code == 400
    assert "empty" in response.json()["detail"]


def test_truncated_body_is_rejected_with_nothing_kept(user, isolated_blob_folder):
    data = b"x" * 100
    with pytest.raises(InvalidInput, match="ended after 100 of the 200 bytes"):
        services.blob_store(
            project=ProjectFactory(), stream=io.BytesIO(data), expected_digest=sha256(data),
            uploaded_by=user, declared_length=200,
        )  # fmt: skip
    assert not Blob.objects.exists()
    assert stored_files(isolated_blob_folder) == []


def test_upload_to_unknown_project_is_404(api):
    response = api.put(f"/api/v1/projects/nope/blobs/{sha256(b'x')}", b"x", content_type="application/octet-stream")
    assert response.status_code == 404


def test_head_tells_whether_the_project_holds_a_digest(api):
    project = ProjectFactory()
    data = b"model bytes" * 10
    put_blob(api, project, data)

    present = api.head(f"/api/v1/projects/{project.slug}/blobs/{sha256(data)}")
    assert present.status_code == 200
    assert present["Content-Length"] == str(len(data))
    assert present["ETag"] == f'"{sha256(data)}"'
    assert api.head(f"/api/v1/projects/{project.slug}/blobs/{sha256(b'absent')}").status_code == 404


def test_knowing_a_digest_does_not_reach_another_projects_bytes(api):
    owner, outsider = ProjectFactory(), ProjectFactory()
    data = b"secret weights" * 10
    put_blob(api, owner, data)

    assert api.head(f"/api/v1/projects/{outsider.slug}/blobs/{sha256(data)}").status_code == 404
    assert api.get(f"/api/v1/projects/{outsider.slug}/blobs/{sha256(data)}").status_code == 404


def test_download_streams_the_bytes_with_digest_headers(api):
    project = ProjectFactory()
    data = os.urandom(5 * 1024 * 1024 + 7)
    put_blob(api, project, data)

    response = api.get(f"/api/v1/projects/{project.slug}/blobs/{sha256(data)}")
    assert response.status_code == 200
    assert response.streaming
    assert b"".join(response.streaming_content) == data
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


def test_corrupt_blob_is_never_served(api):
    blob = BlobFactory()
    project = blob.project_links.get().project
    Blob.objects.filter(pk=blob.pk).update(state=Blob.State.CORRUPT, verified_at="2026-01-01T00:00:00Z")

    response = api.get(f"/api/v1/projects/{project.slug}/blobs/{blob.prefixed_digest}")
    assert response.status_code == 409
    assert response.json()["code"] == "blob_corrupt"


def test_verification_marks_intact_bytes_verified_and_altered_bytes_corrupt(isolated_blob_folder):
    intact, altered = BlobFactory(), BlobFactory()
    (isolated_blob_folder / altered.storage_key).write_bytes(b"bit rot")

    assert services.blob_verify(blob=intact).state == Blob.State.VERIFIED
    assert services.blob_verify(blob=altered).state == Blob.State.CORRUPT


def test_missing_bytes_count_as_corrupt(isolated_blob_folder):
    blob = BlobFactory()
    (isolated_blob_folder / blob.storage_key).unlink()
    assert services.blob_verify(blob=blob).state == Blob.State.CORRUPT


def test_new_blob_is_verified_after_commit(api, django_capture_on_commit_callbacks):
    project = ProjectFactory()
    with django_capture_on_commit_callbacks(execute=True):
        put_blob(api, project, b"fresh bytes")
    assert Blob.objects.get().state == Blob.State.VERIFIED


def test_a_good_upload_repairs_a_corrupt_blob(api, isolated_blob_folder, django_capture_on_commit_callbacks):
    project = ProjectFactory()
    data = b"original" * 64
    put_blob(api, project, data)
    blob = Blob.objects.get()
    (isolated_blob_folder / blob.storage_key).write_bytes(b"damaged")
    services.blob_verify(blob=blob)

    with django_capture_on_commit_callbacks(execute=True):
        assert put_blob(api, project, data).status_code == 200
    blob.refresh_from_db()
    assert blob.state == Blob.State.VERIFIED
    assert blob_storage().open(blob.storage_key).read() == data


def test_a_repair_writes_the_bytes_anew_in_the_default_class_and_forgets_their_archival(api, isolated_blob_folder):
    project = ProjectFactory()
    data = b"archived, then damaged" * 64
    put_blob(api, project, data)
    blob = Blob.objects.get()
    # As archival to GLACIER_IR would have left it in a bucket (a folder has no classes to move it to).
    Blob.objects.filter(pk=blob.pk).update(storage_class="GLACIER_IR", archived_at="2026-01-01T00:00:00Z")
    (isolated_blob_folder / blob.storage_key).write_bytes(b"damaged")
    services.blob_verify(blob=blob)

    assert put_blob(api, project, data).status_code == 200

    blob.refresh_from_db()
    assert (blob.storage_class, blob.archived_at, blob.restore_requested_at) == ("", None, None)


def test_upload_succeeds_when_the_broker_is_down(api, monkeypatch, django_capture_on_commit_callbacks):
    from artifacts import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("redis://127.0.0.1:6379 refused the connection")

    monkeypatch.setattr(tasks.verify_blob, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = put_blob(api, ProjectFactory(), b"bytes while redis is down")
    assert response.status_code == 201
    assert Blob.objects.get().state == Blob.State.PENDING


def test_a_chunked_body_without_content_length_is_a_411_not_an_empty_body(api, isolated_blob_folder):
    project = ProjectFactory()
    response = api.put(
        f"/api/v1/projects/{project.slug}/blobs/{sha256(b'data')}", b"data", content_type="application/octet-stream",
        HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH="",
    )  # fmt: skip
    assert response.status_code == 411
    assert set(response.json()) == {"detail", "code"}
    assert response.json()["code"] == "length_required"
    assert "Content-Length" in response.json()["detail"]
    assert not Blob.objects.exists()
    assert stored_files(isolated_blob_folder) == []


# A blob's state ----------------------------------------------------------------------------------------------------


def state_of(api, project, digest: str):
    return api.get(f"/api/v1/projects/{project.slug}/blobs/{digest}/state/")


def test_a_blobs_state_is_read_by_get_from_pending_to_verified(api):
    project = ProjectFactory()
    data = b"weights" * 100
    put_blob(api, project, data)  # its verification is queued for after a commit that never comes in this test

    pending = state_of(api, project, sha256(data))
    services.blob_verify(blob=Blob.objects.get())
    verified = state_of(api, project, sha256(data).upper().replace("SHA256:", "sha256:"))

    assert pending.status_code == 200
    assert pending.json() == {
        "digest": sha256(data),
        "size": len(data),
        "state": "pending",
        "verified_at": None,
        "collected_at": None,
        "storage_class": "",
        "archived_at": None,
        "restore_requested_at": None,
        "url": f"http://testserver/api/v1/projects/{project.slug}/blobs/{sha256(data)}",
    }
    assert verified.json()["state"] == "verified"
    assert verified.json()["verified_at"] is not None
    assert pending["Cache-Control"] == "private, no-store", "a state moves: no cache may keep it"


def test_a_corrupt_blobs_state_is_read_where_its_bytes_are_refused(api):
    blob = BlobFactory()
    project = blob.project_links.get().project
    Blob.objects.filter(pk=blob.pk).update(state=Blob.State.CORRUPT, verified_at="2026-01-01T00:00:00Z")

    response = state_of(api, project, blob.prefixed_digest)

    assert response.status_code == 200
    assert response.json()["state"] == "corrupt"


def test_a_blobs_state_is_not_read_through_a_project_that_does_not_hold_it(api):
    owner, outsider = ProjectFactory(), ProjectFactory()
    data = b"secret weights" * 10
    put_blob(api, owner, data)

    elsewhere = state_of(api, outsider, sha256(data))

    assert elsewhere.status_code == 404
    assert elsewhere.json()["detail"] == f"Project '{outsider.slug}' holds no blob {sha256(data)}."
    assert state_of(api, owner, "sha256:nothex").status_code == 400
