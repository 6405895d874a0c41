"""The API's request body parser: what any endpoint receives has been checked once, here, for what no endpoint
can hold. Request bodies are JSON (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES holds only this parser; any other
content type is a 415), except the raw bytes of blob and upload requests, which their views stream themselves.

Why in the parsers and not per field: PostgreSQL refuses a NUL character (U+0000) in text and in `jsonb` alike (a
DataError, answered 500), while SQLite stores it, so a per-field check is one more thing every new serializer field,
reference by name and endpoint would have to remember and that the unit tests (on SQLite) would not notice missing.
Every body reaches a view through this parser (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES), so refusing NUL
here covers every field of every endpoint, present and future, and names where in the body it was. Query strings
and paths get the same rule from `core.api.middleware`. Likewise the depth limit: Python's JSON decoder
recurses once per level and fails with RecursionError (a 500) around depth 1,000, before any view or permission
check runs, so the depth is measured without recursion before the text is decoded.
"""

import json
import re
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.settings import api_settings
from rest_framework.utils.json import strict_constant

#: Deepest nesting of arrays and objects a JSON body may have. Stored documents (metadata, parameters, schemas) are
#: limited to 32 levels by `core.validators`; the body around them adds a few, so 64 refuses no real request.
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
