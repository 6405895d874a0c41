"""Shapes of identifiers and JSON documents, shared by models (admin, services) and the API.

Names end up in URLs, storage listings and shell scripts, so they are kept to a safe alphabet: no
slashes, no `..`, no control characters, bounded length.
"""

import math
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db.models import Q
from django.utils.deconstruct import deconstructible

# Ids are 64-bit in the database; a larger number is no id at all, not a database error.
MAX_ID = 2**63 - 1
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
DIGEST_PREFIX = "sha256:"


@deconstructible
class WholeValueRegexValidator(RegexValidator):
    r"""A RegexValidator whose pattern must match the whole value.

    Python's `$` also matches just before a trailing newline, so RegexValidator's `search` takes "abc\n" for "abc";
    PostgreSQL's check constraints do not, and would refuse the row with an IntegrityError (a 500). The patterns keep
    their `^…$` spelling because the OpenAPI schema publishes them, and ECMA regular expressions have no `\Z`.
    """

    def __call__(self, value: object) -> None:
        if not self.regex.fullmatch(str(value)):
            raise ValidationError(self.message, code=self.code, params={"value": value})


slug_validator = WholeValueRegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$",
    "Use 1-64 lowercase letters, digits and hyphens, starting and ending with a letter or digit.",
    code="invalid_slug",
)
name_validator = WholeValueRegexValidator(
    r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
    "Use 1-128 letters, digits, '.', '_' and '-', starting with a letter or digit; no '/', '..' or spaces.",
    code="invalid_name",
)
external_run_id_validator = WholeValueRegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
    "Use 1-128 letters, digits, '.', '_', ':' and '-', starting with a letter or digit.",
    code="invalid_run_id",
)
commit_validator = WholeValueRegexValidator(
    r"^[0-9a-f]{7,64}$",
    "A commit is 7-64 lowercase hexadecimal characters (a Git SHA-1 or SHA-256, full or abbreviated).",
    code="invalid_commit",
)
#: name_validator's shape as a database condition, for the CheckConstraint beside each such name.
NAME_SHAPE = Q(name__regex=r"^[A-Za-z0-9][A-Za-z0-9._-]*$") & ~Q(name__contains="..")
media_type_validator = WholeValueRegexValidator(
    r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$",
    "A media type looks like 'application/octet-stream'.",
    code="invalid_media_type",
)


def parse_digest(value: str) -> str:
    """Accept `sha256:<64 hex>` (or bare hex) and return the lowercase hex; raise ValidationError otherwise."""
    if not isinstance(value, str):
        raise ValidationError("A digest is a string like 'sha256:<64 hexadecimal characters>'.", code="invalid")
    text = value.strip()
    algorithm, sep, hex_part = text.partition(":")
    if not sep:
        algorithm, hex_part = "sha256", text
    if algorithm.lower() != "sha256":
        raise ValidationError(
            f"Unsupported digest algorithm '{algorithm}': only sha256 is accepted.", code="unsupported"
        )
    hex_part = hex_part.lower()
    if not SHA256_HEX.fullmatch(hex_part):
        raise ValidationError(
            "A sha256 digest is 64 hexadecimal characters, as in 'sha256:9f86d08...'.", code="invalid"
        )
    return hex_part


def validate_sha256_hex(value: str) -> None:
    if not SHA256_HEX.fullmatch(value or ""):
        raise ValidationError("Store a digest as 64 lowercase hexadecimal characters.", code="invalid")


def _check_json(value: Any, path: str, depth: int) -> None:
    if depth > 32:
        raise ValidationError(f"{path or 'The document'} is nested more than 32 levels deep.", code="too_deep")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationError(f"{path or 'A value'} contains a NUL character.", code="nul")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{path or 'A value'} is not a finite number.", code="not_finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or "\x00" in key:
                raise ValidationError(f"{path or 'The document'} has a key that is not a clean string.")
            _check_json(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]", depth + 1)
    elif value is not None and not isinstance(value, bool | int):
        raise ValidationError(f"{path or 'A value'} is not a JSON value.", code="not_json")


def validate_json_object(value: Any) -> None:
    """A JSON object that every database can store: no NUL characters (PostgreSQL refuses them), finite numbers."""
    if not isinstance(value, dict):
        raise ValidationError('Must be a JSON object, like {"key": "value"}.', code="not_object")
    _check_json(value, "", 0)


def validate_metrics(value: Any) -> None:
    """Metrics are a flat object of metric name to number, so they can be compared and thresholded."""
    validate_json_object(value)
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise ValidationError(f"Metric '{key}' must be a number, not {type(item).__name__}.", code="not_number")
