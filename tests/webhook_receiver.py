"""A real HTTP receiver for webhook tests: listens on 127.0.0.1, records every request, answers as told."""

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float  # time.time() when the body had arrived
    raw_headers: Message  # as sent, repeated names included (`get_all`)


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] | list[tuple[str, str]] = field(default_factory=dict)  # a list repeats a name
    delay: float = 0.0  # seconds to wait before answering
    drip: float = 0.0  # seconds between the body's bytes, sent one at a time


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """Senders hang up on purpose (a timeout, a refused certificate, a killed worker): nothing to report."""


class Receiver:
    """Answers each request with the next queued `Answer`, or `default` once the queue is empty."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: list[Answer] = []
        self.default = Answer()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._arrived:
                    receiver.requests.append(
                        Received(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time(), self.headers
                        )
                    )
                    answer = receiver.answers.pop(0) if receiver.answers else receiver.default
                    receiver._arrived.notify_all()
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    headers = answer.headers.items() if isinstance(answer.headers, dict) else answer.headers
                    for name, value in headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    if not answer.drip:
                        self.wfile.write(answer.body)
                    for byte in answer.body if answer.drip else b"":
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(answer.drip)
                except OSError:
                    return  # the sender gave up waiting (a timeout, a killed worker)

            def log_message(self, *args) -> None:
                """Quiet: http.server would print a line per request into the test output."""

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.url = f"{self.origin}/hooks"

    def wait_for(self, count: int, *, timeout: float = 30.0, what: Callable[[], str] = lambda: "") -> list[Received]:
        """Block until at least `count` requests have arrived; fail with `what()` when they do not in time."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"The receiver got {len(self.requests)} of {count} requests in {timeout:.0f} s. {what()}"
                    )
                self._arrived.wait(left)
            return list(self.requests)


@contextmanager
def running_receiver(*, tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """A receiver serving until the block ends; over TLS with the server context `tls`."""
    receiver = Receiver()
    if tls is not None:
        receiver.server.socket = tls.wrap_socket(
            receiver.server.socket, server_side=True, do_handshake_on_connect=False
        )
    # A short poll interval, so that shutting the server down costs no half second per test.
    thread = threading.Thread(target=receiver.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
