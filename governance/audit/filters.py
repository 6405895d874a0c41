"""Query-string filters for the audit log's entries (django-filter): by object, actor, action, project, artifact
and time, combined with AND, so "who changed or downloaded artifact X between T1 and T2?" is one request:
`?artifact=X&since=T1&until=T2`."""

from datetime import UTC, datetime

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from core.audit.actions import ACTION_PREFIXES, AuditAction, action_filter_problem
from core.filters import IdFilter
from core.models import AuditEntry
from core.validators import MAX_ID
from governance.audit.selectors import entries_about_artifact

TIME_HELP = "An ISO 8601 time, e.g. 2026-01-31T12:00:00Z; in a query string write the + of an offset as %2B."


class TimeField(IsoDateTimeField):
    def clean(self, value: str | None) -> datetime | None:
        try:
            moment = super().clean(value)
        except ValidationError as error:
            if error.code != "invalid":
                raise
            # The help is a parameter, not part of the message: django-filter formats the API's messages with %
            # and the portal shows the form's unformatted, so a % written in the message would be wrong in one.
            raise ValidationError("Not a time. %(help)s", code="invalid", params={"help": TIME_HELP}) from None
        try:
            return moment.astimezone(UTC) if moment is not None else None
        except OverflowError:  # a time within a day of year 1 or 9999 whose offset carries it out of range
            raise ValidationError("The time is out of range: in UTC it must fall within years 1 to 9999.") from None


class TimeFilter(django_filters.IsoDateTimeFilter):
    """A time in the query string, or a 400 saying what a time looks like."""

    field_class = TimeField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("field_name", "recorded_at")
        super().__init__(*args, **kwargs)


class IdOrNameField(forms.CharField):
    """A whole number (an id the database can hold) or a name; returns (id or None, name)."""

    def clean(self, value: str | None) -> tuple[int | None, str] | None:
        value = super().clean(value)
        if not value:
            return None
        number = int(value) if value.isdigit() and 0 < int(value) <= MAX_ID else None
        return number, value


class ProjectFilter(django_filters.CharFilter):
    """A project by slug, as the other lists take it, or by id. The log names the project by the slug it had
    (slugs do not change), so a project's entries are found even for an id the caller cannot look up."""

    field_class = IdOrNameField

    def filter(self, queryset: QuerySet, value: tuple[int | None, str] | None) -> QuerySet:
        if value is None:
            return queryset
        number, slug = value
        return queryset.filter(Q(project_id=number) if number is not None else Q(project_label=slug))


class ActorFilter(django_filters.CharFilter):
    """A user by username or id; any other actor (a task, a command, a failed login's name) by its label.

    Each reading is an exact match on one column that an index ending in seq covers (audit_actor_seq,
    audit_actor_label_seq), so the newest-first page is a short backward read of that index, and an actor with no
    entry one lookup, whatever the log's size. A number may also be an all-digits username: both readings are
    asked for, but OR-ed they make PostgreSQL collect and sort every entry of the actor, so the username reading
    is added only when the log holds an entry by a user of that name (one index lookup): rare, and exact either
    way, since a reading no entry matches selects nothing."""

    field_class = IdOrNameField

    def filter(self, queryset: QuerySet, value: tuple[int | None, str] | None) -> QuerySet:
        if value is None:
            return queryset
        number, label = value
        if number is None:
            return queryset.filter(actor_label=label)
        condition = Q(actor_user_id=number)
        as_username = Q(actor_kind=AuditEntry.ActorKind.USER, actor_label=label)
        if AuditEntry.objects.filter(as_username).exists():
            condition |= as_username
        return queryset.filter(condition)


class ActionField(forms.CharField):
    """A declared action or a declared kind's prefix; anything else would select nothing, silently, so it is
    refused with the nearest known names (and, for an event type's name, the actions that record its act)."""

    def clean(self, value: str | None) -> str | None:
        value = super().clean(value)
        if value and (problem := action_filter_problem(value)):
            raise ValidationError(problem)
        return value or None


ACTION_HELP = (
    "An audit action's exact name (e.g. 'blob.downloaded'), or a kind followed by a dot for all its actions (e.g. "
    "'promotion_request.'): the names listed here, no others. Audit actions are not webhook event types "
    "('promotion.approved' is recorded as 'promotion_request.approved_by_reviewer'); any other value is a 400 "
    "naming the nearest actions."
)


# The schema lists the values the filter takes (a plain CharFilter would say "any string"); with an override,
# drf-spectacular takes the parameter's description from it too.
@extend_schema_field({"type": "string", "enum": [*AuditAction.values, *ACTION_PREFIXES], "description": ACTION_HELP})
class ActionFilter(django_filters.CharFilter):
    """An exact action, or with a trailing dot every action of that kind (`blob.`)."""

    field_class = ActionField

    def filter(self, queryset: QuerySet, value: str | None) -> QuerySet:
        if not value:
            return queryset
        return queryset.filter(action__startswith=value) if value.endswith(".") else queryset.filter(action=value)


class AuditEntryFilterForm(forms.Form):
    def clean(self) -> dict:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            raise ValidationError(
                {"until": f"until ({until.isoformat()}) is before since ({since.isoformat()}): no entry lies between."}
            )
        return cleaned


class AuditEntryFilter(django_filters.FilterSet):
    object_type = django_filters.CharFilter(
        help_text="The kind of object, e.g. artifact_version, project, role_grant.", max_length=64
    )
    object_id = django_filters.CharFilter(help_text="The object's id (with object_type).", max_length=100)
    artifact = IdFilter(
        method="about_artifact",
        help_text="Everything about this artifact: it, its versions, grants on it, and every download of its "
        "versions' bytes (through the project's blob endpoint too).",
    )
    project = ProjectFilter(help_text="Project slug or id.")
    actor = ActorFilter(help_text="Username or user id; or the label of a system actor, e.g. 'command audit_export'.")
    action = ActionFilter(
        help_text=ACTION_HELP,
        max_length=64,
    )
    since = TimeFilter(lookup_expr="gte", help_text=f"Recorded at or after this time. {TIME_HELP}")
    until = TimeFilter(lookup_expr="lte", help_text=f"Recorded at or before this time. {TIME_HELP}")

    def about_artifact(self, queryset: QuerySet, name: str, value: int | None) -> QuerySet:
        return queryset if value is None else entries_about_artifact(queryset, value)

    class Meta:
        model = AuditEntry
        form = AuditEntryFilterForm
        fields = ["object_type", "object_id", "artifact", "project", "actor", "action", "since", "until"]
