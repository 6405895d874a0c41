"""Webhook signatures, checked against the Standard Webhooks reference library in both directions."""

import ast
import base64
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from core.crypto import webhook_signatures
from core.crypto.webhook_signatures import (
    SECRET_PREFIX,
    WebhookVerificationError,
    headers,
    new_secret,
    secret_key,
    sign,
    verify,
)

BODY = b'{"type":"promotion.approved","data":{"id":"42","note":"caf\xc3\xa9"}}'
MSG_ID = "msg_2b8f0c1e"


def accepted(secret: str, received: dict[str, str], body: bytes) -> bool:
    """Whether `verify` takes `body` as signed with `secret` (it answers by raising, or not)."""
    try:
        verify(secret, received, body)
    except WebhookVerificationError:
        return False
    return True


def test_reference_library_verifies_our_signature():
    secret = new_secret()
    sent = headers([secret], MSG_ID, int(time.time()), BODY)

    assert Webhook(secret).verify(BODY, sent) == {"type": "promotion.approved", "data": {"id": "42", "note": "café"}}


def test_we_verify_the_reference_librarys_signature():
    secret = new_secret()
    signed_at = datetime.now(tz=UTC)
    signature = Webhook(secret).sign(MSG_ID, signed_at, BODY.decode())
    received = {
        "Webhook-Id": MSG_ID,
        "Webhook-Timestamp": str(int(signed_at.timestamp())),
        "Webhook-Signature": signature,
    }

    assert accepted(secret, received, BODY)


def test_signature_matches_the_reference_library_byte_for_byte():
    secret = new_secret()
    timestamp = 1_700_000_000

    assert sign([secret], MSG_ID, timestamp, BODY) == Webhook(secret).sign(
        MSG_ID, datetime.fromtimestamp(timestamp, tz=UTC), BODY.decode()
    )


def test_two_secrets_sign_twice_and_each_alone_verifies():
    old, new = new_secret(), new_secret()
    sent = headers([old, new], MSG_ID, int(time.time()), BODY)

    signatures = sent["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(signature.startswith("v1,") for signature in signatures)
    for secret in (old, new):
        verify(secret, sent, BODY)
        Webhook(secret).verify(BODY, sent)


def test_header_names_are_matched_whatever_their_case():
    secret = new_secret()
    sent = headers([secret], MSG_ID, int(time.time()), BODY)

    assert accepted(secret, {name.upper(): value for name, value in sent.items()}, BODY)


def test_tampered_body_is_refused():
    secret = new_secret()
    sent = headers([secret], MSG_ID, int(time.time()), BODY)

    with pytest.raises(WebhookVerificationError, match="No v1 signature matches"):
        verify(secret, sent, BODY.replace(b"42", b"43"))


def test_wrong_secret_is_refused():
    sent = headers([new_secret()], MSG_ID, int(time.time()), BODY)

    with pytest.raises(WebhookVerificationError, match="No v1 signature matches"):
        verify(new_secret(), sent, BODY)


def test_changed_message_id_is_refused():
    secret = new_secret()
    sent = headers([secret], MSG_ID, int(time.time()), BODY) | {"webhook-id": "msg_other"}

    with pytest.raises(WebhookVerificationError, match="No v1 signature matches"):
        verify(secret, sent, BODY)


def test_old_timestamp_is_refused():
    secret = new_secret()
    now = 1_700_000_000
    sent = headers([secret], MSG_ID, now - 301, BODY)

    with pytest.raises(WebhookVerificationError, match=r"301 s old, more than the 300 s allowed"):
        verify(secret, sent, BODY, now=now)
    verify(secret, headers([secret], MSG_ID, now - 300, BODY), BODY, now=now)


def test_future_timestamp_is_refused():
    secret = new_secret()
    now = 1_700_000_000
    sent = headers([secret], MSG_ID, now + 301, BODY)

    with pytest.raises(WebhookVerificationError, match=r"301 s in the future"):
        verify(secret, sent, BODY, now=now)


def test_non_numeric_timestamp_is_refused():
    secret = new_secret()
    sent = headers([secret], MSG_ID, int(time.time()), BODY) | {"webhook-timestamp": "soon"}

    with pytest.raises(WebhookVerificationError, match="not a whole number"):
        verify(secret, sent, BODY)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_refused(name):
    secret = new_secret()
    sent = headers([secret], MSG_ID, int(time.time()), BODY)
    del sent[name]

    with pytest.raises(WebhookVerificationError, match=f"Missing header.*{name}"):
        verify(secret, sent, BODY)


def test_unknown_versions_and_garbage_signatures_are_skipped():
    secret = new_secret()
    timestamp = int(time.time())
    good = sign([secret], MSG_ID, timestamp, BODY)
    received = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1a,abc v1,not*base64 nonsense {good}",
    }

    assert accepted(secret, received, BODY)


def test_secrets_are_prefixed_long_enough_and_unique():
    made = [new_secret() for _ in range(50)]

    assert all(secret.startswith(SECRET_PREFIX) for secret in made)
    assert all(len(secret_key(secret)) >= 24 for secret in made)
    assert len(set(made)) == len(made)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (base64.b64encode(b"k" * 32).decode(), "starts with 'whsec_'"),
        ("whsec_not base64!", "not valid base64"),
        ("whsec_" + base64.b64encode(b"k" * 23).decode(), "holds 23 bytes of key; it needs at least 24"),
    ],
)
def test_malformed_secret_is_refused(secret, message):
    with pytest.raises(ValueError, match=message):
        secret_key(secret)


def test_the_file_imports_only_the_standard_library():
    """Receivers copy the file as it is, so it must not need Django or any package."""
    tree = ast.parse(Path(webhook_signatures.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import would not survive being copied"
            imported.add(node.module.split(".")[0])

    assert imported
    assert imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names
