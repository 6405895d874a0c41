"""The supply-chain area's models, one module per kind of evidence."""

from governance.supplychain.models.attestations import AttestationKey, ProvenanceAttestation
from governance.supplychain.models.scans import BlobScan
from governance.supplychain.models.signatures import SigningMethod, TrustedSigningKey, VersionSignature
from governance.supplychain.models.vulnerabilities import AffectedPackage, Vulnerability

__all__ = [
    "AffectedPackage",
    "AttestationKey",
    "BlobScan",
    "ProvenanceAttestation",
    "SigningMethod",
    "TrustedSigningKey",
    "VersionSignature",
    "Vulnerability",
]
