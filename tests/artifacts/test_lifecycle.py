"""Deletion that keeps provenance (artifacts/services/lifecycle.py): tombstones, and the garbage collector that
removes bytes once no live version in any project needs them; with what every upload and publish path does when
it meets collected bytes. The races themselves are forced on PostgreSQL in tests/integration/test_gc_races.py."""

import io
import json
import os

import jsonschema
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from artifacts import services
from artifacts.models import Blob, UploadSession, VersionTombstone
from artifacts.services.blobs import BlobCollected, blob_store
from artifacts.services.catalog import VersionDeleted
from artifacts.services.integrity import blob_scrub, blob_verify
from artifacts.services.lifecycle import (
    Deletion,
    blob_collect,
    blobs_collect,
    blobs_collect_batch,
    version_delete,
    versions_delete,
)
from artifacts.services.uploads import upload_session_finish, upload_session_start
from artifacts.storage import blob_storage
from core.errors import ImmutableRecord, InvalidInput
from core.events import EventType, payload_schema
from core.models import AuditEntry
from core.models.events import Event
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    BlobFactory,
    DatasetFactory,
    DatasetVersionFactory,
    ProjectFactory,
    PublisherFactory,
    UserFactory,
    sha256,
)
from tests.governance.factories import WebhookEndpointFactory

pytestmark = pytest.mark.django_db


def stored(blob: Blob) -> bool:
    return blob_storage().exists(blob.storage_key)


def put(project, content: bytes, user) -> tuple[Blob, bool]:
    return blob_store(
        project=project,
        stream=io.BytesIO(content),
        expected_digest=sha256(content),
        uploaded_by=user,
        declared_length=len(content),
    )


def collected_version(content: bytes | None = None):
    """A version deleted and its bytes collected: the state every revival path starts from."""
    version = ArtifactVersionFactory(content=content or os.urandom(300))
    version_delete(version=version, deleted_by=None, reason="Older than 90 days.")
    assert blob_collect(blob_id=version.blob_id)
    version.blob.refresh_from_db()
    return version


# Deleting a version ------------------------------------------------------------------------------------


def test_deleting_a_version_keeps_its_row_and_records_who_when_and_why():
    version = ArtifactVersionFactory()
    who = UserFactory()

    tombstone = version_delete(version=version, deleted_by=who, reason="Superseded.", rule="keep-last-3", plan_id=7)

    version.refresh_from_db()
    assert version.tombstone == tombstone
    assert (tombstone.project, tombstone.deleted_by, tombstone.reason, tombstone.rule, tombstone.plan_id) == (
        version.artifact.project,
        who,
        "Superseded.",
        "keep-last-3",
        7,
    )
    assert tombstone.deleted_at <= timezone.now()
    [entry] = AuditEntry.objects.filter(action="artifact_version.deleted")
    assert entry.object_id == str(version.pk)
    assert json.loads(entry.changes)["reason"] == "Superseded."
    assert json.loads(entry.changes)["digest"] == version.blob.prefixed_digest


def test_deleting_a_version_announces_it_with_a_payload_that_matches_its_schema():
    version = ArtifactVersionFactory()

    version_delete(version=version, deleted_by=None, reason="Retention: older than 90 days.", rule="age")

    [event] = Event.objects.filter(type=DELETED)
    body = json.loads(event.body)
    jsonschema.validate(body, payload_schema(EventType.ARTIFACT_VERSION_DELETED))
    assert body["data"]["deleted"]["deleted_by"] is None
    assert body["data"]["deleted"]["rule"] == "age"
    assert body["data"]["artifact_version"]["id"] == version.pk


def test_deleting_a_deleted_version_answers_its_tombstone_and_records_nothing_more():
    version = ArtifactVersionFactory()
    first = version_delete(version=version, deleted_by=None, reason="First.")

    again = version_delete(version=version, deleted_by=UserFactory(), reason="Second.")

    assert again == first
    assert AuditEntry.objects.filter(action="artifact_version.deleted").count() == 1


DELETED = EventType.ARTIFACT_VERSION_DELETED


def deleting_together(versions, **options):
    with CaptureQueriesContext(connection) as queries:
        tombstones = versions_delete(
            deletions=[Deletion(version, f"Old: {version.pk}.", "old") for version in versions],
            deleted_by=None,
            plan_id=3,
            **options,
        )
    return tombstones, len(queries.captured_queries)


def test_versions_deleted_together_each_get_their_tombstone_entry_and_event_for_the_same_queries_at_any_count(
    receiver,
):
    few = [ArtifactVersionFactory(), DatasetVersionFactory()]
    many = [*(ArtifactVersionFactory() for _ in range(6)), DatasetVersionFactory()]
    endpoints = [
        WebhookEndpointFactory(project=versions[0].artifact.project, url=receiver.url, event_types=[DELETED])
        for versions in (few, many)
    ]

    _, queries_for_few = deleting_together(few)
    tombstones, queries_for_many = deleting_together(many)

    assert [tombstone.reason for tombstone in tombstones] == [f"Old: {version.pk}." for version in many]
    for version, tombstone in zip(many, tombstones, strict=True):
        version.refresh_from_db()
        assert version.tombstone == tombstone
        assert (tombstone.rule, tombstone.plan_id) == ("old", 3)
    entries = AuditEntry.objects.filter(action__in=["artifact_version.deleted", "dataset_version.deleted"])
    assert sorted(int(entry.object_id) for entry in entries) == sorted(v.pk for v in [*few, *many])
    seqs = sorted(entries.values_list("seq", flat=True))
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one after another, no gap
    announced = [
        json.loads(event.body)["data"]["artifact_version"]["id"]
        for event in Event.objects.filter(type=DELETED).order_by("pk")
    ]
    assert announced == [version.pk for version in [few[0], *many[:6]]]
    assert [endpoint.deliveries.count() for endpoint in endpoints] == [1, 1]  # only their project's deletion
    # Rows are locked, tombstones written, events and deliveries made set-wise; the audit head moves per entry.
    assert queries_for_many - queries_for_few <= len(many) - len(few) + 1


def test_versions_deleted_together_answer_the_existing_tombstone_of_one_deleted_already():
    first, second = ArtifactVersionFactory(), ArtifactVersionFactory()
    earlier = version_delete(version=first, deleted_by=None, reason="Earlier.")

    tombstones, _ = deleting_together([first, second])

    assert tombstones[0] == earlier
    assert tombstones[1].reason == f"Old: {second.pk}."
    assert AuditEntry.objects.filter(action="artifact_version.deleted").count() == 2


def test_a_batch_that_collects_its_own_blobs_queues_no_collection(django_capture_on_commit_callbacks):
    versions = [ArtifactVersionFactory() for _ in range(3)]

    with django_capture_on_commit_callbacks() as queued:
        deleting_together(versions, queue_collection=False)
    assert queued == []
    another = ArtifactVersionFactory()
    with django_capture_on_commit_callbacks() as queued:
        deleting_together([another])
    assert [callback.__qualname__ for callback in queued] == ["queue of artifacts.tasks.collect_blob"]


def test_a_batch_with_a_reason_missing_deletes_nothing():
    versions = [ArtifactVersionFactory() for _ in range(2)]

    with pytest.raises(InvalidInput, match="Say why"):
        versions_delete(deletions=[Deletion(versions[0], "Old."), Deletion(versions[1], " ")], deleted_by=None)
    assert not VersionTombstone.objects.exists()


def test_a_deletion_needs_a_reason():
    version = ArtifactVersionFactory()

    with pytest.raises(InvalidInput, match="why"):
        version_delete(version=version, deleted_by=None, reason="  ")

    assert not VersionTombstone.objects.exists()


def test_a_tombstone_cannot_be_changed_or_removed():
    tombstone = version_delete(version=ArtifactVersionFactory(), deleted_by=None, reason="Gone.")

    with pytest.raises(ImmutableRecord):
        tombstone.delete()


def test_deleting_a_dataset_version_records_its_own_action_and_no_event():
    version = DatasetVersionFactory()

    tombstone = version_delete(version=version, deleted_by=None, reason="Personal data removed.")

    assert tombstone.dataset_version == version
    assert AuditEntry.objects.filter(action="dataset_version.deleted", object_id=str(version.pk)).exists()
    assert not Event.objects.filter(type=DELETED).exists()
    assert blob_collect(blob_id=version.blob_id)


def test_a_dataset_version_kept_elsewhere_is_tombstoned_with_nothing_to_collect(django_capture_on_commit_callbacks):
    version, _ = services.dataset_version_create(
        dataset=DatasetFactory(),
        created_by=PublisherFactory(),
        uri="s3://lake/events/2026-12",
        manifest_digest=sha256(b"manifest"),
    )

    with django_capture_on_commit_callbacks() as queued:
        tombstone = version_delete(version=version, deleted_by=None, reason="Source withdrawn.")

    assert tombstone.dataset_version == version
    assert queued == []


def test_the_deletion_queues_the_collection_of_its_bytes_once_it_commits(django_capture_on_commit_callbacks):
    version = ArtifactVersionFactory()

    with django_capture_on_commit_callbacks(execute=True):
        version_delete(version=version, deleted_by=None, reason="Older than 90 days.")

    version.blob.refresh_from_db()
    assert version.blob.is_collected
    assert not stored(version.blob)


# Collecting bytes --------------------------------------------------------------------------------------


def test_bytes_of_a_deleted_version_are_removed_and_the_blob_row_stays():
    version = ArtifactVersionFactory()
    version_delete(version=version, deleted_by=None, reason="Old.")

    assert blob_collect(blob_id=version.blob_id)

    blob = Blob.objects.get(pk=version.blob_id)
    assert blob.is_collected
    assert not stored(blob)
    [entry] = AuditEntry.objects.filter(action="blob.collected")
    assert entry.project_id == version.artifact.project_id
    assert not blob_collect(blob_id=blob.pk)  # twice: nothing more to do


def test_bytes_another_project_still_publishes_are_kept():
    content = os.urandom(300)
    deleted = ArtifactVersionFactory(content=content)
    ArtifactVersionFactory(content=content)  # the same digest, live in another project
    version_delete(version=deleted, deleted_by=None, reason="Old.")

    assert not blob_collect(blob_id=deleted.blob_id)

    assert stored(deleted.blob)
    assert not Blob.objects.get(pk=deleted.blob_id).is_collected


def test_bytes_a_live_dataset_version_uses_are_kept():
    content = os.urandom(300)
    deleted = ArtifactVersionFactory(content=content)
    DatasetVersionFactory(content=content, dataset=DatasetFactory(project=deleted.artifact.project))
    version_delete(version=deleted, deleted_by=None, reason="Old.")

    assert not blob_collect(blob_id=deleted.blob_id)
    assert stored(deleted.blob)


def test_bytes_only_uploaded_are_not_garbage():
    blob = BlobFactory()

    assert not blob_collect(blob_id=blob.pk)
    assert stored(blob)


def test_collecting_a_blob_that_does_not_exist_does_nothing():
    assert not blob_collect(blob_id=987654)


def test_the_sweep_collects_what_deletions_left_and_only_that():
    lost = ArtifactVersionFactory()  # its queued collection never ran (a broker outage)
    version_delete(version=lost, deleted_by=None, reason="Old.")
    shared = os.urandom(300)
    kept = ArtifactVersionFactory(content=shared)
    ArtifactVersionFactory(content=shared)
    version_delete(version=kept, deleted_by=None, reason="Old.")
    uploaded = BlobFactory()

    assert blobs_collect() == 1

    assert Blob.objects.get(pk=lost.blob_id).is_collected
    assert not Blob.objects.get(pk=kept.blob_id).is_collected
    assert not Blob.objects.get(pk=uploaded.pk).is_collected
    assert blobs_collect() == 0


def test_a_batch_collects_only_its_garbage_and_audits_each_blob_once_per_project():
    garbage = [ArtifactVersionFactory() for _ in range(3)]
    for version in garbage:
        version_delete(version=version, deleted_by=None, reason="Old.")
    shared = os.urandom(300)
    still_used = ArtifactVersionFactory(content=shared)
    ArtifactVersionFactory(content=shared)  # live in another project
    version_delete(version=still_used, deleted_by=None, reason="Old.")
    twice = os.urandom(300)
    in_two_projects = [ArtifactVersionFactory(content=twice) for _ in range(2)]
    for version in in_two_projects:
        version_delete(version=version, deleted_by=None, reason="Old.")
    already = collected_version()
    uploaded = BlobFactory()
    before = set(AuditEntry.objects.values_list("pk", flat=True))
    ids = [uploaded.pk, already.blob_id, still_used.blob_id, *(version.blob_id for version in garbage), 987654]
    ids.append(in_two_projects[0].blob_id)

    with CaptureQueriesContext(connection) as queries:
        collected = blobs_collect_batch(blob_ids=ids)

    garbage.extend(in_two_projects)  # one blob, audited once in each project holding it
    assert sorted(collected) == sorted({version.blob_id for version in garbage})
    for version in garbage:
        blob = Blob.objects.get(pk=version.blob_id)
        assert blob.is_collected
        assert not stored(blob)
    assert stored(still_used.blob)
    assert not Blob.objects.get(pk=still_used.blob_id).is_collected
    assert stored(uploaded)
    assert not Blob.objects.get(pk=uploaded.pk).is_collected
    entries = AuditEntry.objects.filter(action="blob.collected").exclude(pk__in=before)
    assert sorted((entry.object_id, entry.project_id) for entry in entries) == sorted(
        (str(version.blob_id), version.artifact.project_id) for version in garbage
    )
    deciding = [query for query in queries.captured_queries if "core_audit" not in query["sql"]]
    assert len(deciding) <= 9  # set-based: the same few queries for 4 blobs or 200, besides the audit entries
    assert blobs_collect_batch(blob_ids=ids) == []  # twice: nothing more to do


# Publishing against collected or deleted content ----------------------------------------------------------


def test_publishing_a_collected_digest_is_refused_with_a_code_that_says_upload_again():
    version = collected_version()
    other = ArtifactFactory(project=version.artifact.project)

    with pytest.raises(BlobCollected) as refused:
        services.artifact_version_publish(
            artifact=other, digest=version.blob.prefixed_digest, created_by=PublisherFactory()
        )

    assert refused.value.code == "blob_collected"
    assert "Upload the file again" in refused.value.message
    assert not other.versions.exists()


def test_recording_a_dataset_version_of_a_collected_digest_is_refused():
    version = collected_version()

    with pytest.raises(BlobCollected):
        services.dataset_version_create(
            dataset=DatasetFactory(project=version.artifact.project),
            created_by=PublisherFactory(),
            digest=version.blob.prefixed_digest,
        )


def test_publishing_the_content_of_a_deleted_version_again_names_the_deleted_version():
    version = ArtifactVersionFactory()
    version_delete(version=version, deleted_by=UserFactory(username="rita"), reason="Leaked a secret.")

    with pytest.raises(VersionDeleted) as refused:
        services.artifact_version_publish(
            artifact=version.artifact, digest=version.blob.prefixed_digest, created_by=PublisherFactory()
        )

    assert refused.value.code == "version_deleted"
    assert refused.value.existing == version
    assert "rita" in refused.value.message
    assert "Leaked a secret." in refused.value.message


def test_recording_the_content_of_a_deleted_dataset_version_again_is_refused():
    version = DatasetVersionFactory()
    version_delete(version=version, deleted_by=None, reason="Withdrawn.")

    with pytest.raises(VersionDeleted):
        services.dataset_version_create(
            dataset=version.dataset, created_by=PublisherFactory(), digest=version.blob.prefixed_digest
        )


# Uploading collected bytes again -----------------------------------------------------------------------


def test_uploading_collected_bytes_again_stores_them_and_verifies_them_again():
    content = os.urandom(300)
    version = collected_version(content)

    blob, created = put(version.artifact.project, content, UserFactory())

    assert created
    assert (blob.pk, blob.is_collected, blob.state, blob.verified_at) == (version.blob_id, False, "pending", None)
    assert stored(blob)
    assert AuditEntry.objects.filter(action="blob.stored", object_id=str(blob.pk)).count() == 2
    artifact = ArtifactFactory(project=version.artifact.project)
    published, _ = services.artifact_version_publish(
        artifact=artifact, digest=blob.prefixed_digest, created_by=PublisherFactory()
    )
    assert published.blob_id == blob.pk


def test_an_upload_that_only_hashed_bytes_the_collector_then_removed_is_refused():
    content = os.urandom(300)
    version = collected_version(content)

    # The upload found the bytes held (so it only hashed them) just before the collector removed them.
    with pytest.raises(BlobCollected):
        services.blobs.record_received_blob(
            project=version.artifact.project,
            digest=version.blob.digest,
            size=len(content),
            uploaded_by=UserFactory(),
            wrote_bytes=False,
        )

    assert Blob.objects.get(pk=version.blob_id).is_collected


def test_an_upload_whose_write_the_collector_deleted_is_refused():
    content = os.urandom(300)
    version = collected_version(content)

    # It wrote the bytes, then the collector's delete removed them before this upload took the row lock.
    with pytest.raises(BlobCollected):
        services.blobs.record_received_blob(
            project=version.artifact.project,
            digest=version.blob.digest,
            size=len(content),
            uploaded_by=UserFactory(),
            wrote_bytes=True,
        )

    assert Blob.objects.get(pk=version.blob_id).is_collected


def test_an_upload_session_does_not_skip_collected_bytes_and_stores_them_again():
    content = os.urandom(300)
    version = collected_version(content)
    uploader = PublisherFactory()

    session, held = upload_session_start(
        project=version.artifact.project, digest=sha256(content), size=len(content), created_by=uploader
    )
    assert held is None
    blob, created = upload_session_finish(session=session, stream=io.BytesIO(content), length=len(content))

    assert created
    assert not blob.is_collected
    assert stored(blob)


def test_a_session_whose_bytes_were_collected_while_it_ran_fails_and_says_upload_again():
    content = os.urandom(300)
    version = ArtifactVersionFactory(content=content)
    uploader = PublisherFactory()
    # Started while the bytes were held: the session only hashes them.
    session = UploadSession.objects.get(
        pk=upload_session_start(
            project=ProjectFactory(), digest=sha256(content), size=len(content), created_by=uploader
        )[0].pk
    )
    version_delete(version=version, deleted_by=None, reason="Old.")
    assert blob_collect(blob_id=version.blob_id)

    with pytest.raises(BlobCollected):
        upload_session_finish(session=session, stream=io.BytesIO(content), length=len(content))

    assert not UploadSession.objects.filter(pk=session.pk).exists()
    assert AuditEntry.objects.filter(action="upload_session.failed", object_id=str(session.pk)).exists()


# Integrity -----------------------------------------------------------------------------------------------


def test_a_collected_blob_is_neither_scrubbed_nor_found_corrupt():
    version = collected_version()

    assert version.blob.pk not in blob_scrub(byte_budget=10**9)
    checked = blob_verify(blob=version.blob)

    assert checked.state != Blob.State.CORRUPT
    assert not AuditEntry.objects.filter(action="blob.corrupt").exists()


# What the safety costs an upload ------------------------------------------------------------------------------


def test_the_collectors_safety_adds_one_query_to_a_publish_and_none_to_an_upload():
    """The figure the lead reports: a publish takes the blob's row lock (one SELECT ... FOR NO KEY UPDATE); an
    upload already took that lock to record the blob, and reads `collected_at` from the same row."""
    project = ProjectFactory()
    user = PublisherFactory()
    content = os.urandom(300)
    put(project, os.urandom(300), user)  # warm caches (content types, the user's roles)
    artifact = ArtifactFactory(project=project)

    with CaptureQueriesContext(connection) as upload:
        blob, _ = put(project, content, user)
    with CaptureQueriesContext(connection) as publish:
        services.artifact_version_publish(artifact=artifact, digest=blob.prefixed_digest, created_by=user)

    upload_locks = [q["sql"] for q in upload.captured_queries if "artifacts_blob" in q["sql"] and "FOR" in q["sql"]]
    row_reads = [q["sql"] for q in publish.captured_queries if q["sql"].startswith('SELECT "artifacts_blob"."id"')]
    # SQLite drops FOR UPDATE from the SQL; what counts is the number of reads of the blob's row.
    assert len(upload_locks) <= 1
    assert len(row_reads) == 2  # the access check's read, and the locked re-read before the insert
