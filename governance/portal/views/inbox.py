"""The portal's "Awaiting me": everything waiting for the signed-in person's action, from every area, on one page
(promotion requests to decide, grants to keep or revoke in access reviews, retention plans to apply), each linked to
the portal page where it is done. The same reads make the count in the navigation and the daily e-mail digest."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from governance.portal import selectors


@require_GET
@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    waiting = selectors.awaiting(request.user)
    return render(request, "portal/inbox/list.html", {"waiting": waiting, "listed": selectors.AWAITING_LISTED})


urlpatterns = [
    path("inbox/", inbox, name="inbox"),
]
