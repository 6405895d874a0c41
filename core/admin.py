"""What every admin page shares: read-only and service-written bases, links, digests and sizes, paginators."""

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from core.errors import DomainError
from core.validators import DIGEST_PREFIX

# Display helpers: every page shows digests, sizes, JSON and related objects the same way. A helper
# returning None makes the admin print its empty-value dash.


def short_digest(digest: str) -> SafeString | None:
    """`sha256:9f86d081884c…`, with the whole digest on hover. Takes bare hex or the prefixed form."""
    hex_digest = digest.removeprefix(DIGEST_PREFIX)
    if not hex_digest:
        return None
    return format_html('<span title="{}{}">{}{}…</span>', DIGEST_PREFIX, hex_digest, DIGEST_PREFIX, hex_digest[:12])


def human_size(size: int | None) -> str | None:
    """`1.2 MB`; the exact byte count is one click away on the blob's page."""
    return None if size is None else filesizeformat(size)


def json_block(value: Any) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def admin_link(obj: models.Model | None) -> SafeString | None:
    """The object's name, linked to its page in this admin."""
    if obj is None:
        return None
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj)


def changelist_link(model: type[models.Model], label: str, **filters: Any) -> SafeString:
    """`label`, linked to `model`'s list narrowed by `filters` (admin lookup parameters)."""
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(filters), label)


# Shared behaviour -------------------------------------------------------------------------------------


class ViewOnlyMixin:
    """For the record's immutable rows: staff may look; nobody may add, change or delete them here.

    Works for model admins and inlines alike (inlines pass `obj` to has_add_permission too).
    """

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


class DigestSearchMixin:
    """Staff paste digests the way clients write them (`sha256:…`); the columns hold the bare hex."""

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        return super().get_search_results(request, queryset, search_term.replace(DIGEST_PREFIX, ""))


class VisibleOnlyAdmin(admin.ModelAdmin):
    """Staff see in the admin what the access rule lets them see elsewhere (superusers: everything)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).visible_to(request.user)


class ServiceWrittenAdmin(VisibleOnlyAdmin):
    """An admin whose adds and edits are calls to the model's services, and that deletes nothing.

    `fields` are the form's fields; `identity_fields` among them are chosen when the object is added and
    read-only from then on; `detail_fields` are read-only facts shown once the object exists.
    Subclasses define `create(request, data) -> obj` and `update(request, obj, data) -> obj`, each one
    service call.
    """

    identity_fields: tuple[str, ...] = ()
    detail_fields: tuple[str, ...] = ()

    def get_fields(self, request: HttpRequest, obj: models.Model | None = None) -> list[str]:
        return [*self.fields, *(self.detail_fields if obj else ())]

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None) -> tuple[str, ...]:
        return (*self.identity_fields, *self.detail_fields) if obj else ()

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: models.Model, form: forms.ModelForm, change: bool) -> None:
        if change:
            self.update(request, obj, form.cleaned_data)
            return
        created = self.create(request, form.cleaned_data)
        # The admin logs the addition and redirects using the instance its form built, so that instance
        # becomes the row the service wrote.
        for field in created._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False
        obj._state.db = created._state.db

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            # Form validation runs the model's validators and constraints, which catch what the services
            # refuse; this is the rare refusal that slips in between, such as another request taking the
            # same name meanwhile. Leaving by the exception rolls back the admin's transaction and skips its
            # log entry and "changed successfully" message; the user sees the reason on the form again.
            self.message_user(request, error.message, level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


def yes_no_filter(title: str, condition: Callable[[], Q]) -> type[admin.SimpleListFilter]:
    """A list filter offering Yes (rows matching `condition()`, evaluated per request) and No (the others)."""

    class YesNoFilter(admin.SimpleListFilter):
        parameter_name = title

        def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
            return [("yes", "Yes"), ("no", "No")]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            if self.value() == "yes":
                return queryset.filter(condition())
            if self.value() == "no":
                return queryset.exclude(condition())
            return queryset

    YesNoFilter.title = title
    return YesNoFilter


def skipped(refusals: list[str], shown: int = 10) -> str:
    """`Skipped N: reason. reason. …`, naming the first `shown` reasons (a bulk action may refuse thousands)."""
    more = f" … and {len(refusals) - shown} more." if len(refusals) > shown else ""
    return f"Skipped {len(refusals)}: " + " ".join(refusals[:shown]) + more


class ChosenThroughAutocompleteMixin:
    """For the admin of objects that other admins' forms choose through autocomplete (`autocomplete_fields`).

    Django answers /admin/autocomplete/ only to users who may view this admin, and offers every object this admin
    lists. A form may need both otherwise: a maintainer opening an access review chooses among the projects she may
    review without viewing projects in the admin. So the form's own admin decides, when it defines
    `autocomplete_choices(request, field_name) -> QuerySet | None`: the objects the field accepts from this user, or
    None when it has no say (then this admin's own permission and list apply, as in Django).
    """

    def _referred_choices(self, request: HttpRequest) -> QuerySet | None:
        match = request.resolver_match
        if match is None or match.view_name != f"{self.admin_site.name}:autocomplete":
            return None
        # The form's admin among those registered (as Django's autocomplete view finds it, but without a lookup of
        # a model by name: tests/test_real_imports.py).
        app_label, model_name = request.GET.get("app_label"), request.GET.get("model_name")
        source_admin = next(
            (
                model_admin
                for model, model_admin in self.admin_site._registry.items()
                if (model._meta.app_label, model._meta.model_name) == (app_label, model_name)
            ),
            None,
        )
        if source_admin is None:
            return None
        choices = getattr(source_admin, "autocomplete_choices", None)
        return None if choices is None else choices(request, request.GET.get("field_name", ""))

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        if obj is None and self._referred_choices(request) is not None:
            return True
        return super().has_view_permission(request, obj)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        choices = self._referred_choices(request)
        if choices is not None:
            queryset = queryset.filter(pk__in=choices.values("pk"))
        return super().get_search_results(request, queryset, search_term)


class VisibleChoicesMixin:
    """The projects and artifacts offered (and accepted) in a form are those the user may see: one they may not
    is refused like one that does not exist, and its name is never shown back."""

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name in ("project", "artifact"):
            field.queryset = field.queryset.visible_to(request.user)
        return field
