"""The event outbox: one row per domain event, written in the transaction of the change it reports.

It names its project by id, as the audit log does: core knows no domain model, and an event is a record that
outlives whatever it mentions. Who may read events is the webhooks area's business (governance.webhooks.selectors).
"""

import secrets

from django.db import models
from django.utils import timezone


def new_message_id() -> str:
    """The event's id, sent as `webhook-id` with every attempt to every endpoint: receivers de-duplicate on it."""
    return f"msg_{secrets.token_hex(12)}"


class Event(models.Model):
    """A domain event as sent: its type, schema version, project and exact JSON body (the outbox row)."""

    public_id = models.CharField(max_length=40, unique=True, default=new_message_id, editable=False)
    type = models.CharField(max_length=64, db_index=True)
    schema_version = models.PositiveSmallIntegerField()
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    project_id = models.BigIntegerField(help_text="The project the event is about (projects are never deleted).")
    # The JSON body exactly as sent: every attempt sends the same bytes under the same id.
    body = models.TextField()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project_id", "-id"], name="event_project_recent")]

    def __str__(self) -> str:
        return f"{self.type} {self.public_id}"
