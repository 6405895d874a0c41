"""Vulnerability data imported from OSV (governance/supplychain/models/vulnerabilities.py), read by the dependency gate."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("supplychain", "0004_attestations"),
    ]

    operations = [
        migrations.CreateModel(
            name="Vulnerability",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "osv_id",
                    models.CharField(
                        help_text="The OSV id, e.g. PYSEC-2021-421 or GHSA-….", max_length=100, unique=True
                    ),
                ),
                (
                    "modified",
                    models.DateTimeField(help_text="When OSV last changed the record: an import keeps the newest."),
                ),
                ("published", models.DateTimeField(blank=True, null=True)),
                (
                    "withdrawn",
                    models.DateTimeField(blank=True, help_text="A withdrawn record matches nothing.", null=True),
                ),
                (
                    "aliases",
                    models.JSONField(blank=True, default=list, help_text="Other ids of the same flaw (CVE-…, GHSA-…)."),
                ),
                ("summary", models.TextField(blank=True)),
                ("imported_at", models.DateTimeField()),
            ],
            options={
                "verbose_name_plural": "vulnerabilities",
                "ordering": ["osv_id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("osv_id", ""), _negated=True), name="vulnerability_has_id"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="AffectedPackage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "ecosystem",
                    models.CharField(help_text="As OSV names it: PyPI, npm, crates.io, Go, Maven…", max_length=100),
                ),
                (
                    "name",
                    models.CharField(
                        help_text="The package's name, normalized for its ecosystem (PyPI: PEP 503, e.g. scikit-learn).",
                        max_length=300,
                    ),
                ),
                (
                    "ranges",
                    models.JSONField(
                        blank=True, default=list, help_text='OSV ranges: [{"type": "ECOSYSTEM", "events": …}].'
                    ),
                ),
                (
                    "versions",
                    models.JSONField(blank=True, default=list, help_text="Versions OSV lists as affected, explicitly."),
                ),
                (
                    "vulnerability",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="affected",
                        to="supplychain.vulnerability",
                    ),
                ),
            ],
            options={
                "ordering": ["ecosystem", "name", "vulnerability"],
                "indexes": [models.Index(fields=["ecosystem", "name"], name="affected_package_lookup")],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("name", ""), _negated=True), models.Q(("ecosystem", ""), _negated=True)
                        ),
                        name="affected_package_named",
                    )
                ],
            },
        ),
    ]
