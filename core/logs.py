"""Structured logs: every line carries who and what it is about, in the web processes and in the workers.

One upload is followed from the web process that received it to the worker that verified it by its request id:
the request's context (request id, user, API token id, project) is bound in context variables that every log line
reads (structlog's `merge_contextvars`, also run for the standard library's loggers: Django's, Celery's, ours), and
travels with each task the request queues as a message header, which the worker binds again, with the task's id and
name, while the task runs.

Settings (config/settings/logs.py) build LOGGING from `logging_config`; nothing here imports Django's settings, so
a worker and a web process configure logging the same way from the same dictionary.
"""

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from django.utils.functional import empty

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

#: The context keys a queued task takes along to its worker (the task's own id and name are the worker's to add).
CARRIED_KEYS = ("request_id", "user", "user_id", "token_id", "project", "project_id", "upload_session")
#: The Celery message header that carries them.
TASK_HEADER = "provenant_log_context"

request_logger = logging.getLogger("provenant.request")

# A record's own attributes, and those formatters add to it (another handler may have formatted it first).
_PLAIN = (str, int, float, bool, type(None), list, dict)
_RECORD_KEYS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def add_extra(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """The `extra={...}` a standard library call passed (status, duration): fields of the line, not of its text."""
    record = event_dict.get("_record")
    if record is not None:
        for key, value in record.__dict__.items():
            # Plain values only: Django passes its request (or runserver's socket handler) along as `request`.
            if key not in _RECORD_KEYS and isinstance(value, _PLAIN):
                event_dict.setdefault(key, value)
    return event_dict


def shared_processors() -> list[Callable[..., Any]]:
    """What every line gets, whichever logger wrote it: the bound context, the level, the logger, a UTC time."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_extra,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def lead_with_the_basics(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """When, how bad, from where and what first; then the context, in the order it was bound."""
    first = {key: event_dict.pop(key) for key in ("timestamp", "level", "logger", "event") if key in event_dict}
    return first | event_dict


def logging_config(*, log_format: str, level: str, quiet_loggers: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A `LOGGING` dictionary whose one handler writes JSON lines (`json`) or coloured, aligned text (`console`)."""
    renderer = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": shared_processors(),
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    # JSON gets the traceback as a string field; the console renderer prints it itself.
                    *([structlog.processors.format_exc_info] if log_format == "json" else []),
                    lead_with_the_basics,
                    renderer,
                ],
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": quiet_loggers,
    }


def configure_structlog() -> None:
    """Route structlog's own loggers (`structlog.get_logger()`) through the standard library's handler above."""
    structlog.configure(
        processors=[*shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def bind(**values: Any) -> None:
    """Add facts to every later log line of this request or task (a project once a view has resolved it)."""
    structlog.contextvars.bind_contextvars(**{key: value for key, value in values.items() if value not in (None, "")})


def bind_user(user: Any, token: Any = None) -> None:
    """The acting user and, when the request authenticated with one, the API token's id (never the token)."""
    if getattr(user, "is_authenticated", False):
        bind(user=user.get_username(), user_id=user.pk, token_id=getattr(token, "pk", None))


class RequestLogMiddleware:
    """Binds the request id, method and path for the request's lines, and writes one line when it is answered
    (status, duration, and the user as authentication found them: DRF authenticates inside the view).

    Placed after AuditContextMiddleware, whose request id (the caller's X-Request-ID, or a new one) it reuses.
    """

    def __init__(self, get_response: Callable[["HttpRequest"], "HttpResponse"]) -> None:
        self.get_response = get_response

    def __call__(self, request: "HttpRequest") -> "HttpResponse":
        structlog.contextvars.clear_contextvars()
        bind(request_id=getattr(request, "request_id", ""), method=request.method, path=request.path)
        # A portal session's user is known now (no query without a session cookie); a bearer token's user is bound
        # when DRF authenticates it (governance/access/authentication.py), before the view queues any task.
        bind_user(getattr(request, "user", None))
        started = time.monotonic()
        try:
            response = self.get_response(request)
            # The session's user (the portal), or the one DRF set on the request; reading it does not load a
            # session nobody opened.
            user = getattr(request, "user", None)
            if user is not None and getattr(user, "_wrapped", None) is not empty:
                bind_user(user, getattr(request, "auth", None))
            request_logger.info(
                "request",
                extra={"status": response.status_code, "duration_ms": round((time.monotonic() - started) * 1000, 1)},
            )
            return response
        finally:
            structlog.contextvars.clear_contextvars()


# Celery's signals: connected in config/celery.py, for web processes (which publish) and workers (which run).


def carried_context() -> dict[str, Any]:
    """The part of the current log context a task queued now takes along."""
    context = structlog.contextvars.get_contextvars()
    return {key: context[key] for key in CARRIED_KEYS if key in context}


def task_publishing(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """before_task_publish: the queuing request's context goes along with the message."""
    if headers is None:
        return
    if carried := carried_context():
        headers[TASK_HEADER] = carried


def task_starting(task: Any = None, task_id: str | None = None, **_: Any) -> None:
    """task_prerun: the worker's lines for this task carry the queuing request's context, the task's id and name.

    A task run eagerly (no broker) runs inside its caller, whose context it keeps and gives back when it ends.
    """
    request = getattr(task, "request", None)
    name = getattr(task, "name", "unknown")
    if getattr(request, "is_eager", False):
        tokens = structlog.contextvars.bind_contextvars(task_id=task_id, task_name=name)
        request._provenant_log_tokens = tokens
        return
    structlog.contextvars.clear_contextvars()
    carried = (request.get(TASK_HEADER) if request is not None else None) or {}
    bind(**{key: value for key, value in carried.items() if key in CARRIED_KEYS}, task_id=task_id, task_name=name)


def task_ended(task: Any = None, **_: Any) -> None:
    """task_postrun: forget the task's context (or give an eager task's caller its own back)."""
    request = getattr(task, "request", None)
    tokens = getattr(request, "_provenant_log_tokens", None)
    if tokens is not None:
        structlog.contextvars.reset_contextvars(**tokens)
        request._provenant_log_tokens = None
        return
    structlog.contextvars.clear_contextvars()
