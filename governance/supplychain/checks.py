"""Deploy checks (`manage.py check --deploy`) of the supply-chain area: the attestation key."""

import os

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from governance.supplychain.keys import parse_private_pem


@register(Tags.security, deploy=True)
def attestation_signing_key_configured(app_configs=None, **kwargs) -> list:
    """Every process must sign with one key: hosts that each generate their own under var/ would retire one another's
    key in turn (a key new to Provenant retires the current one), and a retired key signs no more."""
    if settings.PROVENANT_ATTESTATION_SIGNING_KEY:
        try:
            parse_private_pem(settings.PROVENANT_ATTESTATION_SIGNING_KEY.encode(), "PROVENANT_ATTESTATION_SIGNING_KEY")
        except ImproperlyConfigured as error:
            return [Error(str(error), id="supplychain.E001")]
        return []
    if os.environ.get("PROVENANT_ATTESTATION_SIGNING_KEY_FILE", "").strip():
        return []
    return [
        Warning(
            "The provenance attestation key is generated under PROVENANT_VAR_DIR on first use.",
            hint="Set PROVENANT_ATTESTATION_SIGNING_KEY_FILE (or PROVENANT_ATTESTATION_SIGNING_KEY) to one Ed25519 "
            "key shared by every web and worker process, kept as a secret; see README, Provenance attestations.",
            id="supplychain.W001",
        )
    ]
