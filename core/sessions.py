"""Sessions that end on their own: after a stretch of inactivity (idle) and a fixed time after sign-in (absolute).

A portal or admin session left open on a shared or stolen machine is a signed-in reviewer; the idle limit ends it
when nobody is using it, the absolute limit ends even a busy one, so that a stolen session cookie is good for hours,
not for ever. Both limits hold on the server, in the session itself: the cookie's own lifetime
(`SESSION_COOKIE_AGE`, set to the absolute limit) only tells the browser when to drop it.

The time of the last request is written back at most once a minute (`SEEN_RESOLUTION`), so that a page full of
fetches does not rewrite the session row for each. The other ways a session ends are Django's own: a password change
changes the session's auth hash (every other session of that user is refused at its next request), and a
deactivated user is no longer returned by the authentication backend. An ended session is one audit entry
(`user.session_expired`, with the limit that ended it), distinct from a person signing out.
"""

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone

from core.audit.actions import AuditAction
from core.audit.recorder import audit_object, audit_record

#: Session keys: when the person signed in, and when the session was last used (POSIX seconds).
SIGNED_IN_AT = "provenant_signed_in_at"
SEEN_AT = "provenant_seen_at"
#: The last-use time is rewritten only when it is at least this old (seconds).
SEEN_RESOLUTION = 60


@receiver(user_logged_in, dispatch_uid="session_signed_in_at")
def stamp_sign_in(sender, request, user, **kwargs) -> None:
    """Every sign-in starts both clocks afresh, including a second sign-in of the same person in the same browser
    (Django keeps the session's data when the user does not change)."""
    if request is None or not hasattr(request, "session"):
        return
    now = int(timezone.now().timestamp())
    request.session[SIGNED_IN_AT] = now
    request.session[SEEN_AT] = now


def expired_because(session, now: int) -> str | None:
    """Which limit the session has outlived ("idle" or "absolute"), or None. A session from before these limits
    existed (no stamps) counts as signed in now, rather than being ended at once on an upgrade."""
    signed_in_at = session.get(SIGNED_IN_AT, now)
    seen_at = session.get(SEEN_AT, now)
    if now - signed_in_at >= settings.PROVENANT_SESSION_ABSOLUTE_SECONDS:
        return "absolute"
    if now - seen_at >= settings.PROVENANT_SESSION_IDLE_SECONDS:
        return "idle"
    return None


class SessionTimeoutMiddleware:
    """Ends a signed-in session that has been idle, or open, too long (see the module's docstring). Sits after
    AuthenticationMiddleware. The request then goes on as anonymous: a portal page sends it to the sign-in form,
    which brings it back with `?next=`, and an API call relying on the session is refused as unauthenticated."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        session = getattr(request, "session", None)
        # `session.get` first: reading `request.user` of a request with no session would load nothing anyway.
        if session is not None and session.get("_auth_user_id") and request.user.is_authenticated:
            now = int(timezone.now().timestamp())
            reason = expired_because(session, now)
            if reason is not None:
                self._end(request, reason)
            else:
                session.setdefault(SIGNED_IN_AT, now)
                if now - session.get(SEEN_AT, 0) >= SEEN_RESOLUTION:
                    session[SEEN_AT] = now
        return self.get_response(request)

    @staticmethod
    def _end(request: HttpRequest, reason: str) -> None:
        user = request.user
        limit = timedelta(
            seconds=settings.PROVENANT_SESSION_IDLE_SECONDS
            if reason == "idle"
            else settings.PROVENANT_SESSION_ABSOLUTE_SECONDS
        )
        audit_record(
            AuditAction.USER_SESSION_EXPIRED,
            obj=audit_object(user, label=user.get_username()),
            actor=user,
            changes={"reason": reason, "limit_seconds": int(limit.total_seconds())},
        )
        # Not django.contrib.auth.logout: that would also record "signed out", an act the person did not do.
        request.session.flush()
        request.user = AnonymousUser()
