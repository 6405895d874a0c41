from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from artifacts.access.roles import Scope
from artifacts.models import Project
from core.errors import DomainError
from governance.access.services import api_token_issue


class Command(BaseCommand):
    help = "Issue an API token for a user and print it. The token is shown once: it is not stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The user the token acts as.")
        parser.add_argument("--name", required=True, help="What the token is for, e.g. 'nightly-training'.")
        parser.add_argument(
            "--days",
            type=int,
            help=f"Days until it expires (at most 366; default: PROVENANT_TOKEN_DEFAULT_DAYS, "
            f"now {settings.PROVENANT_TOKEN_DEFAULT_DAYS}).",
        )
        parser.add_argument(
            "--scope",
            choices=Scope.values,
            default=Scope.ADMIN,
            help="The most the token may do, within its user's roles: read, write (publish), review, or admin "
            "(everything the roles allow; the default).",
        )
        parser.add_argument("--project", metavar="SLUG", help="Restrict the token to this one project.")
        parser.add_argument(
            "--quiet", action="store_true", help="Print only the token, for scripts: TOKEN=$(... --quiet)."
        )

    def handle(
        self,
        *args,
        username: str,
        name: str,
        days: int | None,
        scope: str,
        project: str | None,
        quiet: bool,
        **options,
    ) -> None:
        User = get_user_model()
        try:
            user = User._default_manager.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(f"No user '{username}'.") from None
        if days is None:
            days = settings.PROVENANT_TOKEN_DEFAULT_DAYS
        try:
            lifetime = timedelta(days=days)
        except OverflowError:
            raise CommandError(f"--days {days} is not a lifetime; a token lives at most 366 days.") from None
        restricted_to = None
        if project is not None:
            restricted_to = Project.objects.filter(slug=project).first()
            if restricted_to is None:
                raise CommandError(f"--project: no project '{project}'.")
        try:
            token, plaintext = api_token_issue(
                user=user, name=name, lifetime=lifetime, scope=scope, project=restricted_to
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        if quiet:
            self.stdout.write(plaintext)
            return
        self.stdout.write(
            f"Token {token.prefix}… '{token.name}' for {user.get_username()}, scope {token.scope}"
            f"{f' on project {restricted_to.slug}' if restricted_to else ''}, "
            f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC:"
        )
        self.stdout.write(f"\n    {plaintext}\n\n")
        self.stdout.write(self.style.WARNING("Copy it now: it is not stored and cannot be shown again."))
