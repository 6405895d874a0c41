import json

from django.core.management.base import BaseCommand, CommandParser

from core.audit.recorder import public_key_document


class Command(BaseCommand):
    help = (
        "Print the public key the audit log's tree heads are signed with: its id, base64 and PEM forms as JSON, "
        "or with --pem the PEM alone (what the verifier's --public-key takes)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pem", action="store_true", help="Print the key in PEM form only.")

    def handle(self, *args, pem: bool, **options) -> None:
        document = public_key_document()
        self.stdout.write(document["pem"].rstrip("\n") if pem else json.dumps(document, indent=2))
