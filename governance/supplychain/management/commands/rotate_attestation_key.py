import base64
import json

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from governance.supplychain.keys import public_pem
from governance.supplychain.services.attestations import attestation_key_rotate


class Command(BaseCommand):
    help = (
        "Replace the key that signs provenance attestations with a new Ed25519 key (written to "
        "PROVENANT_ATTESTATION_SIGNING_KEY_FILE) and retire the current one; print the new public key. Retired keys "
        "stay published at GET /api/v1/attestations/keys/, so envelopes they signed still verify."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print the new and retired keys as JSON")

    def handle(self, *args, **options) -> None:
        try:
            retired, new = attestation_key_rotate()
        except DomainError as error:
            raise CommandError(error.message) from None
        pem = public_pem(base64.b64decode(new.public_key))
        if options["json"]:
            document = {
                "keyid": new.keyid,
                "public_key": new.public_key,
                "pem": pem,
                "retired": getattr(retired, "keyid", None),
            }
            self.stdout.write(json.dumps(document, indent=2))
            return
        if retired is not None:
            self.stdout.write(f"Retired {retired.keyid}")
        self.stdout.write(f"New attestation key {new.keyid}; publish its public key:\n{pem}")
