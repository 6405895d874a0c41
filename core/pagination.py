"""Keyset paging for server-rendered lists that grow while people read them (the portal's audit log): a page costs
the same whatever the list's length, and no row is skipped or shown twice as rows are added. The API's lists page
the same way with DRF's cursor (core/api/pagination.py); short lists keep Django's numbered Paginator."""

from dataclasses import dataclass
from typing import Any

from django.db.models import Model, QuerySet
from django.http import QueryDict

from core.validators import MAX_ID

#: The query parameters a keyset page reads: `before` (older than that key) and `after` (newer than it).
PAGING = ("before", "after")


@dataclass(frozen=True)
class KeysetPage:
    """A page of rows, newest first, with the query strings of the pages either side (None at an end)."""

    rows: list[Any]
    older: str | None
    newer: str | None


def _key(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() and int(value) <= MAX_ID else None


def keyset_page(rows: QuerySet[Model], query: QueryDict, *, key: str, size: int) -> KeysetPage:
    """The page of `rows` (ordered by the integer column `key`, newest = largest) that `before` or `after` in
    `query` asks for; the newest without either. Two queries at most: the page, and whether anything lies beyond
    the end it started from. A value that is not a key reads as absent."""
    before, after = _key(query.get("before")), _key(query.get("after"))
    if after is not None:
        page = list(rows.filter(**{f"{key}__gt": after}).order_by(key)[: size + 1])
        has_newer = len(page) > size
        page = page[:size][::-1]
        has_older = rows.filter(**{f"{key}__lte": after}).exists()
    else:
        older_than = rows if before is None else rows.filter(**{f"{key}__lt": before})
        page = list(older_than.order_by(f"-{key}")[: size + 1])
        has_older = len(page) > size
        page = page[:size]
        has_newer = before is not None and rows.filter(**{f"{key}__gte": before}).exists()

    def link(name: str, value: int) -> str:
        params = query.copy()
        for paging in PAGING:
            params.pop(paging, None)
        params[name] = str(value)
        return params.urlencode()

    # An empty page past either end links back to the other one.
    older = link("before", getattr(page[-1], key) if page else after + 1) if has_older else None
    newer = link("after", getattr(page[0], key) if page else before - 1) if has_newer else None
    return KeysetPage(page, older, newer)
