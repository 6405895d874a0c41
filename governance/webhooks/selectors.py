"""Reads of events and deliveries as the people who run a project's webhooks see them."""

from django.db.models import OuterRef, QuerySet, Subquery

from artifacts.access.rule import User
from artifacts.models import Project
from core.models import Event
from governance.webhooks.models import EventQuerySet


def events_visible_to(user: User) -> QuerySet[Event]:
    """The outbox rows of projects `user` maintains or audits, each with its project's slug (`project_slug`):
    the outbox names projects by id, because core knows no domain model."""
    slug = Project.objects.filter(pk=OuterRef("project_id")).values("slug")
    return EventQuerySet(model=Event).visible_to(user).annotate(project_slug=Subquery(slug))
