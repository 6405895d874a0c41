"""Sortable, paginated tables for every portal list: one reading of `?sort=` and `?page=`, checked against what
the view allows, so that no list can be ordered by a column it did not mean to expose and no address can cause a
500. The template side is `{% sort_header %}` (governance/portal/templatetags/portal.py) and
templates/portal/_pagination.html.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest


@dataclass(frozen=True)
class Sorting:
    """The order a table is shown in: `key` one of the view's allowed sorts, `descending` its direction."""

    key: str
    descending: bool
    allowed: frozenset[str]

    @property
    def param(self) -> str:
        """The value of `?sort=` that asks for this order."""
        return f"-{self.key}" if self.descending else self.key

    def toggled(self, key: str) -> str:
        """The `?sort=` value a click on `key`'s header asks for: the other direction of the current column, else
        that column ascending."""
        if key == self.key:
            return key if self.descending else f"-{key}"
        return key

    def aria_sort(self, key: str) -> str | None:
        """The th's aria-sort for `key`: only the column the table is sorted by carries one."""
        if key != self.key:
            return None
        return "descending" if self.descending else "ascending"


@dataclass(frozen=True)
class SortedPage:
    page: Page
    sorting: Sorting


def parse_sort(value: str | None, allowed: Mapping[str, object], default: str) -> tuple[str, bool]:
    """`value` ("name" or "-name") as (key, descending) when its key is allowed; otherwise the default's."""
    for candidate in (value or "", default):
        key = candidate.removeprefix("-")
        if key in allowed:
            return key, candidate.startswith("-")
    raise ValueError(f"the default sort {default!r} is not among the allowed sorts")


def sort_and_page(
    request: HttpRequest,
    queryset: QuerySet,
    *,
    allowed_sorts: Mapping[str, str | Sequence[str]],
    default: str,
    per_page: int,
) -> SortedPage:
    """One page of `queryset`, ordered as `?sort=` asks when it names one of `allowed_sorts` (a public key to the
    field or fields it orders by; "-key" reverses them all), else by `default`. The primary key breaks ties, so
    a row never shows on two pages or none. A page number that is not a number is the first page; one past the
    end is the last (Django's `get_page`)."""
    key, descending = parse_sort(request.GET.get("sort"), allowed_sorts, default)
    fields = allowed_sorts[key]
    fields = [fields] if isinstance(fields, str) else list(fields)
    order = [_reverse(field) if descending else field for field in [*fields, "pk"]]
    page = Paginator(queryset.order_by(*order), per_page).get_page(request.GET.get("page"))
    return SortedPage(page=page, sorting=Sorting(key=key, descending=descending, allowed=frozenset(allowed_sorts)))


def _reverse(field: str) -> str:
    return field.removeprefix("-") if field.startswith("-") else f"-{field}"
