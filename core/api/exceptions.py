"""One translation from errors to HTTP for the whole API, so that every error under /api/ is JSON in one of two
documented shapes (the OpenAPI schema's `Error` and validation error components):

- a refusal that is not about the value of one input: `{"detail": "...", "code": "...", "field": "..."}`, where
  `detail` says what to do in words a person can act on, `code` is stable for programs, and `field` (present only
  when a rule names one) is the input at fault;
- input that does not validate: `{"<field>": ["message", ...], ...}`, one list of messages per field
  (`non_field_errors` for the input as a whole).

Errors come from three places, and each is translated here: DRF views (`exception_handler`), Django itself before
or outside any view (`bad_request`, `permission_denied`, `page_not_found` and `server_error`, installed as
config/urls.py's handler400/403/404/500: an unknown URL, a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a form with too
many fields, an unexpected exception), and the API's middleware (`error_response`). The portal keeps its own HTML
error pages: the Django handlers answer JSON only for paths under API_PREFIX.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import (
    DisallowedHost,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.exceptions import ErrorDetail, NotAcceptable, UnsupportedMediaType, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError

API_PREFIX = "/api/"


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def error_body(detail: str, code: str, field: str | None = None) -> dict[str, str]:
    return {"detail": detail, "code": code} | ({"field": field} if field else {})


def error_response(status_code: int, detail: str, code: str, field: str | None = None) -> JsonResponse:
    """An error answered outside DRF (Django's handlers, middleware), in the same shape DRF views answer."""
    return JsonResponse(error_body(detail, code, field), status=status_code)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(error_body(exc.message, exc.code, exc.field), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        return Response(error_body(" ".join(exc.messages), "invalid"), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, UnsupportedMediaType):
        sent = getattr(context.get("request"), "content_type", "") or "no Content-Type"
        exc.detail = ErrorDetail(
            f"Request bodies are JSON, sent with the header `Content-Type: application/json` (with curl: "
            f"-H 'Content-Type: application/json'); this one came as {sent}.",
            code=exc.default_code,
        )
    elif isinstance(exc, NotAcceptable):
        exc.detail = ErrorDetail(
            "Answers are JSON: ask for application/json in the Accept header, or send none.", code=exc.default_code
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API error: Django answers it (server_error, or bad_request for a body too big)
    data = response.data
    if isinstance(exc, ValidationError) or not (isinstance(data, dict) and set(data) == {"detail"}):
        response.data = field_errors(data)
    else:
        # DRF's own refusals (NotFound, PermissionDenied, NotAuthenticated, MethodNotAllowed, Throttled,
        # ParseError, UnsupportedMediaType...) carry their code on the message; the body carries it too.
        detail = data["detail"]
        response.data = error_body(str(detail), getattr(detail, "code", None) or "error")
    return response


def field_errors(data: Any) -> dict[str, list[str]]:
    """DRF validation errors as one flat list of messages per input field.

    DRF nests the errors of list items and nested objects (`{"owners": {"1": ["..."]}}`); the position inside the
    field is put in front of the message instead (`{"owners": ["[1]: ..."]}`), so every field's errors are a list
    of strings, as the schema says. A bare list (a ValidationError raised without a field) is the input's as a
    whole.
    """
    if not isinstance(data, dict):
        data = {api_settings.NON_FIELD_ERRORS_KEY: data}
    return {str(field): _messages(errors, "") for field, errors in data.items()}


def _messages(errors: Any, inside: str) -> list[str]:
    if isinstance(errors, dict):
        parts = errors.items()
    elif isinstance(errors, list) and any(isinstance(item, dict | list) for item in errors):
        parts = enumerate(errors)
    else:
        return [f"{inside}: {message}" if inside else str(message) for message in _as_list(errors)]
    return [
        message
        for key, item in parts
        if item
        for message in _messages(item, f"{inside}[{key}]" if str(key).isdigit() else f"{inside}.{key}".lstrip("."))
    ]


def _as_list(errors: Any) -> list:
    return errors if isinstance(errors, list) else [errors]


# Django's error handlers (config/urls.py) -----------------------------------------------------------------------


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Requests Django refuses before a view reads them (a SuspiciousOperation): a body too big is 413."""
    if not is_api_request(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return error_response(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"The request body is over the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes the API reads as JSON "
            "or a form. Send files as bytes: PUT them as a blob, or in an upload session.",
            "too_large",
        )
    if isinstance(exception, TooManyFieldsSent):
        return error_response(
            status.HTTP_400_BAD_REQUEST,
            f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} fields.",
            "too_many_fields",
        )
    if isinstance(exception, TooManyFilesSent):
        return error_response(
            status.HTTP_400_BAD_REQUEST,
            f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES:,} files.",
            "too_many_files",
        )
    if isinstance(exception, DisallowedHost):
        return error_response(
            status.HTTP_400_BAD_REQUEST, "This server does not answer to the host the request names.", "bad_host"
        )
    return error_response(status.HTTP_400_BAD_REQUEST, "The request could not be read as sent.", "bad_request")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api_request(request):
        return defaults.permission_denied(request, exception)
    detail = str(exception) or "You may not do this."
    return error_response(status.HTTP_403_FORBIDDEN, detail, "permission_denied")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """An address no API endpoint has (inside an endpoint, a missing object is DRF's 404, named by the view)."""
    if not is_api_request(request):
        return defaults.page_not_found(request, exception)
    return error_response(
        status.HTTP_404_NOT_FOUND,
        f"There is no API endpoint at {request.path}: the endpoints are listed in the schema, /api/v1/schema/ "
        "(to browse: /api/v1/docs/).",
        "not_found",
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """Rendered with nothing but the request: the error may be the database."""
    if not is_api_request(request):
        return defaults.server_error(request)
    return error_response(
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        "Something went wrong on our side; nothing in the request caused it. What was asked may not have been done: "
        "check before repeating it. If it keeps happening, tell the administrator the time it happened.",
        "server_error",
    )
