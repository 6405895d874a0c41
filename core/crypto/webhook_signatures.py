"""Standard Webhooks signatures: how Provenant signs each delivery, and how a receiver checks one.

The server signs with this module (governance/webhooks/services.py) and the example receiver checks with it
(examples/webhook_receiver.py). It uses the Python standard library only, so a receiver may copy this file as it
is. Each delivery carries three headers (https://www.standardwebhooks.com):

- ``webhook-id``: the message's id, the same on every retry of the same event;
- ``webhook-timestamp``: when this attempt was signed, in whole seconds since the Unix epoch;
- ``webhook-signature``: one or more ``v1,<base64 HMAC-SHA256>`` separated by spaces (two while a secret is being
  rotated: one made with the old secret, one with the new).

A receiver verifies a delivery before trusting anything in it::

    from webhook_signatures import WebhookVerificationError, verify

    try:
        verify(secret, request.headers, request.body)  # the raw body bytes, before any JSON parsing
    except WebhookVerificationError as error:
        return 400, str(error)

`verify` refuses a timestamp more than five minutes away from the receiver's clock, so a recorded delivery cannot be
replayed later; keep the receiver's clock synchronised (NTP). Within those five minutes the same delivery can still
arrive twice (Provenant retries until it sees a 2xx, and a retry may cross a slow answer), so a receiver de-duplicates
by ``webhook-id``: remember the ids it has processed for longer than the tolerance and skip those it has seen.
"""

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from secrets import token_bytes

SECRET_PREFIX = "whsec_"  # noqa: S105 (the public marker every secret starts with)
# The spec allows 24 to 64 bytes of key; we make 32 and accept no fewer than the spec's minimum.
SECRET_BYTES = 32
MINIMUM_SECRET_BYTES = 24
DEFAULT_TOLERANCE_SECONDS = 300


class WebhookVerificationError(ValueError):
    """A delivery whose headers or signature do not check out; its message says which part failed."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"A webhook secret starts with {SECRET_PREFIX!r} followed by base64.")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"The webhook secret after {SECRET_PREFIX!r} is not valid base64.") from None
    if len(key) < MINIMUM_SECRET_BYTES:
        raise ValueError(f"The webhook secret holds {len(key)} bytes of key; it needs at least {MINIMUM_SECRET_BYTES}.")
    return key


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: one signature per secret, so during a rotation both old and new verify."""
    if not secrets:
        raise ValueError("Signing needs at least one secret.")
    return " ".join(
        "v1," + base64.b64encode(_signature(secret_key(secret), msg_id, timestamp, body)).decode("ascii")
        for secret in secrets
    )


def headers(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise WebhookVerificationError unless `body` was signed with `secret` within `tolerance` seconds of `now`.

    `headers` may spell the names in any case (frameworks differ); `body` must be the bytes as received.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in ("webhook-id", "webhook-timestamp", "webhook-signature") if not lowered.get(name)]
    if missing:
        raise WebhookVerificationError(f"Missing header(s): {', '.join(missing)}.")
    msg_id, raw_timestamp = lowered["webhook-id"], lowered["webhook-timestamp"].strip()
    if not raw_timestamp.isascii() or not raw_timestamp.isdigit():
        raise WebhookVerificationError(f"webhook-timestamp {raw_timestamp!r} is not a whole number of seconds.")
    timestamp = int(raw_timestamp)
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {int(current - timestamp)} s old, more than the {tolerance} s allowed."
        )
    if timestamp > current + tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {int(timestamp - current)} s in the future, more than the {tolerance} s allowed."
        )
    expected = _signature(secret_key(secret), msg_id, timestamp, body)
    for candidate in lowered["webhook-signature"].split():
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            received = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, received):
            return
    raise WebhookVerificationError("No v1 signature matches this secret and body.")
