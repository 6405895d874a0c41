from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.db.models.functions import Left

from core.errors import DomainError
from governance.access.models import ApiToken
from governance.access.services import api_token_revoke, hash_token

LISTED_WHEN_AMBIGUOUS = 10


class Command(BaseCommand):
    help = "Revoke one API token, named by its id, its prefix (or the prefix's start), or the whole token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("token", help="Id or prefix as list_tokens shows them; a leaked token may be pasted whole.")

    def handle(self, *args, token: str, **options) -> None:
        reference = token.strip()
        if not reference:
            raise CommandError("Name the token by its id or prefix.")
        if reference.isdigit():
            candidates = ApiToken.objects.filter(pk=int(reference))
        else:
            # Compared with `=` rather than LIKE, which SQLite runs case-insensitively: prefixes are
            # case-sensitive, and the wrong token must never be revoked.
            candidates = ApiToken.objects.alias(start=Left("prefix", len(reference))).filter(
                Q(start=reference) | Q(key_hash=hash_token(reference))
            )
        matches = list(candidates.select_related("user")[: LISTED_WHEN_AMBIGUOUS + 1])
        if not matches:
            raise CommandError(f"No token matches '{reference}'. See list_tokens.")
        if len(matches) > 1:
            listed = "\n".join(
                f"  {t.pk}  {t.prefix}…  {t.name} ({t.user.get_username()})" for t in matches[:LISTED_WHEN_AMBIGUOUS]
            )
            more = "\n  …and more" if len(matches) > LISTED_WHEN_AMBIGUOUS else ""
            raise CommandError(f"'{reference}' matches several tokens; give the id or a longer prefix:\n{listed}{more}")
        try:
            revoked = api_token_revoke(token=matches[0])
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Revoked token {revoked.prefix}… '{revoked.name}' of {matches[0].user.get_username()}; "
            "requests with it now answer 401."
        )
