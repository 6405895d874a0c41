"""The supply-chain area's models, one module per kind of evidence."""

from governance.supplychain.models.attestations import AttestationKey, ProvenanceAttestation

__all__ = ["AttestationKey", "ProvenanceAttestation"]
