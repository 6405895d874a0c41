"""Format scans of stored bytes: one row per scan, never rewritten."""

from django.db import models

from core.models.base import WriteOnceModel


class BlobScan(WriteOnceModel):
    """What a scanner found in a blob's bytes: the format it detected from them, its verdict and the findings behind it.

    Scans are history, not a state: a rescan by a newer scanner adds a row and never rewrites the one before, so a
    promotion decided on an earlier verdict stays explainable, and the log's entries keep pointing at what they
    describe (a trigger refuses updates and deletes). The current scan of a blob is its latest by the current
    scanner version, else its latest (selectors/scans.py `blob_scan_current`).
    """

    class Format(models.TextChoices):
        PICKLE = "pickle", "Python pickle"
        PYTORCH = "pytorch", "PyTorch checkpoint (zip archive or legacy pickle)"
        JOBLIB = "joblib", "joblib dump"
        NUMPY = "numpy", "NumPy array (.npy) or archive of arrays (.npz)"
        SAFETENSORS = "safetensors", "safetensors"
        ONNX = "onnx", "ONNX model"
        GGUF = "gguf", "GGUF model"
        UNKNOWN = "unknown", "Not a model format the scanner knows"

    class Verdict(models.TextChoices):
        CLEAN = "clean", "Clean: nothing found"
        SUSPICIOUS = "suspicious", "Suspicious: imports the scanner does not know to be safe, or objects in an array"
        UNSAFE = "unsafe", "Unsafe: code run on load, or a header inconsistent with the file"
        ERROR = "error", "Error: the scan could not read the whole file, so the rest is unchecked"
        NOT_APPLICABLE = "not_applicable", "Not applicable: no model format was detected, nothing to scan"

    blob = models.ForeignKey("artifacts.Blob", on_delete=models.PROTECT, related_name="scans")
    detected_format = models.CharField(max_length=16, choices=Format.choices)
    scanner = models.CharField(max_length=64, help_text="The scanning library the checks were made with.")
    scanner_version = models.CharField(
        max_length=64, help_text="Its version and the version of Provenant's own header rules, e.g. 1.0.5+rules.1."
    )
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    findings = models.JSONField(
        default=list,
        blank=True,
        help_text="What was found: a list of {kind, severity, detail} with module, name, opcode or member if any.",
    )
    started_at = models.DateTimeField(help_text="When the scan began reading the bytes.")
    scanned_at = models.DateTimeField(help_text="When it finished and its result was recorded.")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    detected_format__in=[
                        "pickle",
                        "pytorch",
                        "joblib",
                        "numpy",
                        "safetensors",
                        "onnx",
                        "gguf",
                        "unknown",
                    ]
                ),
                name="blobscan_format_known",
            ),
            models.CheckConstraint(
                condition=models.Q(verdict__in=["clean", "suspicious", "unsafe", "error", "not_applicable"]),
                name="blobscan_verdict_known",
            ),
            models.CheckConstraint(condition=~models.Q(scanner_version=""), name="blobscan_has_scanner_version"),
            models.CheckConstraint(condition=models.Q(scanned_at__gte=models.F("started_at")), name="blobscan_times"),
        ]
        indexes = [
            # The current scan of a blob: its newest row (by the current version), blob_scan_current.
            models.Index(fields=["blob", "scanner_version", "-id"], name="blobscan_current"),
        ]

    def __str__(self) -> str:
        return f"scan {self.pk} of blob {self.blob_id}: {self.verdict}"

    @property
    def findings_count(self) -> int:
        return len(self.findings)
