"""Integrity: each blob re-hashed by a task, corrupt ones quarantined and shown so, and a scrub that re-proves
the store a byte budget at a time, least recently proved first. Eager Celery and a local blob folder."""

import io
import os
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from celery.exceptions import Retry
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from artifacts import tasks
from artifacts.models import Blob
from artifacts.services import blob_verify
from artifacts.services import integrity as integrity_services
from artifacts.services.integrity import blob_pending_enqueue, blob_scrub
from core.errors import InvalidInput
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    BlobFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
)
from tests.test_settings import run_manage

pytestmark = pytest.mark.django_db

LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def hash_calls(monkeypatch) -> list[str]:
    """The storage keys blob_verify reads, in order; the reading itself is the real one."""
    calls: list[str] = []
    real = integrity_services.hash_stored_blob

    def spy(key: str) -> tuple[str, int]:
        calls.append(key)
        return real(key)

    monkeypatch.setattr(integrity_services, "hash_stored_blob", spy)
    return calls


def blob_of(size: int) -> Blob:
    return BlobFactory(content=os.urandom(size))


def verified_at(blob: Blob, when: datetime) -> Blob:
    """Arrange a blob proved intact at `when` (the scrub's order depends on it)."""
    Blob.objects.filter(pk=blob.pk).update(state=Blob.State.VERIFIED, verified_at=when)
    blob.refresh_from_db()
    return blob


def corrupt_bytes(folder, blob: Blob) -> None:
    path = folder / blob.storage_key
    path.write_bytes(b"bit rot" + path.read_bytes()[7:])


# Verifying one blob -----------------------------------------------------------------------------------


def test_intact_bytes_are_verified_at_the_time_the_check_began():
    blob = BlobFactory()
    before = timezone.now()

    result = blob_verify(blob=blob)

    assert result.state == Blob.State.VERIFIED
    assert before <= result.verified_at <= timezone.now()
    blob.refresh_from_db()
    assert (blob.state, blob.verified_at) == (Blob.State.VERIFIED, result.verified_at)


def test_altered_bytes_are_corrupt_and_logged_as_an_error(isolated_blob_folder, caplog):
    blob = BlobFactory()
    corrupt_bytes(isolated_blob_folder, blob)

    assert blob_verify(blob=blob).state == Blob.State.CORRUPT
    assert blob.prefixed_digest in caplog.text
    assert any(record.levelname == "ERROR" for record in caplog.records)


def test_missing_bytes_are_corrupt(isolated_blob_folder, caplog):
    blob = BlobFactory()
    (isolated_blob_folder / blob.storage_key).unlink()

    assert blob_verify(blob=blob).state == Blob.State.CORRUPT
    assert "nothing is stored" in caplog.text


def test_a_verification_never_overwrites_the_result_of_one_that_began_later(monkeypatch):
    blob = BlobFactory()
    later = timezone.now() + timedelta(minutes=5)
    real = integrity_services.hash_stored_blob

    def slow_read_overtaken_by_another_worker(key: str) -> tuple[str, int]:
        # While this read runs, a second verification (begun later) finds the bytes corrupt and records it.
        Blob.objects.filter(pk=blob.pk).update(state=Blob.State.CORRUPT, verified_at=later)
        return real(key)

    monkeypatch.setattr(integrity_services, "hash_stored_blob", slow_read_overtaken_by_another_worker)

    result = blob_verify(blob=blob)

    assert (result.state, result.verified_at) == (Blob.State.CORRUPT, later)
    blob.refresh_from_db()
    assert (blob.state, blob.verified_at) == (Blob.State.CORRUPT, later)


# Quarantine, shown wherever the versions are ------------------------------------------------------------


def test_versions_of_a_corrupt_blob_show_it_in_the_api_and_the_lineage_and_are_not_served(api, isolated_blob_folder):
    data = os.urandom(512)
    project = ProjectFactory()
    snapshot = DatasetVersionFactory(dataset__project=project, content=data)
    run = RunFactory(project=project, input_dataset_versions=[snapshot])
    model = ArtifactVersionFactory(artifact=ArtifactFactory(project=project), content=data, run=run)
    blob = model.blob
    assert snapshot.blob == blob
    corrupt_bytes(isolated_blob_folder, blob)

    tasks.verify_blob.delay(blob.pk)

    assert api.get(f"/api/v1/artifact-versions/{model.pk}/").json()["blob_state"] == "corrupt"
    assert api.get(f"/api/v1/dataset-versions/{snapshot.pk}/").json()["blob_state"] == "corrupt"
    listed = api.get("/api/v1/artifact-versions/", {"state": "corrupt"}).json()["results"]
    assert [(v["id"], v["blob_state"]) for v in listed] == [(model.pk, "corrupt")]
    root = api.get(f"/api/v1/lineage/artifact-version/{model.pk}/", {"direction": "upstream"}).json()["root"]
    assert root["blob_state"] == "corrupt"
    downstream = api.get(f"/api/v1/lineage/dataset-version/{snapshot.pk}/", {"direction": "downstream"}).json()
    shown = next(node for node in downstream["nodes"] if node["key"] == f"artifact_version:{model.pk}")
    assert shown["blob_state"] == "corrupt"
    download = api.get(f"/api/v1/artifact-versions/{model.pk}/download/")
    assert download.status_code == 409
    assert download.json()["code"] == "blob_corrupt"


def test_the_admin_lists_versions_of_a_corrupt_blob_as_corrupt(admin_client, isolated_blob_folder):
    model = ArtifactVersionFactory()
    snapshot = DatasetVersionFactory()
    for blob in (model.blob, snapshot.blob):
        corrupt_bytes(isolated_blob_folder, blob)
        blob_verify(blob=blob)

    for version in (model, snapshot):
        opts = version._meta
        listing = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert '<td class="field-blob_state">Corrupt</td>' in listing.content.decode()


# The verify_blob task -----------------------------------------------------------------------------------


def test_task_does_nothing_when_the_blob_was_verified_at_or_after_the_request(isolated_blob_folder, hash_calls):
    blob = blob_verify(blob=BlobFactory())
    proved_at = blob.verified_at
    hash_calls.clear()
    # Were the task to re-hash, it would find these bytes corrupt.
    corrupt_bytes(isolated_blob_folder, blob)

    for requested_at in (proved_at - timedelta(seconds=1), proved_at):
        assert tasks.verify_blob.delay(blob.pk, requested_at=requested_at.isoformat()).get() == "verified"

    assert hash_calls == []
    blob.refresh_from_db()
    assert (blob.state, blob.verified_at) == (Blob.State.VERIFIED, proved_at)


def test_task_rehashes_when_the_last_verification_began_before_the_request(isolated_blob_folder, hash_calls):
    blob = blob_verify(blob=BlobFactory())
    corrupt_bytes(isolated_blob_folder, blob)
    hash_calls.clear()

    requested_at = (blob.verified_at + timedelta(microseconds=1)).isoformat()
    assert tasks.verify_blob.delay(blob.pk, requested_at=requested_at).get() == "corrupt"
    assert hash_calls == [blob.storage_key]


def test_task_without_a_request_time_always_rehashes(hash_calls):
    blob = blob_verify(blob=BlobFactory())
    hash_calls.clear()

    assert tasks.verify_blob.delay(blob.pk).get() == "verified"
    assert hash_calls == [blob.storage_key]


def test_task_for_a_blob_that_is_gone_does_nothing(hash_calls):
    assert tasks.verify_blob.delay(2**62).get() is None
    assert hash_calls == []


TRANSIENT_ERRORS = [
    ConnectionResetError(104, "Connection reset by peer"),
    ReadTimeoutError(endpoint_url="http://s3.example.com/bucket/key"),
    ClientError({"Error": {"Code": "SlowDown", "Message": "Reduce your request rate."}}, "GetObject"),
]


class FailingReads:
    """Storage reads that raise `errors`, one per attempt, then work again; every attempt is kept in `attempts`."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.attempts: list[str] = []
        self._real = integrity_services.hash_stored_blob

    def __call__(self, key: str) -> tuple[str, int]:
        self.attempts.append(key)
        if len(self.attempts) <= len(self.errors):
            raise self.errors[len(self.attempts) - 1]
        return self._real(key)


@pytest.fixture
def failing_reads(monkeypatch) -> FailingReads:
    reads = FailingReads()
    monkeypatch.setattr(integrity_services, "hash_stored_blob", reads)
    return reads


@pytest.mark.parametrize("error", TRANSIENT_ERRORS, ids=["connection-reset", "read-timeout", "s3-throttling"])
def test_a_transient_read_error_schedules_a_retry_and_never_marks_the_blob_corrupt(failing_reads, error):
    blob = BlobFactory()
    failing_reads.errors.append(error)

    # Eager Celery raises the Retry a worker would schedule (with backoff) instead of running it later.
    with pytest.raises(Retry) as retry:
        tasks.verify_blob.delay(blob.pk)

    assert retry.value.exc is error
    assert len(failing_reads.attempts) == 1
    blob.refresh_from_db()
    assert (blob.state, blob.verified_at) == (Blob.State.PENDING, None)


def test_retries_are_bounded_and_a_read_that_keeps_failing_leaves_the_blob_pending(monkeypatch, failing_reads):
    blob = BlobFactory()
    failing_reads.errors.extend([ConnectionResetError(104, "Connection reset by peer")] * 10)
    # Not raised at the first attempt, so that eager Celery runs the retries one after another.
    monkeypatch.setitem(tasks.verify_blob.app.conf, "task_eager_propagates", False)

    result = tasks.verify_blob.apply(args=[blob.pk])

    assert result.failed()
    assert isinstance(result.result, ConnectionResetError)
    assert len(failing_reads.attempts) == tasks.verify_blob.max_retries + 1
    blob.refresh_from_db()
    assert (blob.state, blob.verified_at) == (Blob.State.PENDING, None)


def test_a_read_that_fails_once_is_retried_and_verifies(failing_reads):
    blob = BlobFactory()
    failing_reads.errors.append(ConnectionResetError(104, "Connection reset by peer"))

    assert tasks.verify_blob.apply(args=[blob.pk], throw=False).get() == "verified"
    assert len(failing_reads.attempts) == 2


def test_the_task_acknowledges_late_and_hands_back_a_message_whose_worker_died():
    for task in (tasks.verify_blob, tasks.scrub_blobs):
        assert task.acks_late is True
        assert task.reject_on_worker_lost is True
    assert tasks.verify_blob.retry_backoff is True


# The scrub ------------------------------------------------------------------------------------------------


def test_scrub_takes_pending_blobs_first_then_the_least_recently_verified():
    recent = verified_at(BlobFactory(), LONG_AGO + timedelta(days=30))
    oldest = verified_at(BlobFactory(), LONG_AGO)
    first_pending, second_pending = BlobFactory(), BlobFactory()
    middle = verified_at(BlobFactory(), LONG_AGO + timedelta(days=10))

    assert blob_scrub(byte_budget=10**12) == [first_pending.pk, second_pending.pk, oldest.pk, middle.pk, recent.pk]


def test_scrub_leaves_corrupt_blobs_quarantined():
    corrupt, intact = BlobFactory(), verified_at(BlobFactory(), LONG_AGO)
    Blob.objects.filter(pk=corrupt.pk).update(state=Blob.State.CORRUPT, verified_at=LONG_AGO - timedelta(days=1))

    assert blob_scrub(byte_budget=10**12) == [intact.pk]


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_scrub_skips_blobs_archived_where_a_read_needs_a_restore_and_says_why(storage_class, caplog):
    archived, pending = verified_at(BlobFactory(), LONG_AGO), BlobFactory()
    Blob.objects.filter(pk__in=[archived.pk, pending.pk]).update(storage_class=storage_class)
    # Read at once: proved as any other.
    instant = verified_at(BlobFactory(), LONG_AGO + timedelta(days=1))
    Blob.objects.filter(pk=instant.pk).update(storage_class="GLACIER_IR")

    with caplog.at_level("INFO", logger="artifacts.services.integrity"):
        assert blob_scrub(byte_budget=10**12) == [instant.pk]

    assert "2 blobs skipped: archived in a class S3 reads only after a restore" in caplog.text


def test_scrub_stops_at_the_byte_budget_without_skipping_ahead_to_smaller_blobs():
    a, b, c, d = (
        verified_at(blob_of(size), LONG_AGO + timedelta(days=i)) for i, size in enumerate([100, 100, 300, 50])
    )

    assert blob_scrub(byte_budget=200) == [a.pk, b.pk]
    assert blob_scrub(byte_budget=499) == [a.pk, b.pk]
    assert blob_scrub(byte_budget=500) == [a.pk, b.pk, c.pk]
    assert blob_scrub(byte_budget=550) == [a.pk, b.pk, c.pk, d.pk]


def test_scrub_takes_a_blob_larger_than_the_whole_budget_on_its_turn():
    huge = verified_at(blob_of(4096), LONG_AGO)
    verified_at(blob_of(10), LONG_AGO + timedelta(days=1))

    assert blob_scrub(byte_budget=1) == [huge.pk]


def test_scrub_refuses_a_budget_below_one_byte():
    with pytest.raises(InvalidInput, match="at least one byte"):
        blob_scrub(byte_budget=0)


def test_scrub_queues_its_verifications_after_commit_stamped_with_its_time(
    monkeypatch, django_capture_on_commit_callbacks
):
    blobs = [verified_at(BlobFactory(), LONG_AGO), BlobFactory()]
    queued = []
    monkeypatch.setattr(tasks.verify_blob, "apply_async", lambda args, **options: queued.append(args))
    before = timezone.now()

    with django_capture_on_commit_callbacks() as callbacks:
        chosen = blob_scrub(byte_budget=10**6)
        assert queued == []
    for callback in callbacks:
        callback()

    assert [blob_id for blob_id, _ in queued] == chosen == [blobs[1].pk, blobs[0].pk]
    stamps = {requested_at for _, requested_at in queued}
    assert len(stamps) == 1
    assert before <= datetime.fromisoformat(stamps.pop()) <= timezone.now()


def test_scrub_runs_cycle_through_the_whole_store_and_find_corruption(
    isolated_blob_folder, django_capture_on_commit_callbacks
):
    blobs = [verified_at(blob_of(100), LONG_AGO + timedelta(days=i)) for i in range(4)]
    corrupt_bytes(isolated_blob_folder, blobs[3])

    with django_capture_on_commit_callbacks(execute=True):
        first = blob_scrub(byte_budget=200)
    with django_capture_on_commit_callbacks(execute=True):
        second = blob_scrub(byte_budget=200)
    with django_capture_on_commit_callbacks(execute=True):
        third = blob_scrub(byte_budget=200)

    ids = [blob.pk for blob in blobs]
    assert (first, second, third) == (ids[:2], ids[2:], ids[:2])
    states = dict(Blob.objects.filter(pk__in=ids).values_list("id", "state"))
    assert states == {ids[0]: "verified", ids[1]: "verified", ids[2]: "verified", ids[3]: "corrupt"}
    assert all(blob.verified_at > LONG_AGO + timedelta(days=30) for blob in Blob.objects.filter(pk__in=ids))


def test_scrub_task_runs_one_scrub_with_the_budget_it_is_given(django_capture_on_commit_callbacks):
    blob = BlobFactory()

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.scrub_blobs.delay(byte_budget=1).get() == 1

    blob.refresh_from_db()
    assert blob.state == Blob.State.VERIFIED


def test_every_pending_blob_can_be_queued_again(django_capture_on_commit_callbacks):
    pending = [BlobFactory(), BlobFactory()]
    verified_at(BlobFactory(), LONG_AGO)

    with django_capture_on_commit_callbacks(execute=True):
        assert blob_pending_enqueue() == [blob.pk for blob in pending]

    assert set(Blob.objects.filter(pk__in=[b.pk for b in pending]).values_list("state", flat=True)) == {"verified"}


# The verify_blobs command -----------------------------------------------------------------------------------


def command(*args: str) -> str:
    out = io.StringIO()
    call_command("verify_blobs", *args, stdout=out)
    return out.getvalue()


def test_command_verifies_one_blob_now_and_prints_the_result():
    blob = BlobFactory(content=b"x" * 2048)

    assert command("--digest", blob.prefixed_digest) == f"{blob.prefixed_digest} verified (2,048 bytes).\n"
    blob.refresh_from_db()
    assert blob.state == Blob.State.VERIFIED


def test_command_fails_on_a_corrupt_blob_and_says_how_to_repair_it(isolated_blob_folder):
    blob = BlobFactory()
    corrupt_bytes(isolated_blob_folder, blob)

    with pytest.raises(CommandError, match=r"is corrupt.*upload the original bytes again"):
        command("--digest", blob.digest)
    blob.refresh_from_db()
    assert blob.state == Blob.State.CORRUPT


def test_command_leaves_the_state_alone_when_storage_cannot_be_read(monkeypatch):
    blob = BlobFactory()

    def unreachable(key: str) -> tuple[str, int]:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(integrity_services, "hash_stored_blob", unreachable)

    with pytest.raises(CommandError, match=r"Could not read the bytes.*state is unchanged \(pending\)"):
        command("--digest", blob.prefixed_digest)
    blob.refresh_from_db()
    assert blob.state == Blob.State.PENDING


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--digest", "sha256:abc"], "64 hexadecimal characters"),
        (["--digest", "md5:" + "0" * 32], "only sha256"),
        (["--digest", "sha256:" + "0" * 64], "No blob sha256:0000"),
        (["--scrub", "--budget", "0"], "at least one byte"),
        (["--pending", "--budget", "10"], "--budget goes with --scrub"),
    ],
)
def test_command_explains_what_is_wrong_with_its_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        command(*args)


def test_command_needs_exactly_one_mode():
    with pytest.raises(CommandError, match="one of the arguments --digest --pending --scrub is required"):
        command()
    with pytest.raises(CommandError, match="not allowed with argument"):
        command("--pending", "--scrub")


def test_command_queues_every_pending_blob(django_capture_on_commit_callbacks):
    pending = BlobFactory()
    verified_at(BlobFactory(), LONG_AGO)

    with django_capture_on_commit_callbacks(execute=True):
        out = command("--pending")

    assert out.splitlines()[0] == "Queued 1 blobs for verification (pending):"
    assert pending.prefixed_digest in out
    pending.refresh_from_db()
    assert pending.state == Blob.State.VERIFIED


def test_command_runs_one_scrub_and_lists_what_it_queued(django_capture_on_commit_callbacks):
    older = verified_at(blob_of(300), LONG_AGO)
    newer = verified_at(blob_of(300), LONG_AGO + timedelta(days=1))

    with django_capture_on_commit_callbacks(execute=True):
        out = command("--scrub", "--budget", "400")

    assert out.splitlines()[0] == "Queued 1 blobs for verification (scrub, budget 400 bytes):"
    assert older.prefixed_digest in out
    assert newer.prefixed_digest not in out


def test_command_scrub_without_a_budget_uses_the_configured_one(monkeypatch, settings):
    settings.PROVENANT_SCRUB_BYTES_PER_RUN = 1234
    monkeypatch.setattr(tasks.verify_blob, "apply_async", lambda args, **options: None)

    assert command("--scrub") == "Nothing to verify (scrub, budget 1,234 bytes).\n"


# Configuration ----------------------------------------------------------------------------------------------


def test_beat_runs_the_scrub_hourly_with_a_50_gib_budget_by_default():
    entry = settings.CELERY_BEAT_SCHEDULE["scrub-blobs"]
    assert entry["task"] == tasks.scrub_blobs.name == "artifacts.tasks.scrub_blobs"
    assert entry["schedule"] == settings.PROVENANT_SCRUB_INTERVAL_SECONDS == 3600
    assert entry["kwargs"] == {"byte_budget": settings.PROVENANT_SCRUB_BYTES_PER_RUN} == {"byte_budget": 50 * 2**30}
    assert entry["options"]["expires"] == 3600


def test_beat_schedule_takes_its_interval_and_budget_from_the_environment(tmp_path):
    env = {"DJANGO_DEBUG": "true", "PROVENANT_SCRUB_INTERVAL_SECONDS": "900", "PROVENANT_SCRUB_BYTES_PER_RUN": "12345"}
    shown = "s = settings.CELERY_BEAT_SCHEDULE['scrub-blobs']; print(s['schedule'], s['kwargs'], s['options'])"

    result = run_manage(
        "shell", "-v", "0", "-c", f"from django.conf import settings; {shown}", env=env, tmp_path=tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "900 {'byte_budget': 12345} {'expires': 900}"


def test_a_scrub_setting_below_one_is_refused(tmp_path):
    result = run_manage("check", env={"DJANGO_DEBUG": "true", "PROVENANT_SCRUB_BYTES_PER_RUN": "0"}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "PROVENANT_SCRUB_BYTES_PER_RUN=0 must be a positive whole number" in result.stderr


def test_a_corrupt_blob_is_named_on_the_version_pages_and_dataset_lineage(admin_client, api, isolated_blob_folder):
    from tests.artifacts.factories import ArtifactVersionFactory, DatasetVersionFactory, RunFactory

    dataset_version = DatasetVersionFactory()
    version = ArtifactVersionFactory(artifact__project=dataset_version.dataset.project)
    for blob in (dataset_version.blob, version.blob):
        (isolated_blob_folder / blob.storage_key).write_bytes(b"rot")
        blob_verify(blob=blob)
    run = RunFactory(project=dataset_version.dataset.project, input_dataset_versions=[dataset_version])

    for url in (
        f"/admin/artifacts/artifactversion/{version.pk}/change/",
        f"/admin/artifacts/datasetversion/{dataset_version.pk}/change/",
    ):
        assert "Corrupt" in admin_client.get(url).content.decode()
    lineage = api.get(f"/api/v1/lineage/run/{run.id}/?direction=upstream").json()
    assert lineage["nodes"][0]["blob_state"] == "corrupt"
