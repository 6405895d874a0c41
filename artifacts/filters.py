"""Query-string filters for the API's list endpoints (django-filter)."""

import json
import math
import re
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTransform

from artifacts.models import Artifact, ArtifactVersion, Blob, Dataset, DatasetVersion, Run
from artifacts.validators import MAX_ID, parse_digest

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


class DatasetFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")

    class Meta:
        model = Dataset
        fields = ["project", "name"]


# References are filtered by id, not validated as a choice among every row: a choice answers 400 for an id that
# does not exist and an empty page for one in a project the user may not see, which would tell the two apart.
class DatasetVersionFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="dataset__project__slug")
    dataset = IdFilter(field_name="dataset")
    run = IdFilter(field_name="run")
    digest = DigestFilter(fields=("blob__digest", "manifest_digest"), help_text="Blob or manifest digest.")

    class Meta:
        model = DatasetVersion
        fields = ["project", "dataset", "run", "digest"]


class RunFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")
    commit = CommitFilter(field_name="code_commit", help_text=COMMIT_HELP)
    dataset_version = IdFilter(
        field_name="dataset_inputs__dataset_version", help_text="Runs that consumed this dataset version."
    )
    artifact_version = IdFilter(
        field_name="artifact_inputs__artifact_version", help_text="Runs that consumed this artifact version."
    )
    parameter = MetadataFilter(field_name="parameters", help_text="key:value on the run's parameters.")

    class Meta:
        model = Run
        fields = [
            "project",
            "status",
            "external_id",
            "commit",
            "dataset_version",
            "artifact_version",
            "parameter",
        ]


class ArtifactFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")

    class Meta:
        model = Artifact
        fields = ["project", "kind", "name"]


class ArtifactVersionFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="artifact__project__slug")
    artifact = IdFilter(field_name="artifact")
    run = IdFilter(field_name="run")
    kind = django_filters.ChoiceFilter(field_name="artifact__kind", choices=Artifact.Kind.choices)
    commit = CommitFilter(field_name="run__code_commit", help_text="Versions produced by runs of this commit.")
    dataset_version = IdFilter(
        field_name="run__dataset_inputs__dataset_version",
        help_text="Versions produced by runs that consumed this dataset version.",
    )
    digest = DigestFilter(fields=("blob__digest",))
    metadata = MetadataFilter(field_name="metadata", help_text="key:value, e.g. framework:pytorch.")
    state = django_filters.ChoiceFilter(field_name="blob__state", choices=Blob.State.choices)

    class Meta:
        model = ArtifactVersion
        fields = [
            "project",
            "artifact",
            "kind",
            "run",
            "commit",
            "dataset_version",
            "digest",
            "metadata",
            "state",
        ]
