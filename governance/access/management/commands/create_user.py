"""create_user: an ordinary user, or a service account for a pipeline, with its roles and its token, in one step.

`createsuperuser` makes administrators; everyone else is an ordinary user who may do what their roles allow. A
service account is an ordinary user that signs in only with tokens: it has no usable password, neither the portal
nor the admin lets it in (governance.access.backends), it is owned by a project whose maintainers manage its tokens
(--owner, by default the project of the first --grant), and it gets its first token here, printed once. Roles are
given through the same service as the members endpoint and the admin, and the token through the same service as
issue_token, so both are audited as theirs are. Everything is checked before anything is written, and written in
one transaction: a refusal halfway leaves no user without the roles or the token asked for.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Model

from artifacts.access.roles import Role, Scope
from artifacts.access.services import role_grant
from artifacts.models import Artifact, Project
from core.errors import DomainError
from governance.access.services import MAX_TOKEN_LIFETIME, api_token_issue, service_account_create


@dataclass(frozen=True)
class Grant:
    """One `--grant`: a role on a project, or on one artifact of it."""

    target: Model
    role: str

    def __str__(self) -> str:
        return f"{self.role} on {self.target._meta.verbose_name} {self.target}"


def parse_grant(text: str) -> Grant:
    """`<project>:<role>` or `<project>/<artifact>:<role>`, naming a project and artifact that exist."""
    target, colon, role = text.rpartition(":")
    if not colon or not target:
        raise CommandError(
            f"--grant '{text}' names no role: write <project>:<role> or <project>/<artifact>:<role>, as in "
            "fraud-detection:contributor."
        )
    if role not in Role.values:
        raise CommandError(f"--grant '{text}': unknown role '{role}'. Roles: {', '.join(Role.values)}.")
    slug, slash, artifact_name = target.partition("/")
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise CommandError(f"--grant '{text}': no project '{slug}'.")
    if not slash:
        return Grant(project, role)
    artifact = Artifact.objects.select_related("project").filter(project=project, name=artifact_name).first()
    if artifact is None:
        raise CommandError(f"--grant '{text}': project '{slug}' has no artifact '{artifact_name}'.")
    return Grant(artifact, role)


class Command(BaseCommand):
    help = (
        "Create an ordinary user (no superuser), or with --service-account a pipeline's account that signs in only "
        "with tokens, with roles (--grant) and a token (--token-name, printed once)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The new user's name.")
        parser.add_argument("--email", default="", help="Their email address.")
        parser.add_argument(
            "--service-account",
            action="store_true",
            help="A pipeline's account: no usable password, and a token issued now (named by --token-name, "
            "'<username>' by default).",
        )
        parser.add_argument(
            "--owner",
            metavar="PROJECT",
            help="The project owning the service account: its maintainers manage the account's tokens (default: "
            "the project of the first --grant).",
        )
        parser.add_argument(
            "--grant",
            action="append",
            default=[],
            metavar="PROJECT[/ARTIFACT]:ROLE",
            help="A role on a project (fraud-detection:contributor) or on one artifact of it "
            "(fraud-detection/model:contributor). Repeat for several.",
        )
        parser.add_argument("--token-name", help="Issue a token named so: what it is for, e.g. 'nightly-training'.")
        parser.add_argument(
            "--token-days",
            type=int,
            help=f"Days until the token expires (at most 366; default: PROVENANT_TOKEN_DEFAULT_DAYS, "
            f"now {settings.PROVENANT_TOKEN_DEFAULT_DAYS}).",
        )
        parser.add_argument(
            "--token-scope",
            choices=Scope.values,
            default=Scope.ADMIN,
            help="The token's scope: read, write (publish), review, or admin (all the roles allow; the default).",
        )
        parser.add_argument(
            "--quiet", action="store_true", help="Print only the token, for scripts: TOKEN=$(... --quiet)."
        )

    def handle(
        self,
        *args,
        username: str,
        email: str,
        service_account: bool,
        grant: list[str],
        token_name: str | None,
        token_days: int | None,
        token_scope: str,
        owner: str | None,
        quiet: bool,
        **options,
    ) -> None:
        user_model = get_user_model()
        username = self._username(user_model, username)
        email = self._email(user_model, email)
        grants = [parse_grant(text) for text in grant]
        if service_account and token_name is None:
            token_name = username
        if token_name is None and token_days is not None:
            raise CommandError(
                "--token-days sets a token's lifetime: issue one with --token-name (or --service-account)."
            )
        if quiet and token_name is None:
            raise CommandError("--quiet prints only the token: issue one with --token-name (or --service-account).")
        lifetime = self._lifetime(token_days) if token_name is not None else None
        owning = self._owner(owner, grants) if service_account else None

        try:
            with transaction.atomic():
                user = user_model._default_manager.create_user(username=username, email=email, password=None)
                if owning is not None:
                    service_account_create(user=user, project=owning)
                for each in grants:
                    role_grant(obj=each.target, role=each.role, user=user, granted_by=None)
                token = (
                    api_token_issue(user=user, name=token_name, lifetime=lifetime, scope=token_scope)
                    if token_name
                    else None
                )
        except DomainError as error:
            raise CommandError(error.message) from None
        self._report(user, service_account, grants, token, quiet)

    def _owner(self, owner: str | None, grants: list[Grant]) -> Project:
        if owner is None:
            if not grants:
                raise CommandError(
                    "A service account is owned by a project, whose maintainers manage its tokens: name it with "
                    "--owner <project> (or give a --grant)."
                )
            target = grants[0].target
            return target if isinstance(target, Project) else target.project
        project = Project.objects.filter(slug=owner).first()
        if project is None:
            raise CommandError(f"--owner: no project '{owner}'.")
        return project

    def _username(self, user_model: type[AbstractBaseUser], username: str) -> str:
        field = user_model._meta.get_field(user_model.USERNAME_FIELD)
        try:
            username = field.clean(username, None)
        except ValidationError as error:
            raise CommandError(f"'{username}' is not a username: {' '.join(error.messages)}") from None
        if user_model._default_manager.filter(**{f"{user_model.USERNAME_FIELD}__iexact": username}).exists():
            raise CommandError(
                f"A user '{username}' exists already: give them roles through the members endpoint or the admin, "
                "and tokens with issue_token."
            )
        return username

    def _email(self, user_model: type[AbstractBaseUser], email: str) -> str:
        if not email:
            return ""
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"'{email}' is not an email address.") from None
        return user_model._default_manager.normalize_email(email)

    def _lifetime(self, days: int | None) -> timedelta:
        days = settings.PROVENANT_TOKEN_DEFAULT_DAYS if days is None else days
        try:
            lifetime = timedelta(days=days)
        except OverflowError:
            lifetime = None
        if lifetime is None or not timedelta(0) < lifetime <= MAX_TOKEN_LIFETIME:
            raise CommandError(f"--token-days {days} is not a lifetime; a token lives at most 366 days.")
        return lifetime

    def _report(self, user: AbstractBaseUser, service_account: bool, grants: list[Grant], token, quiet: bool) -> None:
        if quiet:
            self.stdout.write(token[1])
            return
        kind = "Service account" if service_account else "User"
        self.stdout.write(f"{kind} '{user.get_username()}' created.")
        for each in grants:
            self.stdout.write(f"  {each}")
        if not service_account:
            self.stdout.write(
                f"It has no password yet: `manage.py changepassword {user.get_username()}` gives it one for the portal."
            )
        if token is not None:
            issued, plaintext = token
            self.stdout.write(
                f"Token {issued.prefix}… '{issued.name}', expires {issued.expires_at:%Y-%m-%d %H:%M} UTC:"
            )
            self.stdout.write(f"\n    {plaintext}\n\n")
            self.stdout.write(self.style.WARNING("Copy it now: it is not stored and cannot be shown again."))
