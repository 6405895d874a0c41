"""Serializer fields every resource shares: digests, commits, JSON documents, and references resolved only
among what the user may see."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.validators import MAX_ID, parse_digest

# parse_digest's language exactly: optional sha256: (any case), 64 hex digits (any case), surrounding whitespace.
DIGEST_PATTERN = r"^\s*(?:[Ss][Hh][Aa]256:)?[0-9A-Fa-f]{64}\s*$"
DIGEST_SCHEMA = {
    "type": "string",
    "pattern": DIGEST_PATTERN,
    "example": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
}
# commit_validator's language after the service lowercases it, or none (blank); a CharField trims whitespace.
COMMIT_SCHEMA = {"type": "string", "pattern": r"^\s*(?:[0-9A-Fa-f]{7,64})?\s*$", "example": "3f2a9c1"}


@extend_schema_field(DIGEST_SCHEMA)
class DigestField(serializers.CharField):
    """`sha256:<64 hex>` in and out; the stored form is bare lowercase hex.

    Its schema is DIGEST_SCHEMA alone: the length limit applies after trimming, so no valid digest reaches it.
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", 80)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> str:
        text = super().to_internal_value(data)
        try:
            return f"sha256:{parse_digest(text)}"
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages[0]) from None


@extend_schema_field(COMMIT_SCHEMA)
class CommitField(serializers.CharField):
    """A Git commit, checked by the run model's commit_validator (after the service lowercases it); this field
    only gives the schema that validator's shape."""


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object (its validators check it with validate_json_object): never null, a list or a scalar."""


@extend_schema_field({"type": "object", "additionalProperties": {"type": "number"}})
class MetricsField(serializers.JSONField):
    """Metrics: a flat object of metric name to number (its validators check it with validate_metrics)."""


class VisibleOnlyMixin:
    """A reference resolves only among what the requesting user may see: anything else is "not found",
    exactly like an id that does not exist, so guessing ids or names reveals nothing."""

    def get_queryset(self):
        request = self.context.get("request")
        queryset = super().get_queryset()
        return queryset.visible_to(request.user) if request is not None else queryset.none()


class ReferenceField(VisibleOnlyMixin, serializers.PrimaryKeyRelatedField):
    """A reference by id whose error names the kind of thing that was not found."""

    def __init__(self, noun: str, **kwargs) -> None:
        self.noun = noun
        # Ids are whole numbers a 64-bit column holds: 1.9 is no id, and 1e400 must not reach the database.
        not_an_id = f"A {noun} is referenced by its numeric id."
        kwargs.setdefault(
            "pk_field",
            serializers.IntegerField(
                min_value=1,
                max_value=MAX_ID,
                error_messages={"invalid": not_an_id, "max_value": not_an_id, "min_value": not_an_id},
            ),
        )
        super().__init__(**kwargs)
        self.error_messages["does_not_exist"] = f"No {noun} with id {{pk_value}}."
        self.error_messages["incorrect_type"] = f"A {noun} is referenced by its numeric id, not {{data_type}}."


class ReferenceListField(serializers.ListField):
    """A list of ids resolved with one query among what the user may see; unknown ids are named in the error."""

    def __init__(self, queryset: QuerySet, noun: str, **kwargs) -> None:
        self.queryset = queryset
        self.noun = noun
        kwargs.setdefault("max_length", 1000)
        super().__init__(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), **kwargs)

    def to_internal_value(self, data) -> list[Model]:
        ids = list(dict.fromkeys(super().to_internal_value(data)))
        request = self.context.get("request")
        visible = self.queryset.visible_to(request.user) if request is not None else self.queryset.none()
        found = visible.in_bulk(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise serializers.ValidationError(f"No {self.noun} with id {', '.join(map(str, missing))}.")
        return [found[i] for i in ids]
