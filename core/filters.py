"""Filter fields every list shares, strict about their input: digests, commits, metadata paths, ids, booleans."""

import json
import math
import re
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTransform

from core.validators import MAX_ID, parse_digest

METADATA_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$")


class DigestField(forms.CharField):
    def clean(self, value: str | None) -> str | None:
        value = super().clean(value)
        return parse_digest(value) if value else None


class DigestFilter(django_filters.CharFilter):
    """`sha256:<hex>` (or bare hex) matched against one or more digest columns."""

    field_class = DigestField

    def __init__(self, *args, fields: tuple[str, ...], **kwargs) -> None:
        self.digest_fields = fields
        super().__init__(*args, **kwargs)

    def filter(self, queryset: QuerySet, value: str | None) -> QuerySet:
        if not value:
            return queryset
        condition = Q()
        for name in self.digest_fields:
            condition |= Q(**{name: value})
        return queryset.filter(condition)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a document can hold")


class MetadataField(forms.CharField):
    """`key:value`, where value is matched as JSON: unquoted numbers, true, false and null as themselves,
    `"quoted"` text as text, and anything else as the text it is."""

    def clean(self, value: str | None) -> tuple[list[str], Any] | None:
        value = super().clean(value)
        if not value:
            return None
        key, sep, raw = value.partition(":")
        if not sep or not METADATA_KEY.match(key):
            raise ValidationError(
                "Use key:value, e.g. metadata=framework:pytorch; nested keys with dots (metadata=train.epochs:10)."
            )
        if raw.lstrip()[:1] in ("[", "{"):
            # Arrays and objects are matched as the text they are, so they are never decoded: Python's decoder
            # recurses once per level, and a value nested a few thousand deep would end in RecursionError (a 500).
            return key.split("."), raw
        try:
            parsed = json.loads(raw, parse_constant=_reject_constant)
        except ValueError:
            parsed = raw
        if isinstance(parsed, float) and not math.isfinite(parsed):
            raise ValidationError(f"{raw} is too large to be a number in a document.")
        return key.split("."), parsed


class MetadataFilter(django_filters.CharFilter):
    field_class = MetadataField

    def filter(self, queryset: QuerySet, value: tuple[list[str], Any] | None) -> QuerySet:
        if value is None:
            return queryset
        path, expected = value
        # An explicit chain of key lookups, so no part of the key is ever read as a lookup name
        # (`metadata=contains:1` looks for a key named "contains").
        document = self.field_name
        for key in path:
            document = KeyTransform(key, document)
        alias = f"{self.field_name}_match"
        return queryset.alias(**{alias: document}).filter(**{alias: expected})


class IdFilter(django_filters.NumberFilter):
    """An id in the query string: a whole number the database can hold, or a 400."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.Field):
    """`true` or `false`, as the schema's boolean says; anything else is a 400. django-filter's own boolean field
    reads a value it does not know as "no filter" and answers the whole list, as if the client had asked for it."""

    VALUES = {"true": True, "false": False}

    def to_python(self, value: str | None) -> bool | None:
        if value in (None, ""):
            return None
        if value not in self.VALUES:
            raise ValidationError(f"Use true or false, not '{value}'.", code="invalid")
        return self.VALUES[value]


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


COMMIT_HELP = "Commit or its prefix (at least 7 characters)."


class CommitField(forms.RegexField):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(r"^[0-9a-fA-F]{7,64}$", *args, **kwargs)
        self.error_messages["invalid"] = "A commit is 7-64 hexadecimal characters."


class CommitFilter(django_filters.CharFilter):
    field_class = CommitField

    def filter(self, queryset: QuerySet, value: str | None) -> QuerySet:
        return queryset.filter(**{f"{self.field_name}__startswith": value.lower()}) if value else queryset
