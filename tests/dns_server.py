"""A real DNS server on loopback for the webhook address guard's tests: its answers for a name can change between
lookups, which is what DNS rebinding is."""

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from dnslib import AAAA, QTYPE, RCODE, RR, A
from dnslib.server import DNSLogger, DNSServer


class ChangingResolver:
    """Answers A queries from a queue per name (the last answer repeats), so a name can change between lookups."""

    def __init__(self) -> None:
        self.ipv4: dict[str, list[str]] = {}
        self.ipv6: dict[str, list[str]] = {}
        self.queries: defaultdict[str, int] = defaultdict(int)

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".")
        qtype = QTYPE[request.q.qtype]
        self.queries[name] += 1
        if name not in self.ipv4 and name not in self.ipv6:
            reply.header.rcode = RCODE.NXDOMAIN
        elif qtype == "A" and self.ipv4.get(name):
            queue = self.ipv4[name]
            address = queue.pop(0) if len(queue) > 1 else queue[0]
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=0))
        elif qtype == "AAAA":
            for address in self.ipv6.get(name, []):
                reply.add_answer(RR(request.q.qname, QTYPE.AAAA, rdata=AAAA(address), ttl=0))
        return reply


@contextmanager
def running_dns_server() -> Iterator[tuple[ChangingResolver, str]]:
    """A DNS server on a free loopback UDP port: yields its resolver (set `ipv4[name] = [first, then, …]`) and its
    address as PROVENANT_WEBHOOK_DNS_SERVERS takes it."""
    resolver = ChangingResolver()
    server = DNSServer(resolver, address="127.0.0.1", port=0, logger=DNSLogger(logf=lambda _: None))
    threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield resolver, f"127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.stop()
        server.server.server_close()
