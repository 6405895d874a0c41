"""How the supply-chain area follows what happens to bytes in the catalog (connected in apps.ready)."""

from governance.supplychain.services.scans import blob_scan_on_verified


def scan_verified_blob(sender, blob, before, **kwargs) -> None:
    """Bytes just proved (first proof or repair) are scanned once the verification commits."""
    blob_scan_on_verified(blob=blob, before=before)
