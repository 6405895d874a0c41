"""Downloads: a blob's bytes from the server, or the presigned URL it redirects to, into the content-addressed cache.

A blob of a known size at or above `parallel_threshold` comes in pieces fetched by `parallelism` threads at once
(by default, None: `STORAGE_PARALLELISM` threads when the server redirects to its storage, one stream when it serves
the bytes itself: one stream from the API is bound by SHA-256, not by the link, and each range would cost the server
a request and an audit entry; a presigned storage URL is where ranges pay, on a link slower than hashing),
each piece a Range request tied to the blob by `If-Range`, written with `os.pwrite` at its offset into a temporary
file of the full size. The calling thread hashes the file as it fills, following the prefix that is complete (a
re-read from the page cache, overlapped with the download, instead of a second pass at the end), and is the one
that calls `progress`. The pieces are small (`piece_size`) and handed out in order, so that prefix advances steadily
and little is left to hash once the last byte arrives. Smaller blobs, blobs of unknown size and servers that ignore
Range come in one stream, hashed as it arrives.

Bodies are read with `http.client` into one reused 1 MiB buffer per thread: httpx's read path (httpcore reads the
socket 64 KiB at a time, h11 parses, httpx re-chunks) costs a GiB download seconds that `readinto` does not (see
benchmarks/README.md, "The Python client's transfers"). httpx still reads them when the Client was given its own
transport, or when the environment names a proxy (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`; httpx applies them
and `NO_PROXY`): `http.client` speaks no proxy here. TLS uses the context httpx would make (certifi,
`SSL_CERT_FILE`...); the socket timeout is the Client's. Either way, the httpx client's request and response event
hooks see every request (a response's body is never given to them).

Authorization goes only to the server's own origin. When it answers with a redirect (S3: a presigned URL, with
`?redirect=true` or the server's PROVENANT_S3_REDIRECT_DOWNLOADS), the URL is asked for once and every range goes
straight to it, without the bearer token, which is not the storage's to see, and without If-Range: the ETag there is
the storage's, not the digest; the presigned URL names one immutable object, and the whole is checked by its digest.
When the storage refuses it later (a presigned URL expires in minutes), the server is asked for a fresh one.

A piece that fails with a 5xx or a dropped connection is asked again with backoff, from the bytes of it already
written. A piece answered 200 (the server ignored Range, or If-Range did not match) or with another range than
asked makes the whole download start over as one stream. Nothing reaches `blobs/sha256/` unless it hashes right;
an interruption (Ctrl-C included) removes the temporary file.

Over 800 lines in one module, on purpose: the two read paths, the route (redirects, which headers go where) and the
two ways of assembling a blob share one retry and one redirect rule, and each half would need the other's insides.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import queue
import re
import socket
import ssl
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urljoin, urlsplit
from urllib.request import getproxies

import httpx

from provenant_client import transfers
from provenant_client.errors import DigestMismatch, ProvenantError, ServerError, error_from_response
from provenant_client.transfers import RETRY_STATUSES, Progress

MiB = 1024 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
#: Pieces handed to the threads: a few per thread, so completion moves forward in order and the hashing keeps up,
#: but never so small that a request (and the audit entry the server writes for it) costs more than its bytes.
PIECES_PER_THREAD = 4
MIN_PIECE = 8 * MiB
MAX_PIECE = 64 * MiB
#: How long a failed download waits for its other threads to stop before the temporary file goes anyway.
STOP_WAIT_SECONDS = 5.0
#: Threads of a parallel download from the storage a server redirects to, when the Client's parallelism is automatic.
STORAGE_PARALLELISM = 4


class ConnectionLost(Exception):
    """No answer, or an answer cut short: worth asking again."""


class RangeIgnored(Exception):
    """A range request answered with the whole blob (200) or with another range than asked."""


# ---------------------------------------------------------------------------------------------- reading answers


class Answer(ABC):
    """One response whose body is read into a caller's buffer: status, headers, `readinto`, `close`."""

    status: int
    headers: Mapping[str, str]

    @abstractmethod
    def readinto(self, buffer: memoryview) -> int:
        """Fill `buffer` from the body; the count of bytes, 0 at its end. ConnectionLost when it is cut."""

    def read_all(self, limit: int = 64 * 1024) -> bytes:
        """The (small) body of an error or a redirect."""
        chunks, buffer = [], bytearray(limit)
        view = memoryview(buffer)
        while limit > 0 and (count := self.readinto(view[: min(len(view), limit)])):
            chunks.append(bytes(view[:count]))
            limit -= count
        return b"".join(chunks)

    @abstractmethod
    def close(self) -> None:
        """Done with the answer: its connection is kept only if the body was read to its end."""


class _StdlibAnswer(Answer):
    def __init__(self, response: http.client.HTTPResponse, connection: _StdlibFetcher, key: tuple) -> None:
        self._response = response
        self._fetcher = connection
        self._key = key
        self.status = response.status
        self.headers = httpx.Headers(response.getheaders())

    def readinto(self, buffer: memoryview) -> int:
        try:
            return self._response.readinto(buffer)
        except (OSError, http.client.HTTPException) as error:
            self._fetcher.drop(self._key)
            raise ConnectionLost(repr(error)) from error

    def close(self) -> None:
        if not self._response.isclosed():
            # Unread bytes would be the next answer's start on a kept-alive connection: this one is done.
            self._fetcher.drop(self._key)
        self._response.close()


class _HttpxAnswer(Answer):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._pieces = response.iter_raw()
        self._left = memoryview(b"")
        self.status = response.status_code
        self.headers = response.headers

    def readinto(self, buffer: memoryview) -> int:
        try:
            while not self._left:
                self._left = memoryview(next(self._pieces))
        except StopIteration:
            return 0
        except httpx.TransportError as error:
            raise ConnectionLost(repr(error)) from error
        count = min(len(buffer), len(self._left))
        buffer[:count] = self._left[:count]
        self._left = self._left[count:]
        return count

    def close(self) -> None:
        self._response.close()


class _StdlibFetcher:
    """One thread's kept-alive `http.client` connections, one per origin."""

    def __init__(self, http: httpx.Client, ssl_context: ssl.SSLContext, timeout: float | None) -> None:
        self._http = http
        self._ssl_context = ssl_context
        self._timeout = timeout
        self._connections: dict[tuple, http.client.HTTPConnection] = {}
        self._lock = threading.Lock()

    def open(self, method: str, url: str, headers: dict[str, str]) -> Answer:
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        _announce(self._http, "request", httpx.Request(method, url, headers=headers))
        try:
            connection = self._connection(key)
            connection.request(method, target or "/", headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            self.drop(key)
            raise ConnectionLost(repr(error)) from error
        answer = _StdlibAnswer(response, self, key)
        request = httpx.Request(method, url, headers=headers)
        _announce(self._http, "response", httpx.Response(answer.status, headers=answer.headers, request=request))
        return answer

    def _connection(self, key: tuple) -> http.client.HTTPConnection:
        with self._lock:
            connection = self._connections.get(key)
            if connection is None:
                scheme, host, port = key
                if scheme == "https":
                    connection = http.client.HTTPSConnection(
                        host, port, timeout=self._timeout, context=self._ssl_context, blocksize=MiB
                    )
                else:
                    connection = http.client.HTTPConnection(host, port, timeout=self._timeout, blocksize=MiB)
                self._connections[key] = connection
            return connection

    def drop(self, key: tuple) -> None:
        with self._lock:
            connection = self._connections.pop(key, None)
        if connection is not None:
            connection.close()

    def abort(self) -> None:
        """Unblock a read in progress from another thread: shut the sockets down (closing alone may not wake it)."""
        with self._lock:
            sockets = [connection.sock for connection in self._connections.values() if connection.sock is not None]
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by its own thread
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            connection.close()


class _HttpxFetcher:
    """Requests through the Client's own httpx client (its transport, its proxies), redirects not followed."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def open(self, method: str, url: str, headers: dict[str, str]) -> Answer:
        request = self._http.build_request(method, url, headers=headers)
        if "Authorization" not in headers:  # the client's default header must not reach another origin either
            request.headers.pop("Authorization", None)
        try:
            response = self._http.send(request, stream=True, follow_redirects=False)
        except httpx.TransportError as error:
            raise ConnectionLost(repr(error)) from error
        return _HttpxAnswer(response)

    def abort(self) -> None:
        """httpx offers no safe way to interrupt another thread's read: it stops at its next block or timeout."""

    def close(self) -> None:
        """The connections are the Client's, released with it."""


def _write_at(descriptor: int, data: memoryview, offset: int) -> None:
    if hasattr(os, "pwrite"):
        os.pwrite(descriptor, data, offset)
    else:  # Windows: one stream only, written in order
        os.lseek(descriptor, offset, os.SEEK_SET)
        os.write(descriptor, data)


def _announce(http: httpx.Client, kind: str, message: Any) -> None:
    for hook in http.event_hooks[kind]:
        hook(message)


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: what says whether a URL is the server's own (a port left out is the default)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


# ---------------------------------------------------------------------------------------------- the route


@dataclass
class Route:
    """Where the bytes are read from: the API's URL (`start`), or once it redirected, the URL it named."""

    start: str
    url: str
    authorization: str | None
    user_agent: str
    api_origin: tuple[str, str, int | None]
    etag: str
    announced: str | None = None  # the hex SHA-256 of any Repr-Digest heard on the way
    lock: threading.Lock = field(default_factory=threading.Lock)

    def headers(self, url: str, byte_range: tuple[int, int | None] | None) -> dict[str, str]:
        """What a request to `url` carries: Authorization and If-Range only to the API's own origin."""
        headers = {"User-Agent": self.user_agent, "Accept": "*/*", "Accept-Encoding": "identity"}
        own = origin(url) == self.api_origin
        if own and self.authorization:
            headers["Authorization"] = self.authorization
        if byte_range is not None:
            first, last = byte_range
            headers["Range"] = f"bytes={first}-{'' if last is None else last}"
            if own:
                headers["If-Range"] = self.etag
        return headers


# ---------------------------------------------------------------------------------------------- the downloader


@dataclass
class _Assembly:
    """The pieces of one parallel download and how far each got, shared by its threads under one condition."""

    size: int
    pieces: list[tuple[int, int]]
    written: list[int]
    condition: threading.Condition = field(default_factory=threading.Condition)
    next_piece: int = 0
    total: int = 0
    failure: BaseException | None = None
    stopped: bool = False
    writing: int = 0

    def take(self) -> int | None:
        with self.condition:
            if self.stopped or self.next_piece >= len(self.pieces):
                return None
            self.next_piece += 1
            return self.next_piece - 1

    def write(self, descriptor: int, piece: int, data: memoryview, position: int) -> bool:
        """Write a block of `piece` at `position`, unless the download was stopped: False then, and nothing is
        written. Once `halt()` returned no thread writes again, however long it outlives the download (its file
        may be gone, or its descriptor's number reused by another file)."""
        with self.condition:
            if self.stopped:
                return False
            self.writing += 1
        try:
            os.pwrite(descriptor, data, position)
        finally:
            with self.condition:
                self.writing -= 1
                self.condition.notify_all()
        with self.condition:
            self.written[piece] += len(data)
            self.total += len(data)
            self.condition.notify_all()
        return True

    def halt(self) -> None:
        """Stop every thread's writing and wait for the writes under way (a `pwrite` each, not a network read)."""
        with self.condition:
            self.stopped = True
            while self.writing:
                self.condition.wait()

    def fail(self, error: BaseException) -> None:
        with self.condition:
            if self.failure is None:
                self.failure = error
            self.stopped = True
            self.condition.notify_all()

    def frontier(self) -> int:
        """The end of the prefix written without a gap. Call holding the condition."""
        end = 0
        for (start, stop), written in zip(self.pieces, self.written):
            end = start + written
            if end < stop:
                break
        return end


class _HashBehind:
    """A thread that hashes the blocks one stream has received and written, while the stream receives the next:
    the socket read, the write and SHA-256 each release the GIL, so on two cores a download costs the longest of
    them rather than their sum (1 GiB from a local nginx into the cache: 1.14-1.47 s against 1.41-1.48 s hashed in
    line, alternated in one minute). `BUFFERS` blocks go round between the two threads.

    A copy of the blob somewhere else is still made once it is in (`transfers.place`: the kernel copies the file),
    not written by this thread as the blocks pass: the second write from Python cost more (2.2-3.0 s against
    1.6-2.2 s for the same pull to a file)."""

    BUFFERS = 3

    def __init__(self) -> None:
        self.views = [memoryview(bytearray(transfers.BLOCK_SIZE)) for _ in range(self.BUFFERS)]
        self._free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(self.BUFFERS):
            self._free.put(index)
        self._filled: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self.hasher = hashlib.sha256()
        self._thread = threading.Thread(target=self._run, name="provenant-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._filled.get()) is not None:
            index, count = item
            self.hasher.update(self.views[index][:count])
            self._free.put(index)

    def take(self) -> int:
        """A buffer not being hashed, to receive into: its index (waits while all are in the hashing queue)."""
        return self._free.get()

    def hash(self, index: int, count: int) -> None:
        """Hash the first `count` bytes of buffer `index`, after those handed over before; the buffer comes back."""
        self._filled.put((index, count))

    def give_back(self, index: int) -> None:
        """A buffer taken but not to be hashed (the body ended, or the read failed)."""
        self._free.put(index)

    def restart(self) -> None:
        """Forget everything hashed so far (the server sent the whole blob again): once the blocks in flight are
        done, a fresh hash."""
        taken = [self._free.get() for _ in range(self.BUFFERS)]  # all back: the thread is idle
        self.hasher = hashlib.sha256()
        for index in taken:
            self._free.put(index)

    def finish(self) -> Any:
        """The hash of every block handed over, once the thread has done them all."""
        self.close()
        return self.hasher

    def close(self) -> None:
        if self._thread.is_alive():
            self._filled.put(None)
            self._thread.join()


class Downloader:
    """Fetches blobs for one Client: its httpx client (hooks, headers, transport), cache, retries and backoff."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        cache: transfers.Cache,
        retries: int,
        pause: Callable[[int], None],
        timeout: float | None,
        parallelism: int | None,
        parallel_threshold: int,
        own_transport: bool,
    ) -> None:
        self.http = http
        self.cache = cache
        self.retries = retries
        self.pause = pause
        self.timeout = timeout
        #: Threads per large download; None chooses by where the bytes come from (see the module's docstring).
        self.parallelism = None if parallelism is None else max(1, parallelism)
        self.parallel_threshold = parallel_threshold
        self.own_transport = own_transport
        self._ssl_context: ssl.SSLContext | None = None

    # ---- the whole

    def download(self, url: str, digest: str, size: int | None, progress: Progress | None = None) -> Path:
        """Fetch `url` (a path under the API or an absolute URL) into the cache as `digest`, checked; its path."""
        if not url.startswith(("http://", "https://")):  # a path under the API, as httpx would merge it
            url = str(self.http.base_url).rstrip("/") + "/" + url.lstrip("/")
        api_origin = origin(str(self.http.base_url))
        if origin(url) != api_origin:  # a version's download_url is the server's own; only its redirects leave it
            raise ProvenantError(
                f"GET {url}: not a URL of the server {self.http.base_url}, so it is not asked (it would carry your "
                "token); a proxy in front of the server may be rewriting its URLs.",
                code="foreign_url",
            )
        route = Route(
            start=url,
            url=url,
            authorization=self.http.headers.get("Authorization"),
            user_agent=self.http.headers.get("User-Agent", "provenant-client"),
            api_origin=api_origin,
            etag=f'"{digest}"',
        )
        expected = digest.split(":", 1)[1]
        file = self.cache.incoming()
        temporary = Path(file.name)
        try:
            large = bool(size) and size >= self.parallel_threshold and hasattr(os, "pwrite")  # (no range of 0)
            threads = self.parallelism or 1
            hasher, received, opened = None, 0, None
            if large and self.parallelism is None:
                opened = self._open_whole(route)
                if origin(route.url) != route.api_origin:  # redirected to the storage: ranges go there
                    opened[1].close()
                    opened[0].close()
                    opened, threads = None, STORAGE_PARALLELISM
            if large and threads > 1:
                try:
                    hasher, received = self._parallel(route, file.fileno(), size, progress, threads)
                except RangeIgnored:  # the blob whole, in a fresh file: nothing of the ranges' file is reused
                    file.close()
                    temporary.unlink(missing_ok=True)
                    file = self.cache.incoming()
                    temporary = Path(file.name)
            if hasher is None:
                hasher, received = self._single(route, file.fileno(), size, progress, opened)
            os.fsync(file.fileno())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        finally:
            file.close()
        actual = hasher.hexdigest()
        announced = route.announced
        if actual != expected or (announced is not None and announced != expected) or size not in (None, received):
            temporary.unlink(missing_ok=True)
            raise DigestMismatch(
                f"Downloaded {received} bytes hashing to sha256:{actual}, not {digest}"
                + (f" (the server announced sha256:{announced})" if announced and announced != expected else ""),
                code="digest_mismatch",
            )
        return self.cache.admit(temporary, digest)

    # ---- requests

    def _fetcher(self) -> _StdlibFetcher | _HttpxFetcher:
        """What this thread's requests go through: `http.client`, unless a transport or a proxy says httpx."""
        if self.own_transport or self._proxy_configured():
            return _HttpxFetcher(self.http)
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return _StdlibFetcher(self.http, self._ssl_context, self.timeout)

    @staticmethod
    def _proxy_configured() -> bool:
        """Whether the environment names a proxy (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`). Any: a redirect may
        lead to a host that `NO_PROXY` does not exempt, and httpx applies the rules."""
        proxies = getproxies()
        return any(proxies.get(scheme) for scheme in ("http", "https", "all"))

    def _request(
        self,
        fetcher: _StdlibFetcher | _HttpxFetcher,
        route: Route,
        method: str,
        byte_range: tuple[int, int | None] | None,
    ) -> Answer:
        """Send one request along the route, following redirects (remembered, so later requests go straight to
        the storage's URL); an answer of 400 or more raises: ConnectionLost for what may pass, else its error."""
        url = route.url
        for _ in range(MAX_REDIRECTS + 1):
            answer = fetcher.open(method, url, route.headers(url, byte_range))
            announced = transfers.repr_digest_hex(answer.headers.get("Repr-Digest"))
            if announced is not None:
                route.announced = announced
            if answer.status in REDIRECT_STATUSES and answer.headers.get("Location"):
                answer.read_all()
                answer.close()
                url = urljoin(url, answer.headers["Location"])
                continue
            if answer.status >= 400:
                body = answer.read_all()
                answer.close()
                if answer.status in (401, 403) and origin(url) != route.api_origin:
                    # A presigned URL lives minutes (S3 refuses it with 403 once expired), a large pull longer:
                    # ask the server for a fresh one, as one more attempt.
                    with route.lock:
                        route.url = route.start
                    raise ConnectionLost(f"{method} {url} answered {answer.status}: asking {route.start} again")
                response = httpx.Response(
                    answer.status, headers=answer.headers, content=body, request=httpx.Request(method, url)
                )
                if answer.status in RETRY_STATUSES:
                    raise ConnectionLost(f"{method} {url} answered {answer.status}")
                raise error_from_response(response)
            with route.lock:
                route.url = url
            return answer
        raise ServerError(f"GET {route.url}: more than {MAX_REDIRECTS} redirects", code="too_many_redirects")

    def _retrying(self, attempt: int, what: str, error: BaseException) -> int:
        """Count a failed attempt: wait before the next, or give up with ServerError after the last."""
        if attempt >= self.retries:
            raise ServerError(f"{what}: download interrupted ({error})", code="unreachable") from error
        attempt += 1
        self.pause(attempt)
        return attempt

    # ---- one stream

    def _open_whole(self, route: Route) -> tuple[_StdlibFetcher | _HttpxFetcher, Answer]:
        """The blob asked for whole as a range from its first byte (`bytes=0-`), for the route to show where the
        bytes come from before the rest is decided; the fetcher and the answer, its body not yet read."""
        fetcher = self._fetcher()
        attempt = 0
        try:
            while True:
                try:
                    return fetcher, self._request(fetcher, route, "GET", (0, None))
                except ConnectionLost as error:
                    attempt = self._retrying(attempt, f"GET {route.url}", error)
        except BaseException:
            fetcher.close()
            raise

    def _single(
        self,
        route: Route,
        descriptor: int,
        size: int | None,
        progress: Progress | None,
        opened: tuple[_StdlibFetcher | _HttpxFetcher, Answer] | None = None,
    ) -> tuple[Any, int]:
        """The whole blob in one stream, hashed by another thread as it arrives (`_HashBehind`); after a dropped
        connection, the rest from where it stopped (Range + If-Range), or everything again when the server answers
        with the whole blob. `opened`: a request for the whole blob already sent (see `_open_whole`), read first."""
        hashing = _HashBehind()
        received = 0
        attempt = 0
        fetcher, pending = opened if opened is not None else (self._fetcher(), None)
        try:
            while True:
                try:
                    if pending is not None:
                        answer, pending = pending, None
                    else:
                        answer = self._request(fetcher, route, "GET", (received, None) if received else None)
                    try:
                        if answer.status == 206:
                            matched = CONTENT_RANGE.fullmatch(answer.headers.get("Content-Range", "").strip())
                            if matched is None or int(matched[1]) != received:
                                received = 0  # not the rest asked for: ask for all
                                hashing.restart()
                                raise ConnectionLost(f"answered {answer.headers.get('Content-Range')!r}")
                            expected = int(matched[3])
                        else:
                            if received:  # the whole blob again: start over
                                received = 0
                                hashing.restart()
                            length = answer.headers.get("Content-Length", "")
                            expected = int(length) if length.isdigit() else None
                        os.ftruncate(descriptor, received)
                        while True:
                            index = hashing.take()
                            try:
                                count = answer.readinto(hashing.views[index])
                                if count:
                                    _write_at(descriptor, hashing.views[index][:count], received)
                            except BaseException:
                                hashing.give_back(index)
                                raise
                            if not count:
                                hashing.give_back(index)
                                break
                            hashing.hash(index, count)
                            received += count
                            if progress is not None:
                                progress(received, size)
                    finally:
                        answer.close()
                    if expected is not None and received < expected:  # http.client ends a cut body quietly
                        raise ConnectionLost(f"the answer ended after {received} of {expected} bytes")
                    return hashing.finish(), received
                except ConnectionLost as error:
                    attempt = self._retrying(attempt, f"GET {route.url}", error)
        finally:
            hashing.close()
            fetcher.close()

    # ---- parallel ranges

    @staticmethod
    def _pieces(size: int, threads: int) -> list[tuple[int, int]]:
        piece = min(MAX_PIECE, max(MIN_PIECE, -(-size // (threads * PIECES_PER_THREAD))))
        return [(start, min(start + piece, size)) for start in range(0, size, piece)]

    def _parallel(
        self, route: Route, descriptor: int, size: int, progress: Progress | None, threads: int
    ) -> tuple[Any, int]:
        """The blob in pieces fetched by `threads` threads, hashed by this one as the complete prefix grows.

        The first piece's request is sent here first, so a redirect is followed once and a server that ignores
        Range is found out before any other request: RangeIgnored then, for the caller to stream the blob whole.
        """
        pieces = self._pieces(size, threads)
        assembly = _Assembly(size=size, pieces=pieces, written=[0] * len(pieces))
        os.ftruncate(descriptor, size)
        first_fetcher = self._fetcher()
        attempt = 0
        try:
            while True:
                try:
                    first = self._request(first_fetcher, route, "GET", (pieces[0][0], pieces[0][1] - 1))
                    break
                except ConnectionLost as error:
                    attempt = self._retrying(attempt, f"GET {route.url}", error)
        except BaseException:
            first_fetcher.close()
            raise
        if not self._is_range(first, pieces[0], size):
            first.close()
            first_fetcher.close()
            raise RangeIgnored
        assembly.next_piece = 1
        fetchers = [first_fetcher] + [self._fetcher() for _ in range(min(threads, len(pieces)) - 1)]
        threads = [
            threading.Thread(
                target=self._worker,
                args=(assembly, route, descriptor, fetcher, (0, first) if index == 0 else None),
                name=f"provenant-download-{index}",
                daemon=True,
            )
            for index, fetcher in enumerate(fetchers)
        ]
        for thread in threads:
            thread.start()
        try:
            hasher = self._hash_as_written(assembly, descriptor, progress)
        except BaseException as error:
            assembly.fail(error)
            for fetcher in fetchers:
                fetcher.abort()
            raise
        finally:
            for thread in threads:  # done with the file before it is closed, renamed or removed
                thread.join(STOP_WAIT_SECONDS)
            assembly.halt()  # a thread still reading from the network never writes to the file again
            for fetcher in fetchers:
                fetcher.close()
        return hasher, assembly.total

    def _hash_as_written(self, assembly: _Assembly, descriptor: int, progress: Progress | None) -> Any:
        """Hash the file from its start as far as it is written without a gap, until the end; tell `progress` the
        bytes written (by every thread) each time. Raises what a thread failed with."""
        hasher = hashlib.sha256()
        hashed = 0
        size = assembly.size
        while hashed < size:
            with assembly.condition:
                while assembly.failure is None and assembly.frontier() <= hashed:
                    assembly.condition.wait(0.5)  # a timeout, so Ctrl-C is heard on every platform
                if assembly.failure is not None:
                    raise assembly.failure
                frontier, total = assembly.frontier(), assembly.total
            if progress is not None:
                progress(total, size)
            while hashed < frontier:
                block = os.pread(descriptor, min(transfers.BLOCK_SIZE, frontier - hashed), hashed)
                if not block:
                    raise OSError(f"could not read back byte {hashed} of the download")
                hasher.update(block)
                hashed += len(block)
        return hasher

    @staticmethod
    def _is_range(answer: Answer, piece: tuple[int, int], size: int) -> bool:
        if answer.status != 206:
            return False
        matched = CONTENT_RANGE.fullmatch(answer.headers.get("Content-Range", "").strip())
        return matched is not None and (int(matched[1]), int(matched[2]) + 1, int(matched[3])) == (*piece, size)

    def _worker(
        self,
        assembly: _Assembly,
        route: Route,
        descriptor: int,
        fetcher: _StdlibFetcher | _HttpxFetcher,
        opened: tuple[int, Answer] | None,
    ) -> None:
        """Fetch pieces until none is left: each one's bytes written at their offset, retried from where they
        stopped. A failure stops every thread and reaches the hashing thread, which raises it."""
        buffer = bytearray(transfers.BLOCK_SIZE)
        view = memoryview(buffer)
        try:
            piece = opened[0] if opened is not None else assembly.take()
            answer = opened[1] if opened is not None else None
            while piece is not None and not assembly.stopped:
                self._fetch_piece(assembly, route, descriptor, fetcher, piece, answer, view)
                answer = None
                piece = assembly.take()
        except BaseException as error:
            assembly.fail(error)

    def _fetch_piece(
        self,
        assembly: _Assembly,
        route: Route,
        descriptor: int,
        fetcher: _StdlibFetcher | _HttpxFetcher,
        piece: int,
        answer: Answer | None,
        view: memoryview,
    ) -> None:
        start, end = assembly.pieces[piece]
        attempt = 0
        while True:
            position = start + assembly.written[piece]
            if position >= end:
                return
            try:
                if answer is None:
                    answer = self._request(fetcher, route, "GET", (position, end - 1))
                    if not self._is_range(answer, (position, end), assembly.size):
                        answer.close()
                        raise RangeIgnored
                try:
                    while position < end and not assembly.stopped:
                        count = answer.readinto(view[: min(len(view), end - position)])
                        if count == 0:
                            raise ConnectionLost(f"the answer for bytes {position}-{end - 1} ended early")
                        if not assembly.write(descriptor, piece, view[:count], position):
                            return
                        position += count
                finally:
                    answer.close()
                    answer = None
                if assembly.stopped:
                    return
            except ConnectionLost as error:
                if assembly.stopped:
                    return
                attempt = self._retrying(attempt, f"GET {route.url} (bytes {position}-{end - 1})", error)
