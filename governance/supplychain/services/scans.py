"""Scanning stored bytes for their format and for code run on load (formats.py), and queuing rescans."""

import io
import logging
from collections.abc import Iterator

from django.db import transaction
from django.utils import timezone

from artifacts.models import Blob
from artifacts.storage import CHUNK_SIZE
from artifacts.storage.reads import BlobChunks, iter_blob
from artifacts.storage.tiers import NotReadableNow
from core.audit.actions import AuditAction
from core.changes import ChangeSet
from core.errors import InvalidInput
from core.jobs import enqueue_on_commit
from governance.supplychain.events import blob_scanned_events
from governance.supplychain.formats import SCANNER, SCANNER_VERSION, ScanOutcome, scan_stream
from governance.supplychain.jobs import SCAN_BLOB
from governance.supplychain.models import BlobScan
from governance.supplychain.selectors.scans import blobs_to_scan

logger = logging.getLogger(__name__)

#: Findings named in the audit entry itself (the scan row keeps them all, up to formats.MAX_FINDINGS).
AUDITED_FINDINGS = 20
#: How many blob ids a rescan reads per query while it queues.
RESCAN_FETCH_SIZE = 2000


class StorageUnreadable(Exception):
    """The bytes could not be read from storage (not: the bytes are hostile); the cause is what storage raised."""


def blob_scan(*, blob: Blob) -> BlobScan | None:
    """Scan a verified blob's stored bytes and record the result, with its audit entry and `blob.scanned` events.

    Call it outside any transaction, as blob_verify is: the bytes are read streaming, in bounded chunks, with
    nothing locked; only the result is written, under the blob's row lock. A blob that is not verified (corrupt,
    pending, collected meanwhile) is not scanned: None. A storage error propagates with nothing recorded, so the
    task retries; a scanner that fails on the bytes themselves is recorded as an `error` verdict, since hostile
    bytes must not be retried for ever. A scan by the current scanner that began after this one wins: None.
    """
    if blob.state != Blob.State.VERIFIED or blob.is_collected:
        return None
    started_at = timezone.now()
    try:
        outcome = _scan(blob)
    except StorageUnreadable as unreadable:
        cause = unreadable.__cause__
        if isinstance(cause, FileNotFoundError | NotReadableNow):
            # Missing bytes are for the scrub to find corrupt; archived ones are scanned once restored.
            logger.info("Blob %s not scanned: its bytes cannot be read now (%s).", blob.prefixed_digest, cause)
            return None
        raise cause from None
    with transaction.atomic(), ChangeSet() as changes:
        blob = Blob.objects.select_for_update(no_key=True).get(pk=blob.pk)
        if blob.state != Blob.State.VERIFIED or blob.is_collected:
            return None
        if BlobScan.objects.filter(blob=blob, scanner_version=SCANNER_VERSION, started_at__gt=started_at).exists():
            return None
        scan = BlobScan.objects.create(
            blob=blob,
            detected_format=outcome.detected_format,
            scanner=SCANNER,
            scanner_version=SCANNER_VERSION,
            verdict=outcome.verdict,
            findings=outcome.findings,
            started_at=started_at,
            scanned_at=max(timezone.now(), started_at),
        )
        blob_scanned_events(changes, blob, scan)
        changes.audit(
            AuditAction.BLOB_SCANNED,
            obj=blob,
            changes={
                "scan": scan.pk,
                "detected_format": scan.detected_format,
                "scanner": f"{scan.scanner} {scan.scanner_version}",
                "verdict": scan.verdict,
                "findings_count": scan.findings_count,
                "findings": [_finding_line(finding) for finding in scan.findings[:AUDITED_FINDINGS]],
            },
        )
    log = logger.warning if scan.verdict in (BlobScan.Verdict.UNSAFE, BlobScan.Verdict.ERROR) else logger.info
    log(
        "Blob %s scanned: %s, %s (%d findings).",
        blob.prefixed_digest,
        scan.detected_format,
        scan.verdict,
        scan.findings_count,
    )
    return scan


def _scan(blob: Blob) -> ScanOutcome:
    raw = BlobStream(blob.storage_key, blob.size)
    with io.BufferedReader(raw, buffer_size=CHUNK_SIZE) as stream:
        try:
            outcome = scan_stream(stream, blob.size)
        except StorageUnreadable:
            raise
        except (RecursionError, MemoryError, ValueError, OSError, EOFError, KeyError, IndexError, TypeError) as error:
            # The scanner gave up on bytes it could not make sense of: the answer is "not known to be safe".
            logger.exception("Scanning blob %s failed.", blob.prefixed_digest)
            outcome = ScanOutcome("unknown")
            outcome.find(
                "scanner_failed",
                f"The scanner failed on these bytes ({type(error).__name__}: {error}).",
                severity=BlobScan.Verdict.ERROR,
            )
    if raw.failure is not None:
        # A scanner that catches every error (picklescan does, around its opcode walk) may have taken a storage
        # error for the end of the bytes: what it found is not the bytes' verdict, so nothing is recorded.
        raise StorageUnreadable(str(raw.failure)) from raw.failure
    return outcome


def _finding_line(finding: dict) -> str:
    """One finding as the audit entry names it: "dangerous_import posix.system (archive/data.pkl)"."""
    what = ".".join(part for part in (finding.get("module"), finding.get("name")) if part)
    where = f" ({finding['member']})" if finding.get("member") else ""
    return f"{finding['kind']} {what}{where}".strip()


class BlobStream(io.RawIOBase):
    """Stored bytes as a seekable binary file: read forward through one open streaming read, and reopened at the
    new offset only when a reader seeks (a zip's directory, a header's declared end). Memory is one chunk.

    Errors reading storage are raised as StorageUnreadable, so the scan tells them apart from hostile bytes.
    """

    def __init__(self, key: str, size: int) -> None:
        self._key, self._size = key, size
        self._position = 0
        self._chunks: BlobChunks | None = None
        self._iterator: Iterator[bytes] | None = None
        self._pending = b""
        #: The storage error a read met, kept: a scanner may catch it and carry on as if the bytes had ended.
        self.failure: BaseException | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence] + offset
        if target < 0:
            raise ValueError(f"Negative seek position {target}.")
        if target != self._position:
            if self._position < target <= self._position + len(self._pending):
                self._pending = self._pending[target - self._position :]
            else:
                self._release()
            self._position = target
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:
        if self._position >= self._size:
            return 0
        if not self._pending:
            try:
                if self._iterator is None:
                    self._chunks = iter_blob(self._key, self._position)
                    self._iterator = iter(self._chunks)
                self._pending = next(self._iterator, b"")
            except Exception as error:
                self._release()
                self.failure = error
                raise StorageUnreadable(str(error)) from error
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._position += n
        return n

    def _release(self) -> None:
        if self._chunks is not None:
            self._chunks.close()
        self._chunks, self._iterator, self._pending = None, None, b""

    def close(self) -> None:
        self._release()
        super().close()


@transaction.atomic
def blobs_rescan_enqueue(*, outdated_only: bool, limit: int | None = None) -> list[int]:
    """Queue a scan of every verified, readable blob (or only those with no scan by the current scanner version),
    lowest id first, at most `limit`; the scans are queued once the surrounding transaction commits, stamped with
    this moment, so a copy of one that runs after the blob was scanned again does nothing. Returns the ids."""
    if limit is not None and limit < 1:
        raise InvalidInput("A rescan's batch must hold at least one blob.", field="limit")
    blobs = blobs_to_scan(outdated_only=outdated_only).values_list("id", flat=True)
    chosen = list(blobs[:limit]) if limit is not None else list(blobs.iterator(chunk_size=RESCAN_FETCH_SIZE))
    requested_at = timezone.now().isoformat()
    for blob_id in chosen:
        enqueue_on_commit(SCAN_BLOB, blob_id, requested_at)
    logger.info("Rescan: %d blobs queued (%s).", len(chosen), "outdated only" if outdated_only else "all")
    return chosen


def blob_scan_on_verified(*, blob: Blob, before: str) -> None:
    """A blob just became verified (its first proof, or a repair): scan it once the verification commits."""
    if blob.state == Blob.State.VERIFIED:
        enqueue_on_commit(SCAN_BLOB, blob.pk, timezone.now().isoformat())
