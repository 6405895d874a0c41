"""`Authorization: Bearer prv_…` for the API."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from artifacts.access.rule import Credential, bind_credential
from core import logs
from core.audit.context import client_address
from governance.access.models import ApiToken
from governance.access.services import api_token_record_use, hash_token

#: Schemes a client may send by mistake, named back to it; any other first word might be the token itself.
KNOWN_SCHEMES = {"basic", "token", "jwt", "digest", "apikey", "api-key", "negotiate", "hoba", "mutual", "oauth"}


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        # An empty `Authorization:` is a header sent with its token missing (an unset variable in a script), not
        # the absence of one: it gets the hint below. No browser sends one, so the portal's session is unaffected.
        if not header and "HTTP_AUTHORIZATION" not in request.META:
            return None
        if not header or header[0].lower() != self.keyword.lower().encode():
            # Any other Authorization header is a client's mistake ("Token …", Basic, a bare token): say what the
            # API expects rather than that no credentials came. A signed-in portal session is left to the session
            # authenticator, as a proxy in front of the server may add its own Basic header to every request.
            if getattr(getattr(request._request, "user", None), "is_authenticated", False):
                return None
            raise exceptions.AuthenticationFailed(self._wrong_scheme_message(header))
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send exactly one token: 'Authorization: Bearer <token>'.")
        try:
            plaintext = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token contains characters a token never has.") from None
        token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(plaintext)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown token. Check for copy errors or issue a new one.")
        if token.is_revoked:
            raise exceptions.AuthenticationFailed(f"Token {token.prefix}… has been revoked.")
        if token.is_expired:
            raise exceptions.AuthenticationFailed(
                f"Token {token.prefix}… expired at {token.expires_at:%Y-%m-%d %H:%M} UTC; issue a new one."
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        api_token_record_use(token=token, address=client_address(request._request))
        # The token's scope and project cap the user's roles wherever the access rule asks (rule 6 there).
        bind_credential(token.user, Credential(scope=token.scope, project_id=token.project_id))
        # Every later log line of the request names the user and the token (its id: never the secret).
        logs.bind_user(token.user, token)
        return token.user, token

    def _wrong_scheme_message(self, header: list[bytes]) -> str:
        expected = f"The API expects 'Authorization: {self.keyword} <token>'"
        if not header:
            return f"{expected}; this header is empty."
        if len(header) == 1:
            return f"{expected}; this header holds a single word, with no '{self.keyword}' before it."
        scheme = header[0].decode("latin-1")
        named = f"'{scheme}'" if scheme.lower() in KNOWN_SCHEMES else "another scheme"
        return f"{expected}; this header uses {named}. Send the same token after '{self.keyword} '."

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describes the bearer scheme in the OpenAPI schema, so the interactive docs offer to send a token."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from `python manage.py issue_token <username> --name <purpose>`.",
        }


class PortalSessionScheme(SessionScheme):
    """The portal's session cookie, described as the API treats it: a signed-in person's browser may call the API
    (the portal's download button and the interactive docs do), and every unsafe method then needs the CSRF token,
    as DRF's SessionAuthentication enforces."""

    priority = 1

    def get_security_definition(self, auto_schema) -> dict:
        return {
            **super().get_security_definition(auto_schema),
            "description": "The session of a person signed in to the portal or the admin (for the portal's download "
            "links and these docs in a browser). With it, POST, PUT, PATCH and DELETE also need the CSRF token in "
            "the X-CSRFToken header (from the csrftoken cookie), or answer 403; a bearer token needs none. "
            "Scripts and pipelines use bearerAuth.",
        }
