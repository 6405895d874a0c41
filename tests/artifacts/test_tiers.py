"""Storage tiers with blobs in a local folder: archival is a documented no-op there (a folder has no storage classes),
restores have nothing to do, and the inputs are checked all the same. The S3 behaviour is proved against an S3
server in tests/integration/test_storage_tiers.py."""

import pytest
from django.utils import timezone

from artifacts.models import Blob
from artifacts.selectors import blob_readability
from artifacts.services.tiers import blob_archive, blob_restore_request
from core.errors import Conflict, InvalidInput, NotFound
from core.models import AuditEntry
from core.s3 import reads_at_once
from tests.artifacts.factories import ArtifactVersionFactory, BlobFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_archival_on_a_local_folder_moves_nothing_records_nothing_and_answers_false():
    blob = BlobFactory()

    assert blob_archive(blob_id=blob.pk) is False
    assert blob_archive(blob_id=blob.pk, storage_class="DEEP_ARCHIVE") is False

    blob.refresh_from_db()
    assert (blob.storage_class, blob.archived_at) == ("", None)
    assert not AuditEntry.objects.filter(action="blob.archived").exists()


@pytest.mark.parametrize("storage_class", ["STANDARD", "glacier_ir", "EXPRESS_ONEZONE", "COLD"])
def test_archival_to_a_class_that_is_not_colder_is_refused_naming_the_classes(storage_class):
    blob = BlobFactory()

    with pytest.raises(
        InvalidInput, match=f"'{storage_class}' is not a storage class archival moves bytes to"
    ) as error:
        blob_archive(blob_id=blob.pk, storage_class=storage_class)

    assert error.value.field == "storage_class"
    assert "GLACIER_IR, GLACIER, DEEP_ARCHIVE" in error.value.message


def test_archival_of_a_blob_that_does_not_exist_is_refused():
    with pytest.raises(NotFound, match="No blob with id 999999"):
        blob_archive(blob_id=999999)


def test_a_restore_on_a_local_folder_has_nothing_to_do_and_says_the_bytes_are_readable():
    blob = BlobFactory()

    state = blob_restore_request(blob_id=blob.pk, requested_by=UserFactory())

    assert state.readable
    assert not state.restore_required
    assert not state.restore_in_progress
    assert Blob.objects.get(pk=blob.pk).restore_requested_at is None
    assert not AuditEntry.objects.filter(action="blob.restore_requested").exists()


def test_a_restore_of_bytes_the_collector_removed_is_refused_saying_how_to_get_them_back():
    blob = BlobFactory()
    Blob.objects.filter(pk=blob.pk).update(collected_at=timezone.now())

    with pytest.raises(Conflict, match=r"removed from storage: there is nothing to restore\. Upload the same file"):
        blob_restore_request(blob_id=blob.pk, requested_by=UserFactory())


def test_the_restore_endpoint_answers_200_with_where_the_bytes_stand_when_there_is_nothing_to_restore(api):
    version = ArtifactVersionFactory()

    response = api.post(f"/api/v1/artifact-versions/{version.pk}/restore/", {"days": 3}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "digest": version.blob.prefixed_digest,
        "storage_class": "",
        "readable": True,
        "restore_required": False,
        "restore_in_progress": False,
        "restored_until": None,
        "restore_requested_at": None,
    }


def test_the_restore_endpoint_refuses_days_outside_what_a_restore_may_last(api):
    version = ArtifactVersionFactory()

    response = api.post(f"/api/v1/artifact-versions/{version.pk}/restore/", {"days": 31}, format="json")

    assert response.status_code == 400
    assert "days" in response.json()


@pytest.mark.parametrize("days", [0, -1, 31])
def test_a_restore_for_a_number_of_days_s3_would_bill_needlessly_or_refuse_is_refused(days):
    blob = BlobFactory()

    with pytest.raises(InvalidInput, match=f"from 1 to 30 days, not {days}") as error:
        blob_restore_request(blob_id=blob.pk, requested_by=UserFactory(), days=days)

    assert error.value.field == "days"


def test_bytes_in_a_local_folder_are_readable_whatever_class_a_record_names():
    blob = BlobFactory()
    Blob.objects.filter(pk=blob.pk).update(storage_class="GLACIER")
    blob.refresh_from_db()

    assert blob_readability(blob).readable


@pytest.mark.parametrize(
    ("storage_class", "at_once"),
    [("", True), ("STANDARD", True), ("STANDARD_IA", True), ("ONEZONE_IA", True), ("INTELLIGENT_TIERING", True),
     ("GLACIER_IR", True), ("GLACIER", False), ("DEEP_ARCHIVE", False)],
)  # fmt: skip
def test_only_glacier_and_deep_archive_need_a_restore_before_a_read(storage_class, at_once):
    assert reads_at_once(storage_class) is at_once
