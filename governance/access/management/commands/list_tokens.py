from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.access.models import ApiToken

COLUMNS = ("ID", "PREFIX", "NAME", "USER", "SCOPE", "PROJECT", "CREATED", "EXPIRES", "LAST USED", "FROM", "STATUS")


class Command(BaseCommand):
    help = "List API tokens (never their secret), newest first. Times are UTC."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", metavar="USERNAME", help="Only this user's tokens.")

    def handle(self, *args, user: str | None, **options) -> None:
        tokens = ApiToken.objects.select_related("user", "project").order_by("-created_at", "-id")
        if user is not None:
            User = get_user_model()
            try:
                owner = User._default_manager.get_by_natural_key(user)
            except User.DoesNotExist:
                raise CommandError(f"No user '{user}'.") from None
            tokens = tokens.filter(user=owner)
        rows = [
            (
                str(token.pk),
                token.prefix,
                token.name,
                token.user.get_username(),
                token.scope,
                token.project.slug if token.project_id else "any",
                f"{token.created_at:%Y-%m-%d %H:%M}",
                f"{token.expires_at:%Y-%m-%d %H:%M}",
                f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never",
                token.last_used_ip or "-",
                token.status,
            )
            for token in tokens.iterator()
        ]
        if not rows:
            self.stdout.write("No tokens.")
            return
        widths = [max(len(row[i]) for row in (COLUMNS, *rows)) for i in range(len(COLUMNS))]
        for row in (COLUMNS, *rows):
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
