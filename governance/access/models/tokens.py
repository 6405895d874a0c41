from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """A bearer token for pipelines and the CLI. Only its SHA-256 is stored; the token is shown once at issue."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'nightly-training-pipeline'.")
    prefix = models.CharField(max_length=16, db_index=True, help_text="First characters, to recognise the token.")
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token, lowercase hex.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")), name="token_expires_after_issue"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def status(self) -> str:
        """active, expired or revoked: revocation is the stronger fact, so it wins over expiry."""
        return "revoked" if self.is_revoked else "expired" if self.is_expired else "active"
