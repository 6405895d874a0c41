"""Deploy checks (`manage.py check --deploy`): the audit log's signing key, and the address events link to."""

import os

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from core.audit.signing import _load


@register(Tags.security, deploy=True)
def audit_signing_key_configured(app_configs=None, **kwargs) -> list:
    """In production every process must sign with one key kept as a secret: a key each host generates for
    itself under var/ would make the tree heads of different hosts look forged."""
    if settings.PROVENANT_AUDIT_SIGNING_KEY:
        try:
            _load(settings.PROVENANT_AUDIT_SIGNING_KEY.encode(), "PROVENANT_AUDIT_SIGNING_KEY")
        except ImproperlyConfigured as error:
            return [Error(str(error), id="governance.E001")]
        return []
    if os.environ.get("PROVENANT_AUDIT_SIGNING_KEY_FILE", "").strip():
        return []
    return [
        Warning(
            "The audit log's signing key is generated under PROVENANT_VAR_DIR on first use.",
            hint="Set PROVENANT_AUDIT_SIGNING_KEY (or PROVENANT_AUDIT_SIGNING_KEY_FILE) to one Ed25519 key shared "
            "by every web and worker process, kept as a secret; see README, For auditors.",
            id="governance.W001",
        )
    ]


@register(Tags.security, deploy=True)
def public_url_configured(app_configs=None, **kwargs) -> list:
    """Event payloads link to the API under PROVENANT_PUBLIC_URL: left at its default, every link a receiver gets
    points at the receiver's own machine."""
    if os.environ.get("PROVENANT_PUBLIC_URL", "").strip():
        return []
    return [
        Warning(
            f"PROVENANT_PUBLIC_URL is not set: webhook payloads would link to {settings.PROVENANT_PUBLIC_URL}.",
            hint="Set it to the address people and programs reach this server at, e.g. https://provenant.example.com.",
            id="governance.W002",
        )
    ]
