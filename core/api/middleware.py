from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import get_urlconf, is_valid_path
from rest_framework import status

from core.api.exceptions import error_response, is_api_request
from core.api.parsers import NUL, nul_refusal


class ApiRequestGuard:
    """Refuses, before any view, filter or authentication reads it, an API request no endpoint can answer well:

    - a NUL character (U+0000) in the query parameters (400, a field error naming the parameter, as filters answer
      a bad value) or in the path (404: no name here contains one). The parsers in core.api.parsers refuse NUL
      in request bodies, for the reason given there: PostgreSQL cannot compare or store text that holds one (a
      DataError, answered 500), SQLite can, so a check per filter or lookup is one more thing each new endpoint
      would have to remember. Here it is one check for every endpoint at once. The portal is left alone: it drops
      NUL from a search instead, where a person typed it.
    - a path that lacks only its trailing slash (404 naming the path with it). Django's APPEND_SLASH would answer an
      empty HTML redirect that a client following no redirects takes for success, or, under DEBUG, a 500 for a
      POST; an API client is told the right URL instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api_request(request):
            return self.get_response(request)
        if NUL in request.path_info:
            return error_response(
                status.HTTP_404_NOT_FOUND,
                "Nothing here: no name in the API contains a NUL character (%00).",
                "not_found",
            )
        for name, values in request.GET.lists():
            if NUL in name or any(NUL in value for value in values):
                refusal = nul_refusal(name, in_name=NUL in name)
                return JsonResponse(refusal.detail, status=status.HTTP_400_BAD_REQUEST)
        if missing_slash := self._missing_slash(request):
            return error_response(
                status.HTTP_404_NOT_FOUND,
                f"No endpoint at {request.path}: API paths end with a slash, as in {missing_slash}.",
                "not_found",
            )
        return self.get_response(request)

    @staticmethod
    def _missing_slash(request: HttpRequest) -> str | None:
        """The path with a slash appended, when only that slash keeps the request's path from an endpoint."""
        path = request.path_info
        if not settings.APPEND_SLASH or path.endswith("/"):
            return None
        urlconf = getattr(request, "urlconf", get_urlconf())
        if is_valid_path(path, urlconf) or not is_valid_path(f"{path}/", urlconf):
            return None
        return f"{request.path}/"
