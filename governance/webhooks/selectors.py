"""Reads of events and deliveries as the people who run a project's webhooks see them."""

from django.db.models import OuterRef, QuerySet, Subquery

from artifacts.models import Project
from core.models import Event
from governance.webhooks.models import managed_or_audited


def events_visible_to(user) -> QuerySet[Event]:
    """The outbox rows of projects `user` maintains or audits, each with its project's slug (`project_slug`):
    the outbox names projects by id, because core knows no domain model."""
    slug = Project.objects.filter(pk=OuterRef("project_id")).values("slug")
    return Event.objects.filter(managed_or_audited(user, "project_id")).annotate(project_slug=Subquery(slug))
