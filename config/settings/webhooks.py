"""Webhooks: where deliveries may go, how long each may take, and how often a failing one is tried again."""

import ipaddress
import re

from django.core.exceptions import ImproperlyConfigured

from config.settings.env import env_list, env_positive_int, env_str


def _networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for raw in env_list(name, []):
        try:
            networks.append(ipaddress.ip_network(raw, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {raw!r} is not an address or network (e.g. 10.20.0.0/16, 127.0.0.1, fd00::/8)."
            ) from None
    return networks


_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _retry_schedule(name: str, default: str) -> list[int]:
    """Delays before each retry, written like "5s,5m,30m,2h"; the number of delays is the number of retries."""
    raw = env_str(name) or default
    delays = []
    for part in raw.split(","):
        match = _DURATION.match(part.strip())
        if match is None or int(match[1]) == 0:
            raise ImproperlyConfigured(
                f"{name}={raw!r}: write the delays before each retry as a comma-separated list of durations "
                f'such as "5s,5m,30m,2h,5h,10h" (units s, m, h, d; each more than zero).'
            )
        delays.append(int(match[1]) * _UNIT_SECONDS[match[2]])
    return delays


# Deliveries are refused to any address that is not globally routable (loopback, private, link-local, shared,
# reserved), both when an endpoint is registered and again when each delivery connects, unless the address is in
# one of these networks (comma-separated, e.g. "10.20.0.0/16" for receivers inside your own network). Cloud
# metadata addresses are refused whatever this says. Plain http:// is accepted only for addresses listed here.
PROVENANT_WEBHOOK_ALLOWED_NETWORKS = _networks("PROVENANT_WEBHOOK_ALLOWED_NETWORKS")
# Name servers (addresses, comma-separated) to resolve receivers' host names with, instead of the system resolver:
# for a dedicated egress resolver. Each is an address with an optional port: "10.0.0.2", "127.0.0.1:5353", "[::1]:5353".
PROVENANT_WEBHOOK_DNS_SERVERS = env_list("PROVENANT_WEBHOOK_DNS_SERVERS", [])
# Seconds one delivery attempt may take, connecting, sending and reading the answer.
PROVENANT_WEBHOOK_TIMEOUT_SECONDS = env_positive_int("PROVENANT_WEBHOOK_TIMEOUT_SECONDS", 15)
# Delays before each retry of a failed delivery (each with up to 20% random jitter), about three days in all.
PROVENANT_WEBHOOK_RETRY_SCHEDULE = _retry_schedule(
    "PROVENANT_WEBHOOK_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,14h,20h,20h"
)
# An endpoint whose deliveries have all failed for this long is disabled, and its project's maintainers are told.
PROVENANT_WEBHOOK_DISABLE_AFTER_HOURS = env_positive_int("PROVENANT_WEBHOOK_DISABLE_AFTER_HOURS", 72)
# The relay (a beat task) hands due deliveries to the workers this often; it is also what sends events that were
# written while the broker was down.
PROVENANT_WEBHOOK_RELAY_INTERVAL_SECONDS = env_positive_int("PROVENANT_WEBHOOK_RELAY_INTERVAL_SECONDS", 5)
# A delivery handed to the broker that no worker has taken after this long is handed again (its message was lost,
# say, with a broker restarted without persistence). Workers skip duplicates, so this errs on the safe side.
PROVENANT_WEBHOOK_REQUEUE_AFTER_SECONDS = env_positive_int("PROVENANT_WEBHOOK_REQUEUE_AFTER_SECONDS", 120)
# After a rotation the old secret keeps signing (both signatures are sent) for this long, unless the rotation says.
PROVENANT_WEBHOOK_SECRET_OVERLAP_HOURS = env_positive_int("PROVENANT_WEBHOOK_SECRET_OVERLAP_HOURS", 24)
# Where people and programs reach this Provenant: event payloads link to the API under this address.
PROVENANT_PUBLIC_URL = (env_str("PROVENANT_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
