"""The input serializer every write shares: unknown and server-assigned fields refused, JSON types checked."""

from collections.abc import Mapping

from django.http import QueryDict
from rest_framework import serializers

SERVER_ASSIGNED = {"id", "number", "created_at", "created_by", "url", "size", "blob_state"}


class InputSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo or an attempt to set a server-assigned value is an error,
    not silently ignored; and in a JSON body, values of another JSON type than the field's."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            accepted = sorted(name for name, field in self.fields.items() if not field.read_only)
            errors = {}
            for name in data:
                if name in accepted:
                    continue
                if name in SERVER_ASSIGNED:
                    errors[name] = ["Assigned by the server; it cannot be given or changed."]
                else:
                    errors[name] = [f"Unknown field. Fields accepted here: {', '.join(accepted)}."]
            if errors:
                raise serializers.ValidationError(errors)
            # A form's values are all text; only JSON says which type a value is.
            if not isinstance(data, QueryDict):
                refuse_other_json_types(self.fields, data)
        return super().to_internal_value(data)


def _json_type(value) -> str:
    kinds = {
        bool: "true or false",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }
    return kinds.get(type(value), "null")


def _type_error(field: serializers.Field, value) -> list | dict | None:
    """Why `value` is not of the JSON type the schema gives `field`; None when it is (null is the field's own
    business: allow_null). DRF would read 1 as true, "5" as 5 and 5 as "5", which the schema does not promise."""
    if value is None:
        return None
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        errors = {str(i): error for i, item in enumerate(value) if (error := _type_error(field.child, item))}
        return errors or None
    if isinstance(field, serializers.BooleanField):
        expected, fits = "true or false", isinstance(value, bool)
    elif isinstance(field, serializers.PrimaryKeyRelatedField):
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        return [field.error_messages["incorrect_type"].format(data_type=type(value).__name__)]
    elif isinstance(field, serializers.IntegerField):
        expected, fits = "a whole number", isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(field, serializers.FloatField):
        expected, fits = "a number", isinstance(value, int | float) and not isinstance(value, bool)
    elif isinstance(field, serializers.CharField | serializers.ChoiceField | serializers.SlugRelatedField):
        expected, fits = "a string", isinstance(value, str)
    else:
        return None
    return None if fits else [f"Expected {expected}, not {_json_type(value)}."]


def refuse_other_json_types(fields: Mapping[str, serializers.Field], data: Mapping) -> None:
    """A ValidationError naming each value in `data` that is not of the JSON type its field's schema says."""
    errors = {
        name: error for name, value in data.items() if name in fields and (error := _type_error(fields[name], value))
    }
    if errors:
        raise serializers.ValidationError(errors)
