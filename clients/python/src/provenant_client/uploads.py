"""Storing a file's bytes in a project, by the cheapest way the server offers, resumable by a later process.

1. A file under `upload_session_threshold` is hashed first (`transfers.file_digest`); a `HEAD` of the blob's URL
   asks whether the project holds those bytes already (then nothing is sent), else it goes in one streaming `PUT`.
2. A larger one is read once, not twice: it is hashed in a thread while its bytes are sent, through an upload
   session started without a digest (`PUT ?digest=` names it at the end). Hashing first, then sending, read the file
   twice and the two steps added up: 0.65 s of the 3.5-4 s a 1 GiB push took on loopback (benchmarks/README.md,
   "The MLflow plugin"). Dedupe is kept two ways:
   - as soon as the hash is done (a fraction of the sending time), a `HEAD` asks whether the project holds the
     bytes; if it does, the session is cancelled and the rest is not sent;
   - a file this cache saw pushed (same path, size, modification and change times: `Cache.file_digest_hint`) is
     hashed first, as before, and nothing is sent if the project holds its bytes.
   A server that needs the digest at the start (blobs in S3, or a server older than digest-less sessions) is
   answered as before: hash first, then a session with the digest.
3. A session's URL is saved in the cache's `uploads/` folder so a later
   process (after a dropped connection, a crash, a SIGKILL) asks the server where it stands and sends only the rest:
   - *direct*, when the server keeps blobs in S3: the session lists a presigned URL per part; the parts go straight
     to the bucket, `upload_parallelism` at a time, each streamed from the file and retried on its own; then the
     session is sealed and the server's worker checks the digest. The session tells which parts the bucket holds
     (`received`), so a resumed upload sends only the others. A server keeping blobs in a folder refuses direct
     sessions (`direct_needs_s3`): the client then uses API chunks and does not ask again.
   - *chunks* through the API otherwise: `PATCH` per chunk with `Upload-Offset`, `PUT ?digest=` with the last.
     Each chunk costs the server a fixed ~20 ms (it fsyncs the chunk and saves the hash state before it answers,
     so the offset it reports survives a crash), which at 16 MiB chunks was half the time of a local upload
     (benchmarks/session_chunks.py). So chunks grow from `chunk_size` to what the measured speed sends in about
     CHUNK_SECONDS, capped at `max_chunk_size`: few chunks on a fast link, and on a slow one a killed process
     loses at most a few seconds of sending.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from provenant_client import transfers
from provenant_client.errors import (
    Conflict,
    DigestMismatch,
    InvalidInput,
    NotFound,
    ProvenantError,
    ServerError,
    error_from_response,
)
from provenant_client.transfers import RETRY_STATUSES, Progress

if TYPE_CHECKING:
    from provenant_client.client import Client

__all__ = ["UploadResult", "Uploader"]

MiB = 1024 * 1024
#: An API chunk is sized to take about this long at the speed the previous one went.
CHUNK_SECONDS = 2.0
#: Statuses of the bucket that say "not now": a part is sent again after a pause.
PART_RETRY_STATUSES = RETRY_STATUSES | {408}


class _Digest:
    """The digest and size of a file, known already or being computed in a thread while the file is sent."""

    def __init__(self, source: Path | None = None, *, known: tuple[str, int] | None = None) -> None:
        self._value = known
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if known is None:
            self._thread = threading.Thread(target=self._hash, args=(source,), name="hash", daemon=True)
            self._thread.start()

    def _hash(self, source: Path) -> None:
        try:
            self._value = transfers.file_digest(source)
        except BaseException as error:  # re-raised by result(), in the uploading thread
            self._error = error

    def done(self) -> bool:
        return self._thread is None or not self._thread.is_alive()

    def result(self) -> tuple[str, int]:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


@dataclass(frozen=True)
class UploadResult:
    """What storing a file's bytes in a project took: how many of them had to be sent (0 when the project already
    held them; less than `size` when an interrupted upload session was resumed, from `resumed_from`)."""

    digest: str
    size: int
    bytes_sent: int
    already_held: bool
    resumed_from: int | None = None


def reported(blocks: Iterator[bytes], start: int, total: int | None, progress: Progress | None) -> Iterator[bytes]:
    """`blocks` as they are, telling `progress` the position reached (counted from `start`) after each one."""
    done = start
    for block in blocks:
        yield block
        done += len(block)
        if progress is not None:
            progress(done, total)


class _SharedProgress:
    """Bytes sent by parts in several threads, added up and told to `progress` one call at a time."""

    def __init__(self, progress: Progress | None, start: int, total: int) -> None:
        self.progress = progress
        self.done = start
        self.total = total
        self.lock = threading.Lock()

    def add(self, count: int) -> None:
        with self.lock:
            self.done += count
            if self.progress is not None:
                self.progress(self.done, self.total)


class _Stopped(Exception):
    """Another part failed, or the caller was interrupted: this part stops between two blocks."""


class Uploader:
    """The upload machinery of one `Client`: its options, its requests and cache, and what it learned of the server
    (whether it takes direct uploads)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        #: None until the server says whether it takes direct (S3) uploads; False once it refused one.
        self.direct: bool | None = client.direct_uploads
        self._bucket_http: httpx.Client | None = None
        self._bucket_lock = threading.Lock()  # the part threads ask for the pool at once: one is made

    def close(self) -> None:
        with self._bucket_lock:
            bucket_http, self._bucket_http = self._bucket_http, None
        if bucket_http is not None:
            bucket_http.close()

    @property
    def bucket_http(self) -> httpx.Client:
        """The connection pool for presigned URLs: never the API client's, whose Authorization header must not
        reach the bucket (S3 would refuse a request signed twice, and the token is not the bucket's business)."""
        with self._bucket_lock:
            if self._bucket_http is None:
                self._bucket_http = httpx.Client(
                    timeout=self.client.http.timeout,
                    headers={"User-Agent": self.client.http.headers["User-Agent"]},
                    limits=httpx.Limits(max_connections=max(1, self.client.upload_parallelism)),
                )
            return self._bucket_http

    # The decision -------------------------------------------------------------------------------------------------

    def upload_file(self, source: Path, *, project: str, progress: Progress | None) -> UploadResult:
        """Store the file's bytes in the project unless it holds them, reading the file once where the server allows
        (see the module's notes); the result names the digest."""
        before = source.stat()
        size = before.st_size
        state_path = self.client.cache.file_upload_state_path(self.client.server, project, source)
        # A session of this file saved by an earlier process resumes whatever its size (unless the file changed
        # since: forget_stale_uploads drops its state then).
        self.client.cache.forget_stale_uploads(keep=state_path.with_suffix(".none"))
        saved = self.client.cache.load_json(state_path)
        session = self._saved_session(saved) if saved else None
        resuming = session is not None
        if session is None:
            state_path.unlink(missing_ok=True)
            if size < self.client.upload_session_threshold or self.direct:
                digest, size = transfers.file_digest(source)
                return self.upload(source, project=project, digest=digest, size=size, progress=progress)
            hinted = self.client.cache.file_digest_hint(source, before)
            if hinted is not None and self.client.blob_exists(project, hinted):
                digest, size = transfers.file_digest(source)  # the hint only chose the path: the bytes are checked
                if digest == hinted:
                    return UploadResult(digest=digest, size=size, bytes_sent=0, already_held=True)
                return self.upload(source, project=project, digest=digest, size=size, progress=progress)
        digest = _Digest(source)  # hashing starts now, beside the requests that follow
        if session is None:
            session = self._start_session_without_digest(project, size)
            if session is None:  # the server needs the digest first
                known, size = digest.result()
                return self.upload(source, project=project, digest=known, size=size, progress=progress)
            self.client.cache.save_json(
                state_path,
                {
                    "server": self.client.server,
                    "project": project,
                    "digest": None,
                    "size": size,
                    "session": session["url"],
                    "mode": session.get("mode", "chunks"),
                    "path": str(source.resolve()),
                },
            )
        result = self._continue(session, source, digest=digest, size=size, state_path=state_path,
                                progress=progress, resuming=resuming, project=project)  # fmt: skip
        if result.size != size or source.stat().st_mtime_ns != before.st_mtime_ns:
            raise ProvenantError(
                f"{source} changed while it was uploaded ({size} bytes at the start, {result.size} hashed); "
                "nothing was published: push it again once it is written.",
                code="file_changed",
            )
        self.client.cache.remember_file_digest(source, before, result.digest)
        return result

    def _start_session_without_digest(self, project: str, size: int) -> dict[str, Any] | None:
        """A session whose digest is named at the end; None when the server needs it at the start (blobs in S3, or
        a server that predates such sessions), so the caller hashes first."""
        url = f"/projects/{quote(project, safe='')}/uploads/"
        for direct in (True, False) if self.direct is None else (False,):
            try:
                response = self.client.request("POST", url, json={"size": size, **({"direct": True} if direct else {})})
            except InvalidInput as refusal:
                if refusal.code == "direct_needs_s3":
                    self.direct = False  # a folder-backed server: API chunks from now on, without asking again
                    continue
                if refusal.code == "digest_required" or refusal.field == "digest":
                    return None
                raise
            if direct:
                self.direct = True
            return response.json()
        return None

    def upload(self, source: Path, *, project: str, digest: str, size: int, progress: Progress | None) -> UploadResult:
        state_path = self.client.cache.upload_state_path(self.client.server, project, digest)
        self.client.cache.forget_stale_uploads(keep=state_path)
        saved = self.client.cache.load_json(state_path)
        session = self._saved_session(saved) if saved else None
        if session is not None:
            return self._continue(session, source, digest=_Digest(known=(digest, size)), size=size,
                                  state_path=state_path, progress=progress, resuming=True)  # fmt: skip
        if saved is not None:
            state_path.unlink(missing_ok=True)  # gone from the server: start afresh
        if self.client.blob_exists(project, digest):
            return UploadResult(digest=digest, size=size, bytes_sent=0, already_held=True)
        if size < self.client.upload_session_threshold:
            self.client.request(
                "PUT",
                self.client._blob_url(project, digest),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                body=lambda: reported(transfers.file_blocks(source), 0, size, progress),
            )
            return UploadResult(digest=digest, size=size, bytes_sent=size, already_held=False)
        session = self._start_session(project, digest, size)
        if session is None:  # the project already held the bytes
            return UploadResult(digest=digest, size=size, bytes_sent=0, already_held=True)
        self.client.cache.save_json(
            state_path,
            {
                "server": self.client.server,
                "project": project,
                "digest": digest,
                "size": size,
                "session": session["url"],
                "mode": session.get("mode", "chunks"),
                "path": str(source.resolve()),
            },
        )
        return self._continue(session, source, digest=_Digest(known=(digest, size)), size=size,
                              state_path=state_path, progress=progress, resuming=False)  # fmt: skip

    def _start_session(self, project: str, digest: str, size: int) -> dict[str, Any] | None:
        """A new session (direct when the server may take one), or None when the project holds the bytes."""
        url = f"/projects/{quote(project, safe='')}/uploads/"
        body: dict[str, Any] = {"digest": digest, "size": size}
        if self.direct is not False:
            try:
                response = self.client.request("POST", url, json={**body, "direct": True})
            except InvalidInput as refusal:
                if refusal.code != "direct_needs_s3":
                    raise
                self.direct = False  # a folder-backed server: API chunks from now on, without asking again
            else:
                self.direct = True
                return response.json() if response.status_code == 201 else None
        response = self.client.request("POST", url, json=body)
        return response.json() if response.status_code == 201 else None

    def _saved_session(self, saved: dict[str, Any]) -> dict[str, Any] | None:
        """The saved session as the server sees it now, or None when it is gone, failed, or not this server's."""
        if saved.get("server") != self.client.server or not isinstance(saved.get("session"), str):
            return None
        try:
            session = self.client.request("GET", saved["session"]).json()
        except (NotFound, Conflict):
            return None
        return session if session.get("state") in {"receiving", "verifying", "completed"} else None

    def _continue(
        self,
        session: dict[str, Any],
        source: Path,
        *,
        digest: _Digest,
        size: int,
        state_path: Path,
        progress: Progress | None,
        resuming: bool,
        project: str | None = None,
    ) -> UploadResult:
        """Send what the session lacks. `project`, for a session started before the digest was known: the project
        is asked whether it holds the bytes as soon as the digest is (and the upload cancelled if it does)."""
        if session["state"] == "completed":
            state_path.unlink(missing_ok=True)
            known, size = digest.result()
            return UploadResult(digest=known, size=size, bytes_sent=0, already_held=True)
        if session.get("mode") == "direct":
            result = self._send_parts(
                session, source, digest=digest.result()[0], size=size, progress=progress, resuming=resuming
            )
        else:
            result = self._send_chunks(session, source, digest=digest, size=size, progress=progress,
                                       resuming=resuming, dedupe_in=project)  # fmt: skip
        state_path.unlink(missing_ok=True)
        return result

    # Chunks through the API ---------------------------------------------------------------------------------------

    def _send_chunks(
        self, session: dict[str, Any], source: Path, *, digest: _Digest, size: int, progress: Progress | None,
        resuming: bool, dedupe_in: str | None = None,
    ) -> UploadResult:  # fmt: skip
        """PATCH chunks from where the session stands, growing them to CHUNK_SECONDS of sending, and finish with
        the last one in the PUT (which waits for the digest, if it is still being computed).

        `dedupe_in`: the project to ask, between two chunks once the digest is known, whether it holds the bytes;
        if it does, the session is cancelled and nothing more is sent."""
        floor = max(self.client.chunk_size, int(session["min_chunk_size"]))
        ceiling = max(floor, self.client.max_chunk_size)
        chunk = floor
        offset = int(session["offset"])
        resumed_from = offset if resuming else None
        sent = 0
        while True:
            length = min(chunk, size - offset)
            last = offset + length >= size
            if dedupe_in is not None and (last or digest.done()):
                held = self.client.blob_exists(dedupe_in, digest.result()[0])
                dedupe_in = None
                if held:
                    with suppress(NotFound, Conflict):  # gone or finished meanwhile: nothing left to cancel
                        self.client.request("DELETE", session["url"])
                    known, hashed_size = digest.result()
                    return UploadResult(digest=known, size=hashed_size, bytes_sent=sent, already_held=True)
            start = offset
            began = time.monotonic()
            response = self.client.request(
                "PUT" if last else "PATCH",
                session["url"],
                params={"digest": digest.result()[0]} if last else None,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(length),
                    "Upload-Offset": str(offset),
                },
                body=lambda start=start, length=length: reported(
                    transfers.file_blocks(source, start, length), start, size, progress
                ),
                allow=(416,),
            )
            if response.status_code == 416:
                # An earlier attempt of this chunk was written but its answer lost: ask where the session stands.
                offset = int(self.client.request("GET", session["url"]).json()["offset"])
                if offset == start:  # the server refuses the very position it names: do not loop on it
                    raise error_from_response(response)
                continue
            sent += length
            if last:
                break
            offset = int(response.json()["offset"])
            speed = length / max(time.monotonic() - began, 1e-3)
            chunk = min(ceiling, max(floor, int(speed * CHUNK_SECONDS) // MiB * MiB))
        known, hashed_size = digest.result()
        return UploadResult(digest=known, size=hashed_size, bytes_sent=sent, already_held=False,
                            resumed_from=resumed_from)  # fmt: skip

    # Direct parts to the bucket -----------------------------------------------------------------------------------

    def _send_parts(
        self, session: dict[str, Any], source: Path, *, digest: str, size: int, progress: Progress | None,
        resuming: bool,
    ) -> UploadResult:  # fmt: skip
        """PUT the parts the bucket lacks to their presigned URLs, several at once; seal the session; wait for the
        server's worker to check the digest."""
        sent = 0
        resumed_from = None
        if session["state"] == "receiving":
            parts = session["parts"] or []
            held = sum(int(part["length"]) for part in parts if part.get("received"))
            resumed_from = held if resuming else None
            missing = [part for part in parts if not part.get("received")]
            sent += self._put_parts(session["url"], missing, source, progress=_SharedProgress(progress, held, size))
            response = self.client.request("PUT", session["url"], params={"digest": digest},
                                           headers={"Content-Length": "0"}, allow=(400,))  # fmt: skip
            if response.status_code == 400:
                error = error_from_response(response)
                if error.code != "incomplete":
                    raise error
                # The bucket lost or never listed a part it took: send what it still lacks, then seal again.
                session = self.client.request("GET", session["url"]).json()
                missing = [part for part in session["parts"] or [] if not part.get("received")]
                sent += self._put_parts(session["url"], missing, source, progress=_SharedProgress(progress, 0, size))
                self.client.request("PUT", session["url"], params={"digest": digest}, headers={"Content-Length": "0"})
        self._wait_until_verified(session["url"])
        return UploadResult(digest=digest, size=size, bytes_sent=sent, already_held=False, resumed_from=resumed_from)

    def _put_parts(self, session_url: str, parts: list[dict[str, Any]], source: Path, *,
                   progress: _SharedProgress) -> int:  # fmt: skip
        """Send `parts`, `upload_parallelism` at a time; the first failure stops the others between two blocks."""
        if not parts:
            return 0
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=max(1, self.client.upload_parallelism), thread_name_prefix="part") as pool:
            futures = [pool.submit(self._put_part, session_url, part, source, progress, stop) for part in parts]
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                for future in done:
                    error = future.exception()
                    if error is not None:
                        raise error
            except BaseException:  # a part failed, or Ctrl-C: the session stays resumable
                stop.set()
                for future in futures:
                    future.cancel()
                raise
        return sum(int(part["length"]) for part in parts)

    def _put_part(
        self, session_url: str, part: dict[str, Any], source: Path, progress: _SharedProgress, stop: threading.Event
    ) -> None:
        """One part, streamed from the file in blocks; retried with backoff when the bucket or the network may
        recover, and with a fresh URL (asked of the session) when the bucket says its signature expired."""
        url, offset, length = part["url"], int(part["offset"]), int(part["length"])
        attempt = 0
        refreshed = False
        while True:
            if stop.is_set():
                raise _Stopped()
            sent = 0

            def body() -> Iterator[bytes]:
                nonlocal sent
                for block in transfers.file_blocks(source, offset, length):
                    if stop.is_set():
                        raise _Stopped()
                    yield block
                    sent += len(block)
                    progress.add(len(block))

            try:
                response = self.bucket_http.put(url, content=body(), headers={"Content-Length": str(length)})
            except httpx.TransportError as error:
                progress.add(-sent)
                if attempt >= self.client.retries:
                    raise ServerError(
                        f"Part {part['part_number']} could not be sent to the bucket after {attempt + 1} attempts "
                        f"({error!r}); run the upload again to send the parts still missing.",
                        code="unreachable",
                    ) from error
            else:
                if response.status_code < 300:
                    return
                progress.add(-sent)
                if response.status_code == 403 and not refreshed:
                    refreshed = True  # the URL may have expired (a resumed upload): ask the session for a new one
                    url = self._fresh_part_url(session_url, int(part["part_number"]))
                    continue
                if response.status_code not in PART_RETRY_STATUSES or attempt >= self.client.retries:
                    raise ServerError(
                        f"The bucket refused part {part['part_number']} with {response.status_code}: "
                        f"{response.text[:300]}",
                        status=response.status_code,
                        code="part_refused",
                    )
            attempt += 1
            self.client._pause(attempt)

    def _fresh_part_url(self, session_url: str, number: int) -> str:
        for part in self.client.request("GET", session_url).json().get("parts") or []:
            if int(part["part_number"]) == number:
                return str(part["url"])
        raise ServerError(f"The upload session no longer lists part {number}.", code="part_unknown")

    def _wait_until_verified(self, session_url: str) -> None:
        """Poll the sealed session until the worker kept the bytes (completed) or refused them (failed)."""
        deadline = time.monotonic() + self.client.verification_timeout
        pause = 0.1
        while True:
            session = self.client.request("GET", session_url).json()
            if session["state"] == "completed":
                return
            if session["state"] == "failed":
                failure = session.get("failure") or "the server's check of the upload failed"
                kind = DigestMismatch if "hash to" in failure else ServerError
                code = "digest_mismatch" if kind is DigestMismatch else "upload_failed"
                raise kind(failure, code=code, body=session)
            if time.monotonic() > deadline:
                raise ProvenantError(
                    f"The server has not finished checking the upload after {self.client.verification_timeout:.0f} s "
                    "(its worker may be busy or down); push again later to pick it up where it stands.",
                    code="verification_pending",
                )
            time.sleep(pause)
            pause = min(2.0, pause * 1.5)
