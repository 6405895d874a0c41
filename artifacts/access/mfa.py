"""Who must use a second factor, and the middleware that sends them to enrol.

With PROVENANT_MFA_REQUIRED on, superusers, staff and anyone holding a maintainer, reviewer or auditor role (on a
project or an artifact, directly or through a group) must have an authenticator (django-allauth's TOTP). Such a
person signed in without one is sent to the TOTP enrolment page by every portal or admin page until they enrol: the
enrolment is forced at the next sign-in, not at the grant (a grant never signs anyone out). The API is left alone:
tokens are not sessions, and a session-authenticated API call comes from a browser already held at the portal.
"""

from collections.abc import Callable

from allauth.mfa.models import Authenticator
from allauth.mfa.signals import authenticator_removed
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db.models import Q
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse

from artifacts.access.roles import Role
from artifacts.models import RoleGrant

#: Roles whose holders must use a second factor.
MFA_ROLES = (Role.MAINTAINER, Role.REVIEWER, Role.AUDITOR)
#: Session key: this session's person was found to have the second factor they need (or to need none), so the
#: check's two queries are not repeated on every request. Cleared at each sign-in and when a factor is removed.
SETTLED = "provenant_mfa_settled"


@receiver(user_logged_in, dispatch_uid="mfa_check_at_sign_in")
def check_again_at_sign_in(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session.pop(SETTLED, None)


@receiver(authenticator_removed, dispatch_uid="mfa_check_after_removal")
def check_again_after_removal(sender, request, user, authenticator, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session.pop(SETTLED, None)


def must_use_mfa(user) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser or user.is_staff:
        return True
    return RoleGrant.objects.filter(Q(user_id=user.pk) | Q(group__in=user.groups.all()), role__in=MFA_ROLES).exists()


def has_second_factor(user) -> bool:
    return Authenticator.objects.filter(user_id=user.pk).exclude(type=Authenticator.Type.RECOVERY_CODES).exists()


class MfaEnrolmentMiddleware:
    """Redirects a signed-in person who must use a second factor and has none to the TOTP enrolment page (see the
    module's docstring). Enrolment itself, re-authentication, signing out, static files and the API pass."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        session = request.session
        if (
            settings.PROVENANT_MFA_REQUIRED
            and session.get("_auth_user_id")
            and not session.get(SETTLED)
            and not self._passes(request.path)
        ):
            if must_use_mfa(request.user) and not has_second_factor(request.user):
                return HttpResponseRedirect(reverse("mfa_activate_totp"))
            session[SETTLED] = True
        return self.get_response(request)

    @staticmethod
    def _passes(path: str) -> bool:
        allowed = (
            "/accounts/2fa/",
            "/accounts/reauthenticate/",
            reverse("portal:logout"),
            "/api/",
            "/health/",
            "/metrics",
            "/" + settings.STATIC_URL.lstrip("/"),
        )
        return path.startswith(allowed)
