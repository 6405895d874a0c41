"""Reading scans: the one a gate or a page goes by, a blob's history, and the blobs a rescan should take."""

from django.db.models import Exists, OuterRef, QuerySet

from artifacts.models import Blob
from core.s3 import RESTORE_STORAGE_CLASSES
from governance.supplychain.formats import SCANNER_VERSION
from governance.supplychain.models import BlobScan


def blob_scan_current(blob: Blob) -> BlobScan | None:
    """The scan a gate or a page goes by: the latest by the current scanner version, else the latest by any (an
    older scanner's word stands until the rescan replaces it); None if the blob was never scanned."""
    scans = BlobScan.objects.filter(blob=blob)
    return scans.filter(scanner_version=SCANNER_VERSION).order_by("-id").first() or scans.order_by("-id").first()


def blob_scans(blob: Blob) -> QuerySet[BlobScan]:
    """Every scan of the blob, newest first."""
    return BlobScan.objects.filter(blob=blob).order_by("-id")


def blobs_to_scan(*, outdated_only: bool) -> QuerySet[Blob]:
    """Verified blobs whose bytes can be read now, by id; `outdated_only`: those with no scan by the current scanner
    version (never scanned, or scanned by an older one). Archived bytes that need a restore first are left out, as
    the scrub leaves them: reading them would be refused."""
    blobs = (
        Blob.objects.filter(state=Blob.State.VERIFIED, collected_at__isnull=True)
        .exclude(storage_class__in=RESTORE_STORAGE_CLASSES)
        .order_by("id")
    )
    if outdated_only:
        current = BlobScan.objects.filter(blob=OuterRef("pk"), scanner_version=SCANNER_VERSION)
        blobs = blobs.filter(~Exists(current))
    return blobs
