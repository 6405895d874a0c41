"""The supply-chain area's models, one module per kind of evidence."""

from governance.supplychain.models.vulnerabilities import AffectedPackage, Vulnerability

__all__ = ["AffectedPackage", "Vulnerability"]
