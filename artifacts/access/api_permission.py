"""The API's default permission class: an authenticated caller, whose token (if any) allows the request's method.

The verbs a token's scope allows are applied by the access rule itself, wherever it is asked (rule 6 in
artifacts.access.rule); this class only asks that rule, before any view runs, whether a read-scoped token may
send this method, so that no endpoint (a comment, a token of its own) is a way for a read token to write.
"""

from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request

from artifacts.access.rule import credential_of, method_allowed


class AuthenticatedWithinTokenScope(IsAuthenticated):
    def has_permission(self, request: Request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if method_allowed(request.user, request.method):
            return True
        # Instances are made per request, so the message is this request's alone.
        self.message = (
            f"This token's scope is '{credential_of(request.user).scope}': it only reads. Use a token with the "
            "write, review or admin scope for this request."
        )
        return False
