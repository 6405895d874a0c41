"""Known vulnerabilities, as imported from OSV (https://osv.dev) by `manage.py import_osv`: what the "no known
vulnerable dependency" gate reads. Imported offline, so a promotion never waits on, or leaks to, a remote service.

One row per OSV record (its id, when it was last modified, its aliases such as a CVE) and one per package it
affects, with that package's ranges and versions as OSV wrote them: matching a version against them is done in
Python by the selector, with the ecosystem's own version order.
"""

from django.db import models
from django.db.models import Q


class Vulnerability(models.Model):
    """One OSV record (`PYSEC-2024-1`, `GHSA-…`): replaced whole when a newer `modified` is imported."""

    osv_id = models.CharField(max_length=100, unique=True, help_text="The OSV id, e.g. PYSEC-2021-421 or GHSA-….")
    modified = models.DateTimeField(help_text="When OSV last changed the record: an import keeps the newest.")
    published = models.DateTimeField(null=True, blank=True)
    withdrawn = models.DateTimeField(null=True, blank=True, help_text="A withdrawn record matches nothing.")
    aliases = models.JSONField(default=list, blank=True, help_text="Other ids of the same flaw (CVE-…, GHSA-…).")
    summary = models.TextField(blank=True)
    imported_at = models.DateTimeField()

    class Meta:
        ordering = ["osv_id"]
        verbose_name_plural = "vulnerabilities"
        constraints = [models.CheckConstraint(condition=~Q(osv_id=""), name="vulnerability_has_id")]

    def __str__(self) -> str:
        return self.osv_id


class AffectedPackage(models.Model):
    """One package a vulnerability affects in one ecosystem, with the ranges and versions OSV gives for it."""

    vulnerability = models.ForeignKey(Vulnerability, on_delete=models.CASCADE, related_name="affected")
    ecosystem = models.CharField(max_length=100, help_text="As OSV names it: PyPI, npm, crates.io, Go, Maven…")
    name = models.CharField(
        max_length=300, help_text="The package's name, normalized for its ecosystem (PyPI: PEP 503, e.g. scikit-learn)."
    )
    ranges = models.JSONField(default=list, blank=True, help_text='OSV ranges: [{"type": "ECOSYSTEM", "events": …}].')
    versions = models.JSONField(default=list, blank=True, help_text="Versions OSV lists as affected, explicitly.")

    class Meta:
        ordering = ["ecosystem", "name", "vulnerability"]
        indexes = [models.Index(fields=["ecosystem", "name"], name="affected_package_lookup")]
        constraints = [models.CheckConstraint(condition=~Q(name="") & ~Q(ecosystem=""), name="affected_package_named")]

    def __str__(self) -> str:
        return f"{self.ecosystem}/{self.name} ({self.vulnerability_id})"
