"""What the portal keeps of its own: the e-mail digests it sent, so that none is sent twice the same day."""

from django.conf import settings
from django.db import models


class InboxDigest(models.Model):
    """One e-mail telling a person what awaits them (governance/portal/services.py `inbox_digest_send`): to whom,
    for which day, when it went, and what it listed. At most one per person and day, in the database too, so a
    schedule that runs twice, or a task delivered twice, never sends the same digest again."""

    # A courtesy e-mail's record, not governance data: it goes with its user rather than keep one from being deleted.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inbox_digests")
    day = models.DateField(help_text="The day (UTC) the digest is for.")
    sent_at = models.DateTimeField()
    email = models.EmailField(help_text="The address it was sent to.")
    listed = models.JSONField(
        help_text='What it listed: {"promotions": [ids], "campaigns": {id: pending items}, "plans": [ids]}.'
    )

    class Meta:
        ordering = ["-day", "user_id"]
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="inbox_digest_once_a_day")]

    def __str__(self) -> str:
        return f"digest of {self.day} to {self.email}"
