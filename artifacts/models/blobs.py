from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef

from artifacts.access.querysets import ProjectScopedQuerySet
from artifacts.access.rule import User
from core.validators import DIGEST_PREFIX, validate_sha256_hex


class BlobQuerySet(ProjectScopedQuerySet):
    """Bytes are shared between projects, the claims on them are not: a blob is reached through the projects
    holding it (ProjectBlob)."""

    project_path = None

    def access_condition(self, user: User, verb: str) -> Exists:
        """Some project holding the blob is one where `user` holds `verb`."""
        return Exists(ProjectBlob.objects.where(user, verb).filter(blob=OuterRef("pk")))


class Blob(models.Model):
    """Bytes identified by their SHA-256 digest, stored once however many versions or projects use them.

    Digest and size never change (a database trigger refuses it); only the verification state moves.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending verification"
        VERIFIED = "verified", "Verified"
        CORRUPT = "corrupt", "Corrupt"

    digest = models.CharField(
        max_length=64,
        unique=True,
        validators=[validate_sha256_hex],
        help_text="SHA-256 of the bytes, lowercase hex.",
    )
    size = models.BigIntegerField(help_text="Size in bytes.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    verified_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the last verification of the stored bytes began, whatever it found; empty until one has.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    storage_class = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text="The S3 storage class the bytes were moved to by archival; empty: the bucket's default class.",
    )
    archived_at = models.DateTimeField(
        null=True, blank=True, help_text="When archival moved the bytes to a colder storage class."
    )
    restore_requested_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a restore of archived bytes that cannot be read at once was last requested.",
    )
    collected_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "When the garbage collector removed the bytes from storage, once no live version needed them; empty "
            "while they are stored. Receiving the same bytes again stores them and empties it."
        ),
    )

    objects = BlobQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(size__gt=0), name="blob_size_positive"),
            models.CheckConstraint(condition=models.Q(digest__regex=r"^[0-9a-f]{64}$"), name="blob_digest_shape"),
            models.CheckConstraint(
                condition=models.Q(state="pending") | models.Q(verified_at__isnull=False),
                name="blob_checked_state_has_time",
            ),
        ]
        indexes = [
            # The scrub re-proves verified blobs least recently verified first (services.integrity.blob_scrub).
            # Partial, so it holds only the rows the scrub walks, and those never have an empty verified_at,
            # which PostgreSQL and SQLite would sort at opposite ends.
            models.Index(fields=["verified_at", "id"], condition=models.Q(state="verified"), name="blob_scrub_order"),
        ]

    def __str__(self) -> str:
        return self.prefixed_digest

    @property
    def prefixed_digest(self) -> str:
        return f"{DIGEST_PREFIX}{self.digest}"

    @property
    def is_collected(self) -> bool:
        return self.collected_at is not None

    @property
    def storage_key(self) -> str:
        """Where the bytes live in blob storage: fanned out by the digest's first bytes."""
        return storage_key_for(self.digest)


def storage_key_for(digest: str) -> str:
    return f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"


class ProjectBlob(models.Model):
    """A project's claim on a blob: it uploaded those bytes, so its members may use and download them.

    Storage keeps one copy across projects; knowing a digest never reaches another project's bytes.
    """

    project = models.ForeignKey("artifacts.Project", on_delete=models.PROTECT, related_name="blob_links")
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="project_links")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "blob"], name="project_blob_once")]

    def __str__(self) -> str:
        return f"{self.project.slug}@{self.blob.prefixed_digest}"
