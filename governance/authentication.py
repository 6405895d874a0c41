"""`Authorization: Bearer prv_…` for the API."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from governance.models import ApiToken
from governance.services import api_token_record_use, hash_token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
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
        api_token_record_use(token=token)
        return token.user, token

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
