"""The supply-chain area's models, one module per kind of evidence."""

from governance.supplychain.models.scans import BlobScan

__all__ = ["BlobScan"]
