"""Who is acting, and from where, for the audit log: the current request, or the worker task or command.

Services know the object they change, and often the user; the request id, address, user agent and token belong
to the request. The middleware keeps the request at hand in a context variable, Celery's task signals name the
task that runs, and a process that is neither (a management command, a shell) is named by its command line.
"""

import ipaddress
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's own request id is kept when it is a plain token (a UUID, a trace id); anything else is replaced.
CALLER_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)
_system: ContextVar[str | None] = ContextVar("audit_system_actor", default=None)


@dataclass(frozen=True)
class RequestFacts:
    request_id: str = ""
    source_ip: str = ""
    user_agent: str = ""


def current_request() -> HttpRequest | None:
    return _request.get()


def request_facts(request: HttpRequest | None) -> RequestFacts:
    if request is None:
        return RequestFacts()
    return RequestFacts(
        request_id=getattr(request, "request_id", ""),
        source_ip=client_address(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
    )


def client_address(request: HttpRequest) -> str:
    """The client's IP address: the peer's, or with PROVENANT_TRUSTED_PROXY_HOPS proxies in front, the address
    the outermost trusted proxy saw (the rest of X-Forwarded-For is the client's to write, so it is not read)."""
    address = request.META.get("REMOTE_ADDR", "")
    hops = settings.PROVENANT_TRUSTED_PROXY_HOPS
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            address = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return ""


def running_task_label() -> str | None:
    """The task or job acting as system right now, if any (set around Celery tasks and `acting_as_system`)."""
    return _system.get()


def system_actor_label() -> str:
    """The name the log gives to acts no request made: the worker task, or the command line of this process."""
    if label := _system.get():
        return label
    program = Path(sys.argv[0]).name if sys.argv else "python"
    if program == "manage.py" and len(sys.argv) > 1:
        return f"command {sys.argv[1]}"
    return f"process {program}"[:200]


@contextmanager
def acting_as_system(label: str) -> Iterator[None]:
    """Record what happens inside as done by `label` (a task, a scheduled job), not by whoever runs the process."""
    token = _system.set(label[:200])
    try:
        yield
    finally:
        _system.reset(token)


def task_started(task=None, **_: object) -> None:
    """Celery's task_prerun signal: what the task records is the system's act, under the task's name."""
    _system.set(f"task {getattr(task, 'name', 'unknown')}"[:200])


def task_finished(**_: object) -> None:
    _system.set(None)


class AuditContextMiddleware:
    """Gives each request an id (the caller's X-Request-ID when it is a plain token, or a new UUID), returns it in
    the response, and keeps the request at hand for the audit recorder while it is served."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        caller_id = request.headers.get(REQUEST_ID_HEADER, "")
        request.request_id = caller_id if CALLER_REQUEST_ID.fullmatch(caller_id) else uuid.uuid4().hex
        token = _request.set(request)
        try:
            response = self.get_response(request)
        finally:
            _request.reset(token)
        response[REQUEST_ID_HEADER] = request.request_id
        return response
