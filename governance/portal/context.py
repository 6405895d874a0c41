"""What every portal page reads the same way."""

from django.http import HttpRequest

from governance.audit import selectors

MAX_SEARCH_CHARS = 200


def search_text(request: HttpRequest) -> str:
    """The `q` a person typed, as text every database takes: trimmed, at most MAX_SEARCH_CHARS, NUL dropped
    (PostgreSQL refuses it in any text, so it could only fail)."""
    return request.GET.get("q", "").replace("\x00", "").strip()[:MAX_SEARCH_CHARS]


def audits(request: HttpRequest) -> bool:
    """Whether the signed-in user audits anything (opens the audit explorer), asked once per request: the
    navigation and the page itself both want to know."""
    if not hasattr(request, "_provenant_audits"):
        user = request.user
        request._provenant_audits = user.is_authenticated and selectors.audits_anything(user)
    return request._provenant_audits
