"""Outbound HTTP for webhook deliveries, guarded against server-side request forgery.

A webhook URL is chosen by a user, and the server then makes requests to it from inside our network, so an
unguarded URL could reach the cloud metadata service, the database or an admin port on loopback. Destinations are
checked twice: when an endpoint is registered (`destination_check`, which gives the person a clear answer early), and
again on every delivery when the connection is made. The second check is the one that protects: a host name can
resolve to a public address at registration and to 127.0.0.1 a minute later (DNS rebinding), so the network backend
below resolves the name itself, checks every address it gets, and connects to the very address it checked. TLS still
uses the URL's host name for SNI and certificate verification, which httpcore takes from the request's origin.
"""

import contextlib
import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import dns.exception
import dns.nameserver
import dns.resolver
import httpcore
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

EXCERPT_BYTES = 2048
USER_AGENT = "Provenant-Webhooks/1"
DNS_LIFETIME_SECONDS = 5.0

# Instance metadata services hand out cloud credentials to whoever asks from inside the instance; they are refused
# even when an operator allows their network (168.63.129.16 and 192.0.0.192 are not even private, so only this list
# stops them).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, ...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS Pod Identity
        "169.254.0.23",  # Tencent Cloud
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer
        "192.0.0.192",  # Oracle Cloud (older instances)
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS Pod Identity over IPv6
    )
)
# NAT64's well-known prefix carries an IPv4 address in its last 32 bits, which the translator then connects to.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ALLOW_HINT = (
    "webhooks may only go to public addresses (an operator may allow a network with PROVENANT_WEBHOOK_ALLOWED_NETWORKS)"
)


class DestinationRefused(ValueError):
    """A webhook destination the SSRF guard will not send to; the message says why and what would be accepted."""


class OutboundError(Exception):
    """An attempt that failed in transport (connecting, TLS, timing out, a broken answer); worth retrying later."""


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: dict[str, str]
    excerpt: bytes
    duration_ms: int


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4, Teredo or NAT64 address delivers to, which is where the packets really end up."""
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _unmapped(ip: IPAddress) -> IPAddress:
    """::ffff:a.b.c.d is the IPv4 address a.b.c.d itself, as an IPv6 socket sees it."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_allowed_network(ip: IPAddress) -> bool:
    return any(ip in network for network in settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS)


def address_refusal(ip: IPAddress) -> str | None:
    """None when webhooks may go to `ip`; otherwise what kind of address it is, to finish "... resolves to X, ___"."""
    ip = _unmapped(ip)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(ip)) is not None:
        refusal = address_refusal(embedded)
        if refusal is not None:
            return f"{refusal} ({embedded}, inside an IPv6 address)"
    if _is_allowed_network(ip):
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_private:
        return "a private address"
    if ip.is_site_local if isinstance(ip, ipaddress.IPv6Address) else False:
        return "a site-local address"
    if ip.is_reserved or not ip.is_global:
        return "an address that is not globally routable"
    return None


def _name_server(raw: str) -> dns.nameserver.Do53Nameserver:
    """A PROVENANT_WEBHOOK_DNS_SERVERS entry: "9.9.9.9", "2620:fe::fe", "127.0.0.1:5353" or "[::1]:5353"."""
    address, port = raw, 53
    if raw.startswith("["):
        address, _, rest = raw[1:].partition("]")
        if rest:
            port = int(rest.removeprefix(":"))
    elif raw.count(":") == 1:
        address, _, port_text = raw.partition(":")
        port = int(port_text)
    return dns.nameserver.Do53Nameserver(str(ipaddress.ip_address(address)), port=port)


def _resolve_with_name_servers(host: str, servers: Iterable[str]) -> list[IPAddress]:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [_name_server(server) for server in servers]
    resolver.lifetime = DNS_LIFETIME_SECONDS
    addresses: list[IPAddress] = []
    for record_type in ("A", "AAAA"):
        try:
            answer = resolver.resolve(host, record_type, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.DNSException as error:
            raise DestinationRefused(f"{host} could not be resolved ({error}).") from None
        addresses.extend(ipaddress.ip_address(record.address) for record in answer)
    return addresses


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to now, without duplicates; raises DestinationRefused when there is none."""
    with contextlib.suppress(ValueError):  # not an IP literal: a name to resolve
        return [ipaddress.ip_address(host)]
    if settings.PROVENANT_WEBHOOK_DNS_SERVERS:
        addresses = _resolve_with_name_servers(host, settings.PROVENANT_WEBHOOK_DNS_SERVERS)
    else:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as error:
            raise DestinationRefused(f"{host} could not be resolved ({error}).") from None
        addresses = [ipaddress.ip_address(sockaddr[0]) for *_, sockaddr in found]
    if not addresses:
        raise DestinationRefused(f"{host} could not be resolved: it has no IPv4 or IPv6 address.")
    return list(dict.fromkeys(addresses))


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_addresses(host: str, addresses: list[IPAddress], *, at_connect: bool) -> None:
    for ip in addresses:
        refusal = address_refusal(ip)
        if refusal is None:
            continue
        if _is_ip_literal(host):
            where = f"{host} is {refusal}"
        elif at_connect:
            where = f"{host} resolved to {ip} when connecting, {refusal}"
        else:
            where = f"{host} resolves to {ip}, {refusal}"
        if at_connect:
            where += "; refused at connect time"
        raise DestinationRefused(f"{where}; {_ALLOW_HINT}.")


def destination_check(url: str) -> None:
    """Raise DestinationRefused unless `url` is a webhook destination we would deliver to, as it resolves now."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DestinationRefused(f"{url!r} is not a web address: a webhook URL starts with https://.")
    if not parts.hostname:
        raise DestinationRefused(f"{url!r} has no host name: write it like https://hooks.example.com/provenant.")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused(
            "A webhook URL may not carry a user name or password: deliveries are signed, so the receiver "
            "authenticates them by checking the webhook-signature header instead."
        )
    if parts.fragment:
        raise DestinationRefused("A webhook URL may not have a #fragment: it is never sent to the receiver.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise DestinationRefused(f"{url!r} has a port that is not a number between 0 and 65535.") from None
    host = parts.hostname
    addresses = resolve(host, port)
    _check_addresses(host, addresses, at_connect=False)
    if scheme == "http":
        outside = [ip for ip in addresses if not _is_allowed_network(_unmapped(ip))]
        if outside:
            raise DestinationRefused(
                f"{host} resolves to {outside[0]}, a public address: use https:// (plain http:// is accepted only "
                "for addresses in PROVENANT_WEBHOOK_ALLOWED_NETWORKS, since the body would cross networks unencrypted)."
            )


class _DeadlineStream(httpcore.NetworkStream):
    """A stream whose every read and write also stops at the attempt's deadline, so a receiver dripping its answer
    a byte at a time cannot hold a worker for longer than the timeout."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def _remaining(self, timeout: float | None, exception: type[Exception]) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise exception("the attempt's deadline has passed")
        return remaining if timeout is None else min(timeout, remaining)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(ssl_context, server_hostname, self._remaining(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(stream, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Connects only to addresses the guard allows, and to exactly the address it checked."""

    def __init__(self, deadline: float) -> None:
        self._backend = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
        except DestinationRefused as error:
            # A name that does not resolve today may resolve tomorrow: a failed attempt, to retry, not a refusal.
            raise OutboundError(str(error)) from None
        # Every address, not just the first: otherwise a name with one public and one private address would pass
        # whenever the public one happened to come first.
        _check_addresses(host, addresses, at_connect=True)
        failure: Exception | None = None
        for ip in addresses:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                stream = self._backend.connect_tcp(
                    str(ip),
                    port,
                    timeout=remaining if timeout is None else min(timeout, remaining),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
                continue
            return _DeadlineStream(stream, self._deadline)
        raise failure or httpcore.ConnectTimeout("the attempt's deadline has passed")


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Built once: loading the CA bundle takes a while, and one context may wrap sockets in many threads."""
    return httpcore.default_ssl_context()


def _failure(error: Exception, timeout: float) -> OutboundError:
    """A short description of a transport failure, for the delivery log a person reads."""
    # httpcore wraps the socket's or ssl's own exception, not always as the __cause__.
    cause = error.__cause__ or error.__context__
    if isinstance(error, httpcore.ConnectTimeout):
        return OutboundError(f"timed out after {timeout:g} s while connecting")
    if isinstance(error, httpcore.TimeoutException):
        return OutboundError(f"timed out after {timeout:g} s")
    if isinstance(cause, ssl.SSLCertVerificationError):
        return OutboundError(f"TLS certificate not accepted: {cause.verify_message}")
    if isinstance(cause, ssl.SSLError):
        return OutboundError(f"TLS failed: {cause.reason or cause}")
    if isinstance(cause, ConnectionRefusedError):
        return OutboundError("connection refused")
    if isinstance(error, httpcore.ConnectError):
        return OutboundError(f"could not connect: {cause or error}")
    if isinstance(error, httpcore.ReadError | httpcore.WriteError):
        return OutboundError(f"connection lost: {cause or error}")
    if isinstance(error, httpcore.RemoteProtocolError):
        return OutboundError(f"the answer is not valid HTTP: {error}")
    return OutboundError(f"{type(error).__name__}: {error}")


def post(url: str, *, headers: Mapping[str, str], body: bytes, timeout: float) -> OutboundResponse:
    """POST `body` to `url` once, without following redirects, and read at most EXCERPT_BYTES of the answer.

    Raises DestinationRefused when an address the URL's host resolves to now is refused, OutboundError when the
    attempt fails in transport (a name that does not resolve included). Connecting, sending and reading all end
    after about `timeout` seconds in total; resolving the name comes before and takes at most DNS_LIFETIME_SECONDS
    with PROVENANT_WEBHOOK_DNS_SERVERS (the system resolver has its own timeouts).
    """
    started = time.monotonic()
    sent = {name.lower(): value for name, value in headers.items()}
    sent.setdefault("user-agent", USER_AGENT)
    sent.setdefault("content-type", "application/json")
    extensions = {"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}}
    # A pool per attempt: nothing is shared between threads, and a connection is never reused for a later attempt
    # whose host name may resolve elsewhere.
    with httpcore.ConnectionPool(
        ssl_context=_ssl_context(),
        max_connections=1,
        keepalive_expiry=0,
        network_backend=_GuardedBackend(deadline=started + timeout),
    ) as pool:
        try:
            with pool.stream("POST", url, headers=list(sent.items()), content=body, extensions=extensions) as response:
                excerpt = bytearray()
                for chunk in response.iter_stream():
                    excerpt += chunk
                    if len(excerpt) >= EXCERPT_BYTES:
                        break
        except (
            httpcore.TimeoutException,
            httpcore.NetworkError,
            httpcore.ProtocolError,
            httpcore.UnsupportedProtocol,
        ) as error:
            raise _failure(error, timeout) from error
    received: dict[str, str] = {}
    for raw_name, raw_value in response.headers:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        received[name] = f"{received[name]}, {value}" if name in received else value
    return OutboundResponse(
        status=response.status,
        headers=received,
        excerpt=bytes(excerpt[:EXCERPT_BYTES]),
        duration_ms=round((time.monotonic() - started) * 1000),
    )
