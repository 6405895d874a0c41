"""Who may keep a copy of an answer: nobody but the person it was for, and for pages not even them.

Every page of the portal and the admin shown to a signed-in person says `Cache-Control: private, no-store`: it
holds what their roles let them see (grants, audit entries, promotion decisions), a shared cache must never serve
it to someone else, and a browser must not keep it on disk where the next person at the machine opens it with the
back button after signing out.

The API is answered the same (`private, no-store`) when the request was authenticated, unless the view chose its
own caching: its JSON is private and changes (a request's state, a grant), so a stored copy would be stale or
leak. The one exception is deliberate: the bytes under a digest never change, so downloads say `private,
max-age=31536000, immutable` with their ETag (artifacts/api/downloads.py): the client's own cache may keep them
and revalidate with If-None-Match, and a shared cache may not.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_cache_control

API_PREFIX = "/api/"


class PrivateResponsesMiddleware:
    """Marks every answer to an authenticated request private and not to be stored (see the module's docstring).
    Sits after AuthenticationMiddleware; DRF sets `request.user` on the Django request when a bearer token
    authenticates it, so API requests are seen as authenticated here too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return response
        if request.path_info.startswith(API_PREFIX) and response.has_header("Cache-Control"):
            return response
        patch_cache_control(response, private=True, no_store=True)
        return response
