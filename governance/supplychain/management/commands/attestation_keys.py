import json

from django.core.management.base import BaseCommand

from governance.supplychain.api.attestations import AttestationKeySerializer
from governance.supplychain.selectors.attestations import attestation_keys


class Command(BaseCommand):
    help = (
        "Print every key that ever signed a provenance attestation, current first, as GET /api/v1/attestations/keys/ "
        "answers: the file to publish where verifiers outside Provenant can fetch it (their --key reads it as is)."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write(json.dumps(AttestationKeySerializer(attestation_keys(), many=True).data, indent=2))
