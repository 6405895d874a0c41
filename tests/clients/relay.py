"""A TCP relay between the client and a real server, for what a test cannot ask of the server itself: a connection
cut half-way through an answer, a request header changed on the way, a byte of a body flipped. Everything else
passes through untouched, and every request that crossed it is recorded, with the connection it used and the status
of its answer, so a test sees what reached the server rather than what the client says it sent.

It understands just enough HTTP/1.1 for that: request heads end with a blank line, a body follows when the head gives
its `Content-Length` (the client never sends one chunked); answers on a kept-alive connection follow their requests
in order.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Crossed:
    """One request that crossed the relay: the connection it came on, its head, the status it was answered."""

    connection: int
    method: str
    path: str
    headers: dict[str, str]
    status: int | None = None


@dataclass
class Relay:
    """Listens on a free loopback port and relays each connection to `upstream_port`.

    `rewrite(head)` may return another request head to send instead; `cut_after(request)` may return a number of
    answer bytes after which the connection is closed (both sides); `corrupt(request)` may return the offset in the
    answer (head included) of a byte to flip.
    """

    upstream_port: int
    rewrite: Callable[[bytes], bytes] | None = None
    cut_after: Callable[[Crossed], int | None] | None = None
    corrupt: Callable[[Crossed], int | None] | None = None
    crossed: list[Crossed] = field(default_factory=list)
    cuts: int = 0

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._listener.close()

    def ranges(self) -> list[Crossed]:
        """The requests that asked for a byte range."""
        return [request for request in self.crossed if "range" in request.headers]

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections += 1
                number = self._connections
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            state = _Connection(number)
            threading.Thread(target=self._requests, args=(downstream, upstream, state), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, downstream, state), daemon=True).start()

    def _requests(self, downstream: socket.socket, upstream: socket.socket, state: _Connection) -> None:
        pending = b""
        body_left = 0  # bytes of the current request's body still to pass on as they are
        try:
            while data := downstream.recv(65536):
                pending += data
                while pending and (body_left or b"\r\n\r\n" in pending):
                    if body_left:
                        passed, pending = pending[:body_left], pending[body_left:]
                        body_left -= len(passed)
                        upstream.sendall(passed)
                        continue
                    head, pending = pending.split(b"\r\n\r\n", 1)
                    head += b"\r\n\r\n"
                    if self.rewrite is not None:
                        head = self.rewrite(head)
                    request = _parse(state.number, head)
                    with self._lock:
                        self.crossed.append(request)
                    state.start(
                        request,
                        self.cut_after(request) if self.cut_after else None,
                        self.corrupt(request) if self.corrupt else None,
                    )
                    upstream.sendall(head)
                    length = request.headers.get("content-length", "0")
                    body_left = int(length) if length.isdigit() else 0
        except OSError:
            pass
        finally:
            _close(upstream, downstream)

    def _answers(self, upstream: socket.socket, downstream: socket.socket, state: _Connection) -> None:
        try:
            while data := upstream.recv(65536):
                data, cut = state.answered(data)
                downstream.sendall(data)
                if cut:
                    with self._lock:
                        self.cuts += 1
                    break
        except OSError:
            pass
        finally:
            _close(upstream, downstream)


class _Connection:
    """Where the answer to a connection's current request stands."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.lock = threading.Lock()
        self.request: Crossed | None = None
        self.sent = 0
        self.cut_at: int | None = None
        self.flip_at: int | None = None

    def start(self, request: Crossed, cut_at: int | None, flip_at: int | None) -> None:
        with self.lock:
            self.request, self.sent, self.cut_at, self.flip_at = request, 0, cut_at, flip_at

    def answered(self, data: bytes) -> tuple[bytes, bool]:
        """`data` as it is to be passed on (a byte flipped, or cut short), and whether to cut the connection."""
        with self.lock:
            if self.request is not None and self.request.status is None and data.startswith(b"HTTP/"):
                self.request.status = int(data.split(b" ", 2)[1])
            begin = self.sent
            self.sent += len(data)
            if self.flip_at is not None and begin <= self.flip_at < self.sent:
                index = self.flip_at - begin
                data = data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]
            if self.cut_at is not None and self.sent >= self.cut_at:
                return data[: self.cut_at - begin], True
            return data, False


def _parse(connection: int, head: bytes) -> Crossed:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return Crossed(connection, method, path, headers)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
