import uuid

from django.conf import settings
from django.db import models

from artifacts.access.querysets import ProjectScopedQuerySet
from core.validators import validate_sha256_hex


class UploadSession(models.Model):
    """A resumable upload of one blob into a project, sent as ordered chunks over several requests.

    The row carries everything needed to continue in another request or process: how many bytes have
    arrived, the SHA-256 state after them, and where the storage keeps them (a staging file or an S3
    multipart upload). A writer takes a short lease so two requests never append at once. Sessions that
    see no activity expire, and their partial data is removed with them.

    In direct mode (S3 only) the client sends the parts straight to the bucket with presigned URLs; a
    worker then hashes what arrived (state `verifying`) before the blob exists (`completed` or `failed`).
    """

    class State(models.TextChoices):
        RECEIVING = "receiving", "Receiving bytes"
        VERIFYING = "verifying", "Bytes received; a worker is checking their digest"
        COMPLETED = "completed", "Stored"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("artifacts.Project", on_delete=models.CASCADE, related_name="upload_sessions")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_sha256_hex],
        help_text="What the bytes must hash to; empty until the client names it, for a session started without one "
        "(API chunks to a folder), which it must do to finish.",
    )
    size = models.BigIntegerField(null=True, blank=True, help_text="Total size announced at the start, if known.")
    offset = models.BigIntegerField(default=0, help_text="Bytes received and kept so far.")
    hash_state = models.BinaryField(help_text="Serialized SHA-256 state after `offset` bytes.")
    storage_state = models.JSONField(help_text="Where the storage keeps the bytes received so far.")
    short_chunk_received = models.BooleanField(
        default=False, help_text="A chunk below the minimum size arrived; only finishing may follow."
    )
    writer = models.UUIDField(null=True, blank=True, help_text="The request currently appending, if any.")
    writer_until = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVING)
    failure = models.TextField(blank=True, help_text="Why the upload failed, for the client that asks.")
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(offset__gte=0), name="upload_offset_not_negative"),
            models.CheckConstraint(
                condition=models.Q(size__isnull=True) | models.Q(offset__lte=models.F("size")),
                name="upload_offset_within_size",
            ),
            # Only a session still receiving may be without its digest: nothing is stored, verified or failed
            # against a digest nobody named.
            models.CheckConstraint(
                condition=models.Q(state="receiving") | ~models.Q(digest=""), name="upload_digest_named_when_done"
            ),
        ]

    def __str__(self) -> str:
        of = f"sha256:{self.digest[:12]}…" if self.digest else "a digest not yet named"
        return f"upload {self.id} of {of} ({self.offset} bytes)"
