"""The attestation signing key: read from the settings (PEM text, or a file generated on first use), as the audit
log's key is (core/audit/signing.py), but re-read when its file changes, so a rotation reaches every process that
shares the file without a restart."""

from __future__ import annotations

import base64
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.crypto.dsse import key_id


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    keyid: str
    public_raw: bytes

    @property
    def public_base64(self) -> str:
        return base64.b64encode(self.public_raw).decode()

    @property
    def public_pem(self) -> str:
        return public_pem(self.public_raw)


def public_pem(raw: bytes) -> str:
    """An Ed25519 public key (32 raw bytes) as SubjectPublicKeyInfo PEM, the form `--key` reads."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return (
        Ed25519PublicKey.from_public_bytes(raw)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def parse_private_pem(pem: bytes, source: str) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(f"{source} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{source} holds a {type(key).__name__}; attestations are signed with Ed25519.")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SigningKey(private=key, keyid=key_id(raw), public_raw=raw)


def new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_key_file(path: Path, pem: bytes, *, replace: bool) -> bool:
    """Write `pem` to `path`, readable by its owner only. Without `replace`, keep a key another process wrote first
    (answer False); with it, swap the file in whole (a rename), so no reader ever sees half a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path.with_name(f".{path.name}.{os.getpid()}.tmp") if replace else path
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    if replace:
        os.replace(target, path)
    return True


@functools.lru_cache(maxsize=4)
def _load_file(path: str, _stamp: tuple[int, int, int]) -> SigningKey:
    return parse_private_pem(Path(path).read_bytes(), path)


@functools.lru_cache(maxsize=4)
def _load_text(text: str) -> SigningKey:
    return parse_private_pem(text.encode(), "PROVENANT_ATTESTATION_SIGNING_KEY")


def key_from_settings() -> bool:
    """Whether the key is the variable's text (rotated by changing the variable) rather than a file."""
    return bool(settings.PROVENANT_ATTESTATION_SIGNING_KEY)


def key_file() -> Path:
    return Path(settings.PROVENANT_ATTESTATION_SIGNING_KEY_FILE)


def signing_key() -> SigningKey:
    """The configured key; a file's is re-read whenever the file is replaced (its inode, size or time change)."""
    if key_from_settings():
        return _load_text(settings.PROVENANT_ATTESTATION_SIGNING_KEY)
    path = key_file()
    if not path.exists():
        write_key_file(path, new_private_pem(), replace=False)
    stat = path.stat()
    return _load_file(str(path), (stat.st_ino, stat.st_size, stat.st_mtime_ns))
