"""What the server refused, as exceptions a pipeline can catch by kind, carrying the server's own words.

The API answers every error as JSON in one of two shapes: a refusal `{"detail", "code"[, "field"]}`, or input that
does not validate, `{"<field>": ["message", ...], ...}`. Both become a `ProvenantError` whose class says what kind
of refusal it was (by HTTP status) and whose `code` is the server's stable, machine-readable one, so a caller never
has to parse a message or see a traceback of the HTTP library for a 4xx.
"""

from __future__ import annotations

import json
from typing import Any

import httpx


class ProvenantError(Exception):
    """A request the server refused or could not answer.

    `status` is the HTTP status (None when no answer came back at all), `code` the server's stable code
    (`not_found`, `permission_denied`, `invalid`...), `detail` its message for a person, `field` the input at fault
    when the server named one, and `errors` every field's messages for input that did not validate.
    """

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str = "error",
        field: str | None = None,
        errors: dict[str, list[str]] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.code = code
        self.field = field
        self.errors = errors or {}
        self.body = body

    def __str__(self) -> str:
        where = f" [{self.field}]" if self.field else ""
        status = f"{self.status} " if self.status is not None else ""
        return f"{status}{self.code}{where}: {self.detail}"


class InvalidInput(ProvenantError):
    """400: the input does not validate, or breaks a rule about its value."""


class AuthenticationFailed(ProvenantError):
    """401: no token, or one the server does not accept (expired, revoked, mistyped)."""


class PermissionDenied(ProvenantError):
    """403: the caller may see the object but lacks the role to do this; the detail names the roles that would."""


class NotFound(ProvenantError):
    """404: nothing there that the caller may see (the server answers the same for what exists but is hidden)."""


class Conflict(ProvenantError):
    """409: the request conflicts with the current state (a duplicate, a closed upload, corrupt bytes)."""


class ServerError(ProvenantError):
    """5xx, or no answer at all after every retry: the request may succeed later; nothing about it was wrong."""


class DigestMismatch(ProvenantError):
    """Bytes received do not hash to the digest they were asked for: nothing was kept."""


_BY_STATUS: dict[int, type[ProvenantError]] = {
    400: InvalidInput,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
}

_DEFAULT_CODES = {400: "invalid", 401: "not_authenticated", 403: "permission_denied", 404: "not_found"}


def error_from_response(response: httpx.Response) -> ProvenantError:
    """The exception for an answer of 400 or more, from its body when it has one of the API's two shapes.

    HEAD answers and some proxies' errors have no JSON body: the status alone then chooses the class and code.
    The response must have been read (`response.read()`) before a streamed body can be parsed.
    """
    status = response.status_code
    kind = ServerError if status >= 500 else _BY_STATUS.get(status, ProvenantError)
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        code = body.get("code") if isinstance(body.get("code"), str) else _DEFAULT_CODES.get(status, "error")
        field = body.get("field") if isinstance(body.get("field"), str) else None
        return kind(body["detail"], status=status, code=code, field=field, body=body)
    if isinstance(body, dict) and body and all(isinstance(messages, list) for messages in body.values()):
        errors = {name: [str(message) for message in messages] for name, messages in body.items()}
        detail = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())
        return kind(detail, status=status, code="invalid", field=next(iter(errors)), errors=errors, body=body)
    text = response.reason_phrase or "error"
    detail = f"{response.request.method} {response.request.url.path} answered {status} {text}"
    return kind(detail, status=status, code=_DEFAULT_CODES.get(status, "server_error" if status >= 500 else "error"))
