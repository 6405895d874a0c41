"""Scanning on arrival: a blob becoming verified is scanned by a task queued on commit; the scan is stored (history,
never rewritten), audited, announced as `blob.scanned`, readable in the API by whoever may read the version, shown
on the version's page, and redone when the scanner is upgraded. Eager Celery and a local blob folder."""

import json
import pickle

import jsonschema
import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from artifacts.access.roles import Role
from artifacts.models import Blob
from artifacts.services.integrity import blob_verify
from config.settings import celery as celery_settings
from core.audit.actions import AuditAction
from core.errors import ImmutableRecord
from core.events import EventType, payload_schema
from core.models import AuditEntry, Event
from governance.supplychain.formats import SCANNER, SCANNER_VERSION
from governance.supplychain.models import BlobScan
from governance.supplychain.selectors.scans import blob_scan_current
from governance.supplychain.services import scans as scan_services
from governance.supplychain.services.scans import blob_scan, blobs_rescan_enqueue
from tests.artifacts.factories import ArtifactVersionFactory, BlobFactory, UserFactory, grant
from tests.governance.supplychain import files
from tests.test_settings import run_manage

pytestmark = pytest.mark.django_db


def arrived(content: bytes, capture, **version):
    """A version of `content`, its bytes verified as the task would, with what that queues run after the commit."""
    artifact_version = ArtifactVersionFactory(content=content, **version)
    with capture(execute=True):
        blob_verify(blob=artifact_version.blob)
    artifact_version.blob.refresh_from_db()
    return artifact_version


# On arrival ---------------------------------------------------------------------------------------------------------


def test_a_hostile_pickle_is_scanned_once_verified_whatever_its_name(django_capture_on_commit_callbacks):
    # Named and typed as safetensors: the format comes from the bytes.
    version = arrived(
        files.hostile_pickle(),
        django_capture_on_commit_callbacks,
        metadata={"filename": "model.safetensors"},
        media_type="application/octet-stream",
    )

    [scan] = BlobScan.objects.filter(blob=version.blob)
    assert (scan.detected_format, scan.verdict) == ("pickle", "unsafe")
    assert (scan.scanner, scan.scanner_version) == (SCANNER, SCANNER_VERSION)
    assert [(f["module"], f["name"]) for f in scan.findings] == [("posix", "system")]
    assert scan.started_at <= scan.scanned_at


def test_a_clean_safetensors_file_is_scanned_clean(django_capture_on_commit_callbacks):
    version = arrived(files.clean_safetensors(), django_capture_on_commit_callbacks)

    scan = blob_scan_current(version.blob)
    assert (scan.detected_format, scan.verdict, scan.findings) == ("safetensors", "clean", [])


def test_the_scan_is_audited_with_its_findings_and_announced_to_each_project(django_capture_on_commit_callbacks):
    version = arrived(files.hostile_torch_checkpoint(), django_capture_on_commit_callbacks)
    scan = blob_scan_current(version.blob)

    [entry] = AuditEntry.objects.filter(action=AuditAction.BLOB_SCANNED)
    recorded = json.loads(entry.changes)
    assert recorded["scan"] == scan.pk
    assert (recorded["detected_format"], recorded["verdict"], recorded["findings_count"]) == ("pytorch", "unsafe", 1)
    assert recorded["findings"] == ["dangerous_import posix.system (archive/data.pkl)"]
    assert recorded["scanner"] == f"{SCANNER} {SCANNER_VERSION}"

    [event] = Event.objects.filter(type=EventType.BLOB_SCANNED)
    body = json.loads(event.body)
    jsonschema.validate(body, payload_schema(EventType.BLOB_SCANNED))
    assert body["project"]["id"] == version.artifact.project_id
    assert body["data"]["scan"]["verdict"] == "unsafe"
    assert [v["id"] for v in body["data"]["artifact_versions"]] == [version.pk]


def test_a_corrupt_blob_is_not_scanned(isolated_blob_folder, django_capture_on_commit_callbacks):
    version = ArtifactVersionFactory(content=files.hostile_pickle())
    path = isolated_blob_folder / version.blob.storage_key
    path.write_bytes(b"bit rot" + path.read_bytes()[7:])

    with django_capture_on_commit_callbacks(execute=True):
        assert blob_verify(blob=version.blob).state == Blob.State.CORRUPT

    assert not BlobScan.objects.exists()
    assert blob_scan(blob=version.blob) is None


def test_a_re_verification_that_changes_nothing_does_not_rescan(django_capture_on_commit_callbacks):
    version = arrived(files.clean_pickle(), django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        blob_verify(blob=version.blob)

    assert BlobScan.objects.filter(blob=version.blob).count() == 1


def test_bytes_are_read_streaming_a_header_format_reads_only_its_header(monkeypatch):
    # A safetensors file of 8 MiB of weights: the scan reads the header and the directory of offsets, not the data.
    import numpy
    from safetensors.numpy import save

    data = save({"w": numpy.zeros(2 * 1024 * 1024, dtype=numpy.float32)})
    blob = BlobFactory(content=data)
    Blob.objects.filter(pk=blob.pk).update(state=Blob.State.VERIFIED, verified_at=timezone.now())
    blob.refresh_from_db()
    read: list[int] = []
    real = scan_services.iter_blob

    def counted(key, start=0, end=None, **options):
        chunks = real(key, start, end, **options)
        return type(chunks)((read.append(len(chunk)) or chunk for chunk in chunks), chunks.close)

    monkeypatch.setattr(scan_services, "iter_blob", counted)

    assert blob_scan(blob=blob).verdict == "clean"
    assert sum(read) <= 2 * scan_services.CHUNK_SIZE < len(data)


def verified(content: bytes) -> Blob:
    blob = BlobFactory(content=content)
    Blob.objects.filter(pk=blob.pk).update(state=Blob.State.VERIFIED, verified_at=timezone.now())
    blob.refresh_from_db()
    return blob


def test_a_storage_error_mid_scan_records_nothing_and_is_raised_for_the_task_to_retry(monkeypatch):
    # A pickle larger than one read, whose second read fails: picklescan catches every error in its opcode walk,
    # so the scan must tell a storage error from the end of the bytes itself.
    blob = verified(pickle.dumps(list(range(scan_services.CHUNK_SIZE // 2))))
    assert blob.size > 2 * scan_services.CHUNK_SIZE
    real = scan_services.iter_blob

    def cut_after_the_first_chunk(key, start=0, end=None, **options):
        chunks = real(key, start, end, **options)

        def reads():
            yield next(chunks)
            raise ConnectionResetError("the connection to storage was reset")

        return type(chunks)(reads(), chunks.close)

    monkeypatch.setattr(scan_services, "iter_blob", cut_after_the_first_chunk)

    with pytest.raises(ConnectionResetError):
        blob_scan(blob=blob)
    assert not BlobScan.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditAction.BLOB_SCANNED).exists()


def test_missing_bytes_are_not_scanned_and_left_for_the_scrub(isolated_blob_folder):
    blob = verified(files.clean_pickle())
    (isolated_blob_folder / blob.storage_key).unlink()

    assert blob_scan(blob=blob) is None
    assert not BlobScan.objects.exists()


def test_a_scan_is_never_rewritten_nor_deleted(django_capture_on_commit_callbacks):
    scan = blob_scan_current(arrived(files.clean_pickle(), django_capture_on_commit_callbacks).blob)

    with pytest.raises(ImmutableRecord):
        scan.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        BlobScan.objects.filter(pk=scan.pk).update(verdict="clean")
    with pytest.raises(IntegrityError), transaction.atomic():
        BlobScan.objects.filter(pk=scan.pk).delete()


# Current scan and rescans -------------------------------------------------------------------------------------------


def older_scan(blob: Blob, verdict: str = "clean") -> BlobScan:
    now = timezone.now()
    return BlobScan.objects.create(
        blob=blob,
        detected_format="pickle",
        scanner=SCANNER,
        scanner_version="0.0.1+rules.0",
        verdict=verdict,
        started_at=now,
        scanned_at=now,
    )


def test_the_current_scan_is_the_latest_by_the_current_scanner_else_the_latest(django_capture_on_commit_callbacks):
    version = arrived(files.hostile_pickle(), django_capture_on_commit_callbacks)
    current = blob_scan_current(version.blob)
    older_scan(version.blob)  # written after, by an older scanner: the current one still wins

    assert blob_scan_current(version.blob) == current

    other = BlobFactory()
    assert blob_scan_current(other) is None
    old = older_scan(other)
    assert blob_scan_current(other) == old


def test_rescan_outdated_scans_blobs_never_scanned_or_scanned_by_an_older_scanner(django_capture_on_commit_callbacks):
    scanned = arrived(files.clean_pickle(), django_capture_on_commit_callbacks).blob
    outdated = BlobFactory(content=files.hostile_pickle())
    never = BlobFactory(content=files.clean_safetensors())
    for blob in (outdated, never):
        Blob.objects.filter(pk=blob.pk).update(state=Blob.State.VERIFIED, verified_at=timezone.now())
    older_scan(outdated, verdict="clean")
    pending = BlobFactory(content=files.clean_pickle() + b" ")

    with django_capture_on_commit_callbacks(execute=True):
        call_command("rescan_blobs", "--outdated")

    assert BlobScan.objects.filter(blob=scanned).count() == 1
    assert blob_scan_current(outdated).verdict == "unsafe"  # the upgraded scanner's word replaces the old one
    assert BlobScan.objects.filter(blob=outdated).count() == 2
    assert blob_scan_current(never).detected_format == "safetensors"
    assert not BlobScan.objects.filter(blob=pending).exists()


def test_rescan_all_rescans_every_verified_blob_and_a_limit_bounds_the_batch(django_capture_on_commit_callbacks):
    first = arrived(files.clean_pickle(), django_capture_on_commit_callbacks).blob
    second = arrived(files.clean_safetensors(), django_capture_on_commit_callbacks).blob

    with django_capture_on_commit_callbacks(execute=True):
        assert blobs_rescan_enqueue(outdated_only=False, limit=1) == [first.pk]
    with django_capture_on_commit_callbacks(execute=True):
        call_command("rescan_blobs", "--all")

    assert BlobScan.objects.filter(blob=first).count() == 3
    assert BlobScan.objects.filter(blob=second).count() == 2


def test_a_duplicate_scan_task_does_nothing(django_capture_on_commit_callbacks):
    from governance.supplychain.tasks import scan_blob

    blob = arrived(files.clean_pickle(), django_capture_on_commit_callbacks).blob
    requested_at = BlobScan.objects.get(blob=blob).started_at.isoformat()

    assert scan_blob(blob.pk, requested_at) == "clean"
    assert BlobScan.objects.filter(blob=blob).count() == 1


def test_beat_rescans_outdated_blobs_in_configured_batches(settings, django_capture_on_commit_callbacks):
    from governance.supplychain.tasks import rescan_outdated_blobs

    entry = celery_settings.CELERY_BEAT_SCHEDULE["rescan-outdated-blobs"]
    assert entry["task"] == "governance.supplychain.tasks.rescan_outdated_blobs"
    assert entry["kwargs"] == {"batch_size": 500}
    blobs = [BlobFactory(content=files.clean_pickle() + bytes([n])) for n in range(3)]
    Blob.objects.update(state=Blob.State.VERIFIED, verified_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        assert rescan_outdated_blobs(batch_size=2) == 2
    assert BlobScan.objects.count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert rescan_outdated_blobs(batch_size=2) == 1
    assert {scan.blob_id for scan in BlobScan.objects.all()} == {blob.pk for blob in blobs}


def test_the_rescan_schedule_and_batch_come_from_the_environment(tmp_path):
    env = {"DJANGO_DEBUG": "true", "PROVENANT_RESCAN_INTERVAL_SECONDS": "600", "PROVENANT_RESCAN_BATCH_SIZE": "50"}
    entry = "settings.CELERY_BEAT_SCHEDULE['rescan-outdated-blobs']"
    shown = f"s = {entry}; print(s['schedule'], s['kwargs'], s['options'])"

    result = run_manage(
        "shell", "-v", "0", "-c", f"from django.conf import settings; {shown}", env=env, tmp_path=tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "600 {'batch_size': 50} {'expires': 600}"
    refused = run_manage("check", env={"DJANGO_DEBUG": "true", "PROVENANT_RESCAN_BATCH_SIZE": "0"}, tmp_path=tmp_path)
    assert "PROVENANT_RESCAN_BATCH_SIZE=0 must be a positive whole number" in refused.stderr


def test_the_rescan_command_takes_one_mode():
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("rescan_blobs")
    with pytest.raises(CommandError, match="at least one blob"):
        call_command("rescan_blobs", "--all", "--limit", "0")


# API and portal -----------------------------------------------------------------------------------------------------


def test_whoever_may_read_the_version_reads_its_scan_and_history(api_as, django_capture_on_commit_callbacks):
    version = arrived(files.hostile_torch_checkpoint(), django_capture_on_commit_callbacks)
    older_scan(version.blob)
    reader = grant(Role.VIEWER, on=version.artifact.project).user

    response = api_as(reader).get(f"/api/v1/artifact-versions/{version.pk}/scan/")

    assert response.status_code == 200
    body = response.json()
    assert (body["detected_format"], body["verdict"], body["findings_count"]) == ("pytorch", "unsafe", 1)
    assert body["digest"] == version.blob.prefixed_digest
    assert body["findings"][0] == {
        "kind": "dangerous_import",
        "severity": "unsafe",
        "detail": "The pickle imports posix.system, which can run code when it is loaded.",
        "module": "posix",
        "name": "system",
        "opcode": "GLOBAL",
        "member": "archive/data.pkl",
    }
    history = api_as(reader).get(f"/api/v1/artifact-versions/{version.pk}/scans/").json()
    assert [scan["scanner_version"] for scan in history] == ["0.0.1+rules.0", SCANNER_VERSION]


def test_others_get_404_and_an_unscanned_version_says_why(api_as, django_capture_on_commit_callbacks):
    version = arrived(files.clean_pickle(), django_capture_on_commit_callbacks)
    stranger = UserFactory()

    assert api_as(stranger).get(f"/api/v1/artifact-versions/{version.pk}/scan/").status_code == 404
    assert api_as(stranger).get(f"/api/v1/artifact-versions/{version.pk}/scans/").status_code == 404

    pending = ArtifactVersionFactory(artifact=version.artifact)
    reader = grant(Role.VIEWER, on=version.artifact.project).user
    response = api_as(reader).get(f"/api/v1/artifact-versions/{pending.pk}/scan/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_scanned"
    assert "scanned once verified" in response.json()["detail"]


def test_the_version_page_shows_the_verdict_and_the_findings(client, django_capture_on_commit_callbacks):
    version = arrived(files.hostile_pickle(), django_capture_on_commit_callbacks)
    client.force_login(grant(Role.VIEWER, on=version.artifact.project).user)

    page = client.get(f"/versions/{version.pk}/").content.decode()

    assert "Format scan" in page
    assert "Unsafe: code run on load" in page
    assert "posix.system (GLOBAL)" in page
    assert SCANNER_VERSION in page

    pending = ArtifactVersionFactory(artifact=version.artifact)
    assert "Not scanned yet" in client.get(f"/versions/{pending.pk}/").content.decode()
