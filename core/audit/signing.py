"""The server's Ed25519 key, which signs the audit log's tree heads."""

import base64
import functools
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.crypto.merkle import key_id


def _load(pem: bytes, source: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(f"{source} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{source} holds a {type(key).__name__}; the audit log signs with Ed25519.")
    return key


def _generate(path: Path) -> None:
    """Write a new key to `path`, readable by its owner only; if another process got there first, keep theirs."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)


@functools.cache
def signing_key() -> Ed25519PrivateKey:
    if settings.PROVENANT_AUDIT_SIGNING_KEY:
        return _load(settings.PROVENANT_AUDIT_SIGNING_KEY.encode(), "PROVENANT_AUDIT_SIGNING_KEY")
    path = Path(settings.PROVENANT_AUDIT_SIGNING_KEY_FILE)
    if not path.exists():
        _generate(path)
    return _load(path.read_bytes(), str(path))


def public_key_bytes() -> bytes:
    return signing_key().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_base64() -> str:
    return base64.b64encode(public_key_bytes()).decode()


def public_key_pem() -> str:
    return (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def signing_key_id() -> str:
    return key_id(public_key_bytes())


def sign(message: bytes) -> str:
    return base64.b64encode(signing_key().sign(message)).decode()
