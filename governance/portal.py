"""What every portal page reads the same way."""

from django.http import HttpRequest

MAX_SEARCH_CHARS = 200


def search_text(request: HttpRequest) -> str:
    """The `q` a person typed, as text every database takes: trimmed, at most MAX_SEARCH_CHARS, NUL dropped
    (PostgreSQL refuses it in any text, so it could only fail)."""
    return request.GET.get("q", "").replace("\x00", "").strip()[:MAX_SEARCH_CHARS]
