"""Signing in through django-allauth: the adapter (local accounts only, no self-signup), the username django-axes
throttles, and step-up, the fresh authentication the most consequential acts require.

Step-up: an act such as approving a production promotion asks that the person authenticated (signed in, or confirmed
their password or a second factor on allauth's re-authentication page) within PROVENANT_STEP_UP_MINUTES. A browser
is sent to that page and, once confirmed, the suspended form is sent again (allauth keeps it); an API call made with
the session is refused with a 403 that says what to do. An API token is not a sign-in and is not asked.
"""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.authentication import get_authentication_records
from allauth.core import context
from allauth.core.exceptions import ReauthenticationRequired
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.request import Request

from core.sessions import SIGNED_IN_AT


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        """Accounts are made by administrators (the admin, `createsuperuser`), never by whoever finds the site."""
        return False

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        """allauth's own sensitive pages (adding or removing a second factor, showing recovery codes) follow the
        same rule as step-up: a sign-in counts as a fresh authentication, not only a later confirmation. Without
        this, a person sent to enrol right after signing in would be asked for their password again."""
        request = context.request
        if request is not None and request.user.is_authenticated and recently_authenticated(request):
            return False
        return super().is_reauthentication_required(app=app, **kwargs)


def attempted_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The username a sign-in attempt names, for django-axes: from the credentials Django authenticates with, else
    from allauth's form field (`login`) or Django's (`username`)."""
    if credentials and credentials.get("username"):
        return credentials["username"]
    data = getattr(request, "POST", {}) or {}
    return data.get("login") or data.get("username")


def authenticated_at(request: HttpRequest) -> float | None:
    """When the session's person last proved who they are (POSIX seconds): the sign-in, or a later confirmation on
    allauth's re-authentication page, whichever is newer; None if the session says neither."""
    times = [record["at"] for record in get_authentication_records(request, request.user) if "at" in record]
    signed_in = request.session.get(SIGNED_IN_AT) if hasattr(request, "session") else None
    if signed_in is not None:
        times.append(signed_in)
    return max(times, default=None)


def recently_authenticated(request: HttpRequest) -> bool:
    at = authenticated_at(request)
    return at is not None and timezone.now().timestamp() - at < settings.PROVENANT_STEP_UP_MINUTES * 60


STEP_UP_REFUSAL = (
    "This act needs a fresh sign-in: your session's authentication is more than {minutes} minutes old. Confirm your "
    "password or a second factor at /accounts/reauthenticate/ (then repeat the call), or use an API token."
)


def require_step_up(request: HttpRequest) -> None:
    """Refuse unless the person authenticated recently (see the module's docstring). Call it before anything is
    changed. An API call authenticated otherwise than by the session (a token) passes: tokens are not sessions."""
    api = isinstance(request, Request)
    if api and not isinstance(request.successful_authenticator, SessionAuthentication):
        return
    if not request.user.is_authenticated or recently_authenticated(request):
        return
    if api:
        raise ApiPermissionDenied(STEP_UP_REFUSAL.format(minutes=settings.PROVENANT_STEP_UP_MINUTES))
    raise ReauthenticationRequired()
