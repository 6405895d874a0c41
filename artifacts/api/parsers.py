"""The API's request body parsers: what any endpoint receives has been checked once, here, for what no endpoint
can hold.

Why in the parsers and not per field: PostgreSQL refuses a NUL character (U+0000) in text and in `jsonb` alike (a
DataError, answered 500), while SQLite stores it, so a per-field check is one more thing every new serializer field,
reference by name and endpoint would have to remember and that the unit tests (on SQLite) would not notice missing.
Every body reaches a view through one of these parsers (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES), so refusing NUL
here covers every field of every endpoint, present and future, and names where in the body it was. Query strings
and paths get the same rule from `artifacts.api.middleware`. Likewise the depth limit: Python's JSON decoder
recurses once per level and fails with RecursionError (a 500) around depth 1,000, before any view or permission
check runs, so the depth is measured without recursion before the text is decoded.
"""

import json
import re
from typing import Any

from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError, UnsupportedMediaType, ValidationError
from rest_framework.settings import api_settings
from rest_framework.utils.json import strict_constant

#: Deepest nesting of arrays and objects a JSON body may have. Stored documents (metadata, parameters, schemas) are
#: limited to 32 levels by `artifacts.validators`; the body around them adds a few, so 64 refuses no real request.
MAX_JSON_DEPTH = 64

NUL = "\x00"
_STRUCTURE = re.compile(r'["\[\]{}]')
# The rest of a JSON string after its opening quote, written so the engine never backtracks (linear time).
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def nul_refusal(field: str, *, inside: str = "", in_name: bool = False) -> ValidationError:
    """A field error, `{field: [message]}` like any other, for a NUL in `field`'s value (at `inside` it, a path
    such as `[1]` or `a.b`) or, with `in_name`, in the name that ends that path."""
    field, inside = field.replace(NUL, "\\u0000"), inside.replace(NUL, "\\u0000")
    noun = "name" if in_name else "value"
    subject = f"The {noun} at {inside}" if inside else f"This {noun}"
    return ValidationError(
        {field: [f"{subject} contains a NUL character (\\u0000), which no name or text here can hold: remove it."]}
    )


def deeper_than(text: str, limit: int) -> bool:
    """Whether arrays and objects in `text` nest deeper than `limit`, found by one pass that skips strings.

    Malformed text may be answered either way; the JSON decoder then says what is wrong with it.
    """
    depth, position = 0, 0
    while found := _STRUCTURE.search(text, position):
        mark, position = found.group(), found.end()
        if mark == '"':
            string = _STRING_REST.match(text, position)
            if string is None:
                return False
            position = string.end()
        elif mark in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _nul_path(value: Any) -> tuple[list[str | int], bool] | None:
    """Where the first NUL in a decoded JSON document is: the keys and indexes leading to it, and whether it is in
    the last key's name rather than in a value. The document's depth is already bounded."""
    if isinstance(value, str):
        return ([], False) if NUL in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and NUL in key:
            return [key], True
        if found := _nul_path(item):
            return [key, *found[0]], found[1]
    return None


def _refuse_nul_in_document(data: Any) -> None:
    found = _nul_path(data)
    if found is None:
        return
    path, in_name = found
    if path and isinstance(path[0], str):
        field, rest = path[0], path[1:]
    else:
        field, rest = api_settings.NON_FIELD_ERRORS_KEY, path
    inside = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in rest).lstrip(".")
    raise nul_refusal(field, inside=inside, in_name=in_name)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing bodies nested deeper than MAX_JSON_DEPTH and NUL anywhere in names or text."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError as error:
            raise ParseError(f"JSON parse error - the body is not valid {encoding}: {error.reason}.") from None
        if deeper_than(text, MAX_JSON_DEPTH):
            raise ParseError(
                f"JSON parse error - arrays and objects nest more than {MAX_JSON_DEPTH} levels deep.", code="too_deep"
            )
        try:
            data = json.loads(text, parse_constant=strict_constant if self.strict else None)
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
        _refuse_nul_in_document(data)
        return data


def _refuse_nul_in_form(data: QueryDict) -> None:
    for name, values in data.lists():
        if NUL in name or any(NUL in value for value in values):
            raise nul_refusal(name, in_name=NUL in name)


class FormParser(parsers.FormParser):
    """Form posts (`curl -d name=value`), refusing NUL in names and values, and refusing JSON sent as a form.

    `curl -d '{"a": 1}'` without `-H 'Content-Type: application/json'` sends a form whose one field is named after
    the whole JSON text; answered as a form, that is an "unknown field" error nobody can act on.
    """

    def parse(self, stream, media_type=None, parser_context=None) -> QueryDict:
        body = stream.read()
        if body.lstrip()[:1] in (b"{", b"["):
            raise UnsupportedMediaType(
                media_type,
                detail=(
                    f"This body is JSON sent as {media_type or 'a form'}: send it with the header "
                    "`Content-Type: application/json` (with curl: -H 'Content-Type: application/json')."
                ),
            )
        data = QueryDict(body, encoding=parsers.get_encoding(parser_context or {}))
        _refuse_nul_in_form(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """Multipart forms, refusing NUL in field names and values (file contents are bytes, and left alone)."""

    def parse(self, stream, media_type=None, parser_context=None) -> parsers.DataAndFiles:
        parsed = super().parse(stream, media_type, parser_context)
        _refuse_nul_in_form(parsed.data)
        return parsed
