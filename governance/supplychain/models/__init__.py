"""The supply-chain area's models, one module per kind of evidence."""

from governance.supplychain.models.attestations import AttestationKey, ProvenanceAttestation
from governance.supplychain.models.scans import BlobScan
from governance.supplychain.models.signatures import SigningMethod, TrustedSigningKey, VersionSignature

__all__ = [
    "AttestationKey",
    "BlobScan",
    "ProvenanceAttestation",
    "SigningMethod",
    "TrustedSigningKey",
    "VersionSignature",
]
