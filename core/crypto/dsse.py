"""DSSE envelopes (Dead Simple Signing Envelope, https://github.com/secure-systems-lab/dsse, protocol v1) signed
with Ed25519: how the server signs a provenance attestation and how the offline verifier checks one.

The client distribution ships this very file as `provenant_client.dsse` (a link, not a copy), so the server and the
verifier cannot disagree on the bytes a signature covers: it must stay importable on Python 3.9 with the standard
library and `cryptography` alone, and import-linter forbids Django and the server's code here. The tests check both
directions against an independent implementation (securesystemslib's `dsse.Envelope`).

A signature covers the pre-authentication encoding (PAE) of the payload and its type, never the JSON around them:

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

where LEN is the length in bytes as ASCII decimal and SP one space (0x20).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: The payload type of an in-toto statement (in-toto attestation framework, "Envelope" layer).
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class EnvelopeError(ValueError):
    """An envelope that is malformed or whose signature does not check out; the message says which."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """The bytes a DSSE v1 signature covers: type and body, each preceded by its length, so neither can be
    shifted into the other."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def key_id(public_key: bytes) -> str:
    """The name an envelope gives the Ed25519 key (its 32 raw bytes) that signed it: the key's SHA-256, in hex."""
    return hashlib.sha256(public_key).hexdigest()


def sign_envelope(
    payload: bytes, *, payload_type: str, sign: Callable[[bytes], bytes], keyid: str
) -> dict[str, object]:
    """A DSSE envelope of `payload`, signed by `sign` (bytes → Ed25519 signature) under the name `keyid`."""
    signature = sign(pae(payload_type, payload))
    return {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": payload_type,
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode("ascii")}],
    }


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(f"The envelope's {what} is not a base64 string.")
    try:
        # DSSE allows standard or URL-safe base64; both are accepted.
        return base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"The envelope's {what} is not valid base64.") from None


def verify_envelope(envelope: Mapping[str, object], public_keys: Mapping[str, bytes]) -> tuple[str, bytes]:
    """Check `envelope` against trusted Ed25519 keys (keyid → 32 raw bytes) and answer (keyid, payload) for the
    first signature made by one of them. The keyid an envelope names only picks which trusted key to try: a key the
    caller did not give is never used, and a signature under no trusted key fails."""
    if not isinstance(envelope, Mapping):
        raise EnvelopeError("A DSSE envelope is a JSON object with payload, payloadType and signatures.")
    payload_type = envelope.get("payloadType")
    if not isinstance(payload_type, str):
        raise EnvelopeError("The envelope has no payloadType.")
    payload = _b64(envelope.get("payload"), "payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise EnvelopeError("The envelope holds no signature.")
    message = pae(payload_type, payload)
    named = []
    for signature in signatures:
        if not isinstance(signature, Mapping):
            raise EnvelopeError("An envelope's signature is a JSON object with keyid and sig.")
        keyid = str(signature.get("keyid", ""))
        named.append(keyid or "(none)")
        # A signature without a keyid may be by any trusted key; one with a keyid only by that key.
        candidates = [keyid] if keyid else list(public_keys)
        for candidate in candidates:
            raw = public_keys.get(candidate)
            if raw is None:
                continue
            try:
                Ed25519PublicKey.from_public_bytes(raw).verify(_b64(signature.get("sig"), "signature"), message)
            except InvalidSignature:
                continue
            return candidate, payload
    known = ", ".join(public_keys) or "none"
    raise EnvelopeError(
        f"No signature in the envelope verifies with a trusted key (signed by {', '.join(named)}; trusted: {known})."
    )


def statement_of(payload: bytes) -> dict:
    """The JSON object a verified payload holds."""
    try:
        statement = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        raise EnvelopeError("The envelope's payload is not JSON.") from None
    if not isinstance(statement, dict):
        raise EnvelopeError("The envelope's payload is not a JSON object.")
    return statement
