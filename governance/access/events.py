"""What an access review's events say. Given to the change's ChangeSet, which writes them through core.outbox."""

from django.db.models import Model

from artifacts.models import Project
from core.audit.recorder import format_time
from core.changes import ChangeSet
from core.events import EventType
from governance.access.models import AccessReviewItem


def access_review_completed_events(changes: ChangeSet, campaign: Model) -> None:
    """One event for each project the campaign covered, counting that project's items."""
    counts: dict[int, dict[str, int]] = {}
    for project_id, decision in AccessReviewItem.objects.filter(campaign=campaign).values_list(
        "project_id", "decision"
    ):
        tally = counts.setdefault(project_id, {"items": 0, "kept": 0, "revoked": 0})
        tally["items"] += 1
        tally["kept"] += decision == AccessReviewItem.Decision.KEEP
        tally["revoked"] += decision == AccessReviewItem.Decision.REVOKE
    for project in Project.objects.filter(pk__in=counts).order_by("pk"):
        changes.event(
            EventType.ACCESS_REVIEW_COMPLETED,
            project=project,
            data={
                "access_review": {
                    "id": campaign.pk,
                    "title": campaign.title,
                    "opened_at": format_time(campaign.opened_at),
                    "completed_at": format_time(campaign.completed_at),
                    **counts[project.pk],
                }
            },
        )
