from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import status

from artifacts.api.exceptions import error_response, is_api_request
from artifacts.api.parsers import NUL, nul_refusal


class RefuseNulInApiRequests:
    """Refuses a NUL character (U+0000) in an API request's query parameters (400, a field error naming the
    parameter, as filters answer a bad value) or path (404: no name here contains one), before any view, filter or
    authentication reads them.

    The parsers in artifacts.api.parsers refuse NUL in request bodies, for the reason given there: PostgreSQL cannot
    compare or store text that holds one (a DataError, answered 500), SQLite can, so a check per filter or lookup is
    one more thing each new endpoint would have to remember. Here it is one check for every endpoint at once. The
    portal is left alone: it drops NUL from a search instead, where a person typed it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_request(request):
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
        return self.get_response(request)
