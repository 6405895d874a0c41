"""The Tokens page: the signed-in person's API tokens and, for maintainers, those of their projects' service
accounts, each revocable here (a POST with the CSRF token). Which tokens a person manages is the token services'
rule (governance.access), the same as the API's list and the admin's; tokens are issued through the API or
`manage.py issue_token`, which show the secret once."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from core.errors import DomainError
from governance.access.selectors import tokens_manageable_by
from governance.access.services import api_token_revoke


@login_required
@require_GET
def token_list(request: HttpRequest) -> HttpResponse:
    tokens = list(tokens_manageable_by(request.user))
    context = {
        "own": [token for token in tokens if token.user_id == request.user.pk],
        "accounts": [token for token in tokens if token.user_id != request.user.pk],
    }
    return render(request, "portal/tokens/list.html", context)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = tokens_manageable_by(request.user).filter(pk=pk).first()
    if token is None:
        raise Http404(f"No token {pk} that you manage.")
    try:
        api_token_revoke(token=token, revoked_by=request.user)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Token {token.prefix}… ({token.name}) revoked: its next request answers 401.")
    return redirect("portal:tokens")


urlpatterns = [
    path("tokens/", token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", token_revoke, name="token-revoke"),
]
