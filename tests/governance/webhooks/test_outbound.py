"""The webhook SSRF guard and outbound POST, against a real HTTP receiver and a real DNS server, both on loopback.

Nothing here leaves the machine: "public" names resolve through the loopback DNS server to public addresses that
only `destination_check` looks at; every connection that is actually made goes to 127.0.0.1.
"""

import datetime
import ipaddress
import socket
import ssl
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from governance.webhooks.outbound import (
    EXCERPT_BYTES,
    DestinationRefused,
    OutboundError,
    address_refusal,
    destination_check,
    post,
)
from tests.dns_server import running_dns_server
from tests.webhook_receiver import Answer, running_receiver

PUBLIC_ADDRESS = "93.184.216.34"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@pytest.fixture(autouse=True)
def _guard_defaults(settings):
    settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = []
    settings.PROVENANT_WEBHOOK_DNS_SERVERS = []


@pytest.fixture
def dns(settings):
    """A DNS server on a free loopback UDP port, which the guard is configured to use."""
    with running_dns_server() as (resolver, address):
        settings.PROVENANT_WEBHOOK_DNS_SERVERS = [address]
        yield resolver


def _refused(url: str) -> str:
    with pytest.raises(DestinationRefused) as refusal:
        destination_check(url)
    return str(refusal.value)


# Registration: addresses


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("https://[::1]/hook", "::1 is a loopback address"),
        ("https://10.0.0.5/hook", "10.0.0.5 is a private address"),
        ("https://192.168.1.10:8443/hook", "192.168.1.10 is a private address"),
        ("https://[fd12::1]/hook", "fd12::1 is a private address"),
        ("https://169.254.10.1/hook", "169.254.10.1 is a link-local address"),
        ("https://[fe80::1]/hook", "fe80::1 is a link-local address"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("https://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
        ("https://168.63.129.16/", "168.63.129.16 is a cloud metadata address"),
        ("https://100.100.100.200/", "100.100.100.200 is a cloud metadata address"),
        ("https://[::ffff:127.0.0.1]/hook", "::ffff:127.0.0.1 is a loopback address"),
        ("https://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254 is a cloud metadata address"),
        ("https://[2002:7f00:1::]/hook", "a loopback address (127.0.0.1, inside an IPv6 address)"),
        ("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "a loopback address (127.0.0.1, inside an IPv6 address)"),
        ("https://[64:ff9b::a9fe:a9fe]/", "a cloud metadata address (169.254.169.254, inside an IPv6 address)"),
        ("https://100.64.0.1/hook", "100.64.0.1 is an address that is not globally routable"),
        ("https://0.0.0.0/hook", "0.0.0.0 is the unspecified address"),
        ("https://224.0.0.1/hook", "224.0.0.1 is a multicast address"),
    ],
)
def test_non_public_addresses_are_refused_at_registration(url, reason):
    message = _refused(url)

    assert reason in message
    assert "webhooks may only go to public addresses" in message
    assert "PROVENANT_WEBHOOK_ALLOWED_NETWORKS" in message


def test_localhost_is_refused_through_the_system_resolver():
    assert _refused("https://localhost:8443/hook").startswith("localhost resolves to ")
    assert "a loopback address" in _refused("https://localhost:8443/hook")


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1"])
def test_numeric_spellings_of_loopback_are_refused(host):
    """The system resolver turns these into 127.0.0.1; what is checked is the address, not the spelling."""
    assert f"{host} resolves to 127.0.0.1, a loopback address" in _refused(f"https://{host}/hook")


def test_an_allowed_network_lets_loopback_through_even_over_plain_http(settings):
    assert "loopback" in _refused("http://127.0.0.1:8080/hook")

    settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = [LOOPBACK]

    destination_check("http://127.0.0.1:8080/hook")
    destination_check("https://127.0.0.1:8443/hook")
    assert "10.0.0.5 is a private address" in _refused("https://10.0.0.5/hook")


def test_metadata_is_refused_even_when_its_network_is_allowed(settings):
    settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("169.254.0.0/16")]

    assert "169.254.169.254 is a cloud metadata address" in _refused("http://169.254.169.254/latest/meta-data/")
    destination_check("http://169.254.1.1/hook")


def test_address_refusal_allows_public_addresses():
    assert address_refusal(ipaddress.ip_address(PUBLIC_ADDRESS)) is None
    assert address_refusal(ipaddress.ip_address("2606:4700::1111")) is None


# Registration: names and URLs


def test_public_name_needs_https(dns):
    dns.ipv4["hooks.example.test"] = [PUBLIC_ADDRESS]

    destination_check("https://hooks.example.test/provenant")
    message = _refused("http://hooks.example.test/provenant")
    assert f"hooks.example.test resolves to {PUBLIC_ADDRESS}, a public address: use https://" in message
    assert "use https://" in _refused(f"http://{PUBLIC_ADDRESS}/provenant")


def test_name_resolving_to_a_private_address_is_refused(dns):
    dns.ipv4["intranet.example.test"] = ["10.1.2.3"]

    assert _refused("https://intranet.example.test/").startswith(
        "intranet.example.test resolves to 10.1.2.3, a private address; webhooks may only go to public addresses"
    )


def test_one_private_address_among_public_ones_is_enough_to_refuse(dns):
    dns.ipv4["mixed.example.test"] = [PUBLIC_ADDRESS]
    dns.ipv6["mixed.example.test"] = ["2606:4700::1111", "fd00::1"]

    assert "mixed.example.test resolves to fd00::1, a private address" in _refused("https://mixed.example.test/")


def test_unresolvable_name_is_refused(dns):
    assert "nowhere.example.test could not be resolved" in _refused("https://nowhere.example.test/hook")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.test/", "a webhook URL starts with https://"),
        ("file:///etc/passwd", "a webhook URL starts with https://"),
        ("https:///hook", "has no host name"),
        ("https://user:secret@hooks.example.test/", "may not carry a user name or password"),
        ("https://hooks.example.test/hook#part", "may not have a #fragment"),
        ("https://hooks.example.test:99999/", "port that is not a number"),
    ],
)
def test_malformed_urls_are_refused(dns, url, message):
    dns.ipv4["hooks.example.test"] = [PUBLIC_ADDRESS]

    assert message in _refused(url)


# Delivery


def test_dns_rebinding_is_refused_at_connect_time(dns, receiver, settings):
    settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = []
    dns.ipv4["rebind.example.test"] = [PUBLIC_ADDRESS, "127.0.0.1"]
    url = f"https://rebind.example.test:{receiver.server.server_port}/hook"

    destination_check(url)
    with pytest.raises(DestinationRefused) as refusal:
        post(url, headers={}, body=b"{}", timeout=2)

    assert str(refusal.value).startswith(
        "rebind.example.test resolved to 127.0.0.1 when connecting, a loopback address; refused at connect time"
    )
    assert receiver.requests == []


def test_ip_literal_is_refused_at_connect_time():
    with pytest.raises(DestinationRefused, match=r"^127\.0\.0\.1 is a loopback address; refused at connect time"):
        post("http://127.0.0.1:9/hook", headers={}, body=b"{}", timeout=2)


def test_name_that_no_longer_resolves_is_a_failed_attempt(dns):
    with pytest.raises(OutboundError, match=r"^gone\.example\.test could not be resolved"):
        post("https://gone.example.test/hook", headers={}, body=b"{}", timeout=2)


def test_delivery_connects_to_the_address_the_name_resolved_to(dns, receiver):
    dns.ipv4["receiver.example.test"] = ["127.0.0.1"]
    port = receiver.server.server_port

    response = post(f"http://receiver.example.test:{port}/hook", headers={}, body=b"{}", timeout=2)

    assert response.status == 200
    assert receiver.requests[0].headers["host"] == f"receiver.example.test:{port}"


def test_receiver_gets_the_headers_and_body_that_were_sent(receiver):
    sent = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000", "webhook-signature": "v1,abc="}
    receiver.default = Answer(
        body=b'{"received":true}',
        headers=[("Content-Type", "application/json"), ("X-Receiver", "one"), ("X-Receiver", "two")],
    )

    response = post(f"{receiver.origin}/hook", headers=sent, body=b'{"type":"ping"}', timeout=2)

    (request,) = receiver.requests
    assert request.path == "/hook"
    assert request.body == b'{"type":"ping"}'
    assert {name: request.headers[name] for name in sent} == sent
    assert request.headers["user-agent"] == "Provenant-Webhooks/1"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-length"] == "15"
    assert response.status == 200
    assert response.excerpt == b'{"received":true}'
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-receiver"] == "one, two"
    assert response.duration_ms >= 0


def test_callers_content_type_and_user_agent_are_kept(receiver):
    post(
        f"{receiver.origin}/hook",
        headers={"Content-Type": "application/cloudevents+json", "User-Agent": "Custom/2"},
        body=b"{}",
        timeout=2,
    )

    (request,) = receiver.requests
    assert request.raw_headers.get_all("Content-Type") == ["application/cloudevents+json"]
    assert request.raw_headers.get_all("User-Agent") == ["Custom/2"]


def test_redirect_is_returned_not_followed(receiver):
    receiver.answers.append(Answer(status=302, body=b"", headers={"Location": f"{receiver.origin}/target"}))

    response = post(f"{receiver.origin}/redirect", headers={}, body=b"{}", timeout=2)

    assert response.status == 302
    assert response.headers["location"].endswith("/target")
    assert [request.path for request in receiver.requests] == ["/redirect"]


def test_slow_receiver_times_out(receiver):
    receiver.answers.append(Answer(delay=3, body=b"late"))
    started = time.monotonic()

    with pytest.raises(OutboundError, match=r"^timed out after 0\.5 s$"):
        post(f"{receiver.origin}/slow", headers={}, body=b"{}", timeout=0.5)
    assert time.monotonic() - started < 1.5


def test_receiver_dripping_its_answer_is_cut_off_at_the_deadline(receiver):
    """Each byte arrives well within the read timeout; only the overall deadline stops the attempt."""
    receiver.answers.append(Answer(body=b"x" * 100, drip=0.05))
    started = time.monotonic()

    with pytest.raises(OutboundError, match=r"^timed out after 0\.5 s$"):
        post(f"{receiver.origin}/drip", headers={}, body=b"{}", timeout=0.5)
    assert time.monotonic() - started < 1.5


def test_excerpt_is_capped(receiver):
    receiver.answers.append(Answer(body=b"x" * 100_000))

    response = post(f"{receiver.origin}/big", headers={}, body=b"{}", timeout=2)

    assert response.status == 200
    assert len(response.excerpt) == EXCERPT_BYTES
    assert response.headers["content-length"] == "100000"


def test_closed_port_is_reported_as_connection_refused(settings):
    settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = [LOOPBACK]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(OutboundError, match=r"^connection refused$"):
        post(f"http://127.0.0.1:{port}/hook", headers={}, body=b"{}", timeout=2)


def _self_signed(name: str, directory) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(tz=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


def test_tls_uses_the_urls_host_name_and_verifies_the_certificate(dns, settings, tmp_path):
    """Connecting to the resolved address must not lose the name: SNI carries it, and an untrusted certificate
    fails the attempt."""
    settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = [LOOPBACK]
    dns.ipv4["tls.example.test"] = ["127.0.0.1"]
    server_names = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_self_signed("tls.example.test", tmp_path))
    context.sni_callback = lambda _socket, name, _context: server_names.append(name)
    refused = pytest.raises(OutboundError, match=r"^TLS certificate not accepted: self-signed certificate")
    with running_receiver(tls=context) as server, refused:
        post(f"https://tls.example.test:{server.server.server_port}/hook", headers={}, body=b"{}", timeout=2)

    assert server_names == ["tls.example.test"]
    assert server.requests == []


def test_deprecated_ipv6_site_local_addresses_are_refused():
    assert address_refusal(ipaddress.ip_address("fec0::1")) == "a site-local address"
