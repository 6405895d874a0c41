"""API tokens: issue, revoke, and note their use."""

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.audit.actions import AuditAction
from core.changes import ChangeSet
from core.errors import Conflict, InvalidInput
from governance.access.models import ApiToken

TOKEN_PREFIX = "prv_"  # noqa: S105 (a public marker, so leaked tokens are recognisable)
MAX_TOKEN_LIFETIME = timedelta(days=366)


def hash_token(plaintext: str) -> str:
    """Tokens carry 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


@transaction.atomic
def api_token_issue(*, user: AbstractBaseUser, name: str, lifetime: timedelta) -> tuple[ApiToken, str]:
    """Create a token and return it with its plaintext, which is never stored and cannot be shown again."""
    name = name.strip()
    if not name:
        raise InvalidInput("Give the token a name that says what it is for.", field="name")
    if not timedelta(0) < lifetime <= MAX_TOKEN_LIFETIME:
        raise InvalidInput("A token lives between one minute and 366 days.", field="lifetime")
    if not user.is_active:
        raise InvalidInput(f"User {user.get_username()} is inactive; activate the account first.", field="user")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=plaintext[:12],
        key_hash=hash_token(plaintext),
        created_at=now,
        expires_at=now + lifetime,
    )
    # Who issued it is the request's user or the command; the plaintext and its hash never reach the log.
    with ChangeSet() as changes:
        changes.audit(
            AuditAction.API_TOKEN_ISSUED,
            obj=token,
            changes={
                "user": user.get_username(),
                "name": token.name,
                "prefix": token.prefix,
                "expires_at": token.expires_at,
            },
        )
    return token, plaintext


@transaction.atomic
def api_token_revoke(*, token: ApiToken) -> ApiToken:
    token = ApiToken.objects.select_for_update(no_key=True).get(pk=token.pk)
    if token.is_revoked:
        raise Conflict(f"Token {token.prefix}… was already revoked at {token.revoked_at:%Y-%m-%d %H:%M} UTC.")
    with ChangeSet() as changes:
        revoked = changes.update(token, revoked_at=timezone.now())
        changes.audit(AuditAction.API_TOKEN_REVOKED, obj=token, changes=revoked)
    return token


# Recording every use would turn each read into a write; a minute's resolution is enough to see use.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_token_record_use(*, token: ApiToken) -> None:
    """Note that the token was used now, at most once a minute."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
