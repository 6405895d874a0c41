"""Format scans of stored bytes (models/scans.py): append-only, so its last operations are the triggers refusing
updates and deletes."""

import django.db.models.deletion
from django.db import migrations, models

from core.triggers import RefuseDelete, RefuseUpdate


class Migration(migrations.Migration):
    dependencies = [
        ("artifacts", "0004_lifecycle_blob_states_and_tombstones"),
        ("supplychain", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="BlobScan",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "detected_format",
                    models.CharField(
                        choices=[
                            ("pickle", "Python pickle"),
                            ("pytorch", "PyTorch checkpoint (zip archive or legacy pickle)"),
                            ("joblib", "joblib dump"),
                            ("numpy", "NumPy array (.npy) or archive of arrays (.npz)"),
                            ("safetensors", "safetensors"),
                            ("onnx", "ONNX model"),
                            ("gguf", "GGUF model"),
                            ("unknown", "Not a model format the scanner knows"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "scanner",
                    models.CharField(help_text="The scanning library the checks were made with.", max_length=64),
                ),
                (
                    "scanner_version",
                    models.CharField(
                        help_text="Its version and the version of Provenant's own header rules, e.g. 1.0.5+rules.1.",
                        max_length=64,
                    ),
                ),
                (
                    "verdict",
                    models.CharField(
                        choices=[
                            ("clean", "Clean: nothing found"),
                            (
                                "suspicious",
                                "Suspicious: imports the scanner does not know to be safe, or objects in an array",
                            ),
                            ("unsafe", "Unsafe: code run on load, or a header inconsistent with the file"),
                            ("error", "Error: the scan could not read the whole file, so the rest is unchecked"),
                            ("not_applicable", "Not applicable: no model format was detected, nothing to scan"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "findings",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text="What was found: a list of {kind, severity, detail} with module, name, opcode or member if any.",
                    ),
                ),
                ("started_at", models.DateTimeField(help_text="When the scan began reading the bytes.")),
                ("scanned_at", models.DateTimeField(help_text="When it finished and its result was recorded.")),
                (
                    "blob",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="scans", to="artifacts.blob"
                    ),
                ),
            ],
            options={
                "ordering": ["-id"],
                "indexes": [models.Index(fields=["blob", "scanner_version", "-id"], name="blobscan_current")],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            (
                                "detected_format__in",
                                ["pickle", "pytorch", "joblib", "numpy", "safetensors", "onnx", "gguf", "unknown"],
                            )
                        ),
                        name="blobscan_format_known",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("verdict__in", ["clean", "suspicious", "unsafe", "error", "not_applicable"])
                        ),
                        name="blobscan_verdict_known",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("scanner_version", ""), _negated=True), name="blobscan_has_scanner_version"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("scanned_at__gte", models.F("started_at"))), name="blobscan_times"
                    ),
                ],
            },
        ),
        RefuseUpdate("BlobScan", "a scan is evidence: a rescan adds a row and never rewrites one"),
        RefuseDelete("BlobScan", "a scan is evidence: it is never removed"),
    ]
