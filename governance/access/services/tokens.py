"""API tokens and service accounts: issue, revoke, and note their use.

Who may manage which tokens (`may_manage_tokens_of`): a user their own; a project's maintainers the tokens of the
service accounts it owns; a superuser any. A request made with a token manages tokens only through an
admin-scoped one, and one restricted to a project issues only tokens restricted to that project: a token never
mints a token that reaches further than itself."""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from artifacts.access.roles import Role, Scope, Verb
from artifacts.access.rule import can, credential_of, is_unrestricted, restricted_project_id, scope_allows
from artifacts.access.services import role_grant
from artifacts.models import Project
from core.audit.actions import AuditAction
from core.changes import ChangeSet
from core.errors import Conflict, InvalidInput, NotAllowed
from governance.access.models import ApiToken, ApiTokenUse, ServiceAccount

TOKEN_PREFIX = "prv_"  # noqa: S105 (a public marker, so leaked tokens are recognisable)
MAX_TOKEN_LIFETIME = timedelta(days=366)


def hash_token(plaintext: str) -> str:
    """Tokens carry 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def may_manage_tokens_of(actor: AbstractBaseUser, user: AbstractBaseUser) -> bool:
    """Whether `actor` may list, issue and revoke `user`'s tokens (the module's rule, roles read now)."""
    if actor.pk == user.pk or is_unrestricted(actor):
        return actor.is_active
    account = ServiceAccount.objects.select_related("project").filter(user_id=user.pk).first()
    return account is not None and can(actor, Verb.MANAGE, account.project)


def _check_actor_writes_tokens(actor: AbstractBaseUser) -> None:
    if not scope_allows(actor, Verb.MANAGE):
        raise NotAllowed(
            f"This token's scope is '{credential_of(actor).scope}': issuing and revoking tokens takes an "
            "admin-scoped token or a portal session."
        )


@transaction.atomic
def api_token_issue(
    *,
    user: AbstractBaseUser,
    name: str,
    lifetime: timedelta,
    scope: str = Scope.ADMIN,
    project: Project | None = None,
    issued_by: AbstractBaseUser | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its plaintext, which is never stored and cannot be shown again.

    `issued_by` is the person asking through the API or the portal, whose right to is checked here; commands
    (an administrator at the server) pass None."""
    if scope not in Scope.values:
        raise InvalidInput(f"Unknown scope '{scope}'. Scopes: {', '.join(Scope.values)}.", field="scope")
    if issued_by is not None:
        _check_actor_writes_tokens(issued_by)
        if not may_manage_tokens_of(issued_by, user):
            raise NotAllowed(
                f"You may issue tokens for yourself and for the service accounts of projects you maintain, "
                f"not for {user.get_username()}."
            )
        restricted_to = restricted_project_id(issued_by)
        if restricted_to is not None and (project is None or project.pk != restricted_to):
            raise NotAllowed(
                "This token is restricted to one project: the tokens it issues must be restricted to the same one.",
                field="project",
            )
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
        scope=scope,
        project=project,
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
                "scope": token.scope,
                "project": project.slug if project is not None else None,
            },
            actor=issued_by,
        )
    return token, plaintext


@transaction.atomic
def api_token_revoke(*, token: ApiToken, revoked_by: AbstractBaseUser | None = None) -> ApiToken:
    """Revoke a token at once. `revoked_by` (the person asking through the API or the portal) must be allowed to
    manage its user's tokens; commands and the admin pass None, having checked their own permission."""
    if revoked_by is not None:
        _check_actor_writes_tokens(revoked_by)
        if not may_manage_tokens_of(revoked_by, token.user):
            raise NotAllowed("You may revoke your own tokens and those of service accounts of projects you maintain.")
    token = ApiToken.objects.select_for_update(no_key=True).get(pk=token.pk)
    if token.is_revoked:
        raise Conflict(f"Token {token.prefix}… was already revoked at {token.revoked_at:%Y-%m-%d %H:%M} UTC.")
    with ChangeSet() as changes:
        revoked = changes.update(token, revoked_at=timezone.now())
        changes.audit(AuditAction.API_TOKEN_REVOKED, obj=token, changes=revoked, actor=revoked_by)
    return token


@transaction.atomic
def service_account_create(*, user: AbstractBaseUser, project: Project) -> ServiceAccount:
    """Make `user` a service account owned by `project`: no usable password, and its maintainers manage its
    tokens."""
    if ServiceAccount.objects.filter(user_id=user.pk).exists():
        raise Conflict(f"{user.get_username()} is a service account already.")
    user.set_unusable_password()
    user.save(update_fields=["password"])
    account = ServiceAccount.objects.create(user=user, project=project)
    with ChangeSet() as changes:
        changes.audit(
            AuditAction.SERVICE_ACCOUNT_CREATED,
            obj=account,
            changes={"user": user.get_username(), "project": project.slug},
        )
    return account


def _check_may_manage_accounts_of(actor: AbstractBaseUser, project: Project) -> None:
    if not scope_allows(actor, Verb.MANAGE):
        raise NotAllowed(
            f"This token's scope is '{credential_of(actor).scope}': managing service accounts takes an "
            "admin-scoped token or a portal session."
        )
    if not can(actor, Verb.MANAGE, project):
        raise NotAllowed(
            f"You may not manage the service accounts of project '{project.slug}': that needs the maintainer role "
            "on the project."
        )


@transaction.atomic
def service_account_open(
    *, username: str, project: Project, created_by: AbstractBaseUser, role: str | None = None
) -> ServiceAccount:
    """A project's maintainer makes a new service account owned by it (a new user: making an existing person's
    account one would hand their tokens to the project's maintainers), optionally granting it `role` on the
    project through the ordinary grant service. Everything is checked before anything is written."""
    _check_may_manage_accounts_of(created_by, project)
    username = username.strip()
    users = get_user_model()._default_manager
    try:
        users.model.username_validator(username)
    except ValidationError as error:
        raise InvalidInput(f"'{username}' is no valid username: {' '.join(error.messages)}", field="username") from None
    if not username:
        raise InvalidInput("Name the service account, e.g. 'nightly-training'.", field="username")
    if role is not None and role not in Role.values:
        raise InvalidInput(f"Unknown role '{role}'. Roles: {', '.join(Role.values)}.", field="role")
    if users.filter(username__iexact=username).exists():
        raise Conflict(f"The username '{username}' is taken; choose another.", field="username")
    user = users.create_user(username=username)
    account = service_account_create(user=user, project=project)
    if role is not None:
        role_grant(obj=project, role=role, user=user, granted_by=created_by)
    return account


@transaction.atomic
def service_account_deactivate(*, account: ServiceAccount, deactivated_by: AbstractBaseUser) -> ServiceAccount:
    """Switch a service account off: its user becomes inactive, so every token of it answers 401 at its next
    request. Its grants and tokens stay, for the record and for access reviews."""
    _check_may_manage_accounts_of(deactivated_by, account.project)
    user = get_user_model()._default_manager.select_for_update().get(pk=account.user_id)
    if not user.is_active:
        raise Conflict(f"Service account {user.get_username()} is inactive already.")
    with ChangeSet() as changes:
        changed = changes.update(user, is_active=False)
        changes.audit(
            AuditAction.SERVICE_ACCOUNT_DEACTIVATED,
            obj=account,
            changes={"user": user.get_username(), "project": account.project.slug, **changed},
            actor=deactivated_by,
        )
    account.user = user
    return account


# Recording every use would turn each read into a write; a minute's resolution is enough to see use.
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: Token use is audited aggregated, not per request: one `api_token.used` entry per token, address and window.
USE_AUDIT_WINDOW = timedelta(hours=1)


def _window_start(moment: datetime) -> datetime:
    """The start of the audit window `moment` falls in (windows are aligned to the epoch, so to the hour)."""
    step = int(USE_AUDIT_WINDOW.total_seconds())
    return datetime.fromtimestamp(int(moment.timestamp()) // step * step, tz=UTC)


def api_token_record_use(*, token: ApiToken, address: str | None = None) -> None:
    """Note that the token was used now, and from where: at most once a minute from one address; and audit it
    once per token, address and hour window.

    Why aggregated: a pipeline calls the API thousands of times an hour, and every audit entry advances the log's
    single hash-chained head under its lock, so an entry per request would both flood the log and serialise every
    token's requests on it. The first use in a window from an address writes the entry (with the user, the address
    and the window); later uses there only move last-used. Which process writes it is settled by the unique key of
    `ApiTokenUse` in the database, not by memory, so several workers serving the token at once write one entry."""
    now = timezone.now()
    address = address or None
    window = _window_start(now)
    stale = token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION
    moved = address != token.last_used_ip
    # Last used in this window from this address: that use opened the window or found it open, so it is audited.
    audited = token.last_used_at is not None and token.last_used_at >= window and not moved
    if audited and not stale:
        return
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=address)
        if not audited:
            _audit_first_use_in_window(token=token, address=address, window=window)
    token.last_used_at, token.last_used_ip = now, address


def _audit_first_use_in_window(*, token: ApiToken, address: str | None, window: datetime) -> None:
    try:
        with transaction.atomic():
            ApiTokenUse.objects.create(token=token, address=address or "", window_start=window)
    except IntegrityError:
        return  # another request (here or in another process) opened this window first and audited it
    ApiTokenUse.objects.filter(token=token, window_start__lt=window).delete()
    with ChangeSet() as changes:
        changes.audit(
            AuditAction.API_TOKEN_USED,
            obj=token,
            changes={
                "user": token.user.get_username(),
                "address": address,
                "window_start": window,
                "window_end": window + USE_AUDIT_WINDOW,
            },
            actor=token.user,
        )
