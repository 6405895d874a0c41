"""core/crypto/dsse.py against the DSSE specification and an independent implementation (securesystemslib): each
side verifies what the other signs, and neither accepts a changed payload, type or key."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from core.crypto.dsse import IN_TOTO_PAYLOAD_TYPE, EnvelopeError, key_id, pae, sign_envelope, verify_envelope

PAYLOAD = json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": []}).encode()


def raw(private: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sslib_key(private: Ed25519PrivateKey) -> SSlibKey:
    return SSlibKey.from_crypto(private.public_key(), keyid=key_id(raw(private)))


def test_pae_is_the_specifications_example():
    # The worked example in DSSE's protocol.md.
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters():
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_securesystemslib_verifies_our_envelope():
    private = Ed25519PrivateKey.generate()
    ours = sign_envelope(PAYLOAD, payload_type=IN_TOTO_PAYLOAD_TYPE, sign=private.sign, keyid=key_id(raw(private)))

    verified = Envelope.from_dict(ours).verify([sslib_key(private)], 1)

    assert list(verified) == [key_id(raw(private))]


def test_securesystemslib_refuses_our_envelope_once_its_payload_changed():
    private = Ed25519PrivateKey.generate()
    ours = sign_envelope(PAYLOAD, payload_type=IN_TOTO_PAYLOAD_TYPE, sign=private.sign, keyid=key_id(raw(private)))
    ours["payload"] = base64.b64encode(PAYLOAD.replace(b"[]", b"[1]")).decode()

    with pytest.raises(VerificationError):
        Envelope.from_dict(ours).verify([sslib_key(private)], 1)


def test_we_verify_securesystemslibs_envelope():
    private = Ed25519PrivateKey.generate()
    envelope = Envelope(payload=PAYLOAD, payload_type=IN_TOTO_PAYLOAD_TYPE, signatures={})
    envelope.sign(CryptoSigner(private, sslib_key(private)))

    keyid, payload = verify_envelope(envelope.to_dict(), {key_id(raw(private)): raw(private)})

    assert (keyid, payload) == (key_id(raw(private)), PAYLOAD)


def test_a_changed_payload_type_or_an_untrusted_key_fails():
    private, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    envelope = sign_envelope(PAYLOAD, payload_type=IN_TOTO_PAYLOAD_TYPE, sign=private.sign, keyid=key_id(raw(private)))

    with pytest.raises(EnvelopeError, match="No signature"):
        verify_envelope({**envelope, "payloadType": "application/json"}, {key_id(raw(private)): raw(private)})
    with pytest.raises(EnvelopeError, match="trusted"):
        verify_envelope(envelope, {key_id(raw(stranger)): raw(stranger)})
    # The envelope naming the stranger's id does not make the stranger's key sign it.
    renamed = {**envelope, "signatures": [{**envelope["signatures"][0], "keyid": key_id(raw(stranger))}]}
    with pytest.raises(EnvelopeError):
        verify_envelope(renamed, {key_id(raw(stranger)): raw(stranger)})


@pytest.mark.parametrize(
    "envelope",
    [
        [],
        {},
        {"payloadType": "x", "payload": "***", "signatures": [{}]},
        {"payloadType": "x", "payload": "", "signatures": []},
    ],
)
def test_malformed_envelopes_are_refused_with_a_reason(envelope):
    with pytest.raises(EnvelopeError):
        verify_envelope(envelope, {})
