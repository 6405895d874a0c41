"""Receiving blob bytes: hashed in the same pass as they are written, in bounded pieces, never buffered
whole in memory or on local disk. Only bytes whose digest matched reach their content-addressed key.

A *sink* takes bytes for one blob in one or more appends (the chunks of an upload session, or a single
request) and either completes them at the blob's key or aborts, leaving nothing:

- `FileSink` appends to a staging file inside the blob folder and renames it into place (atomic);
- `S3Sink` streams parts of an S3 multipart upload opened on the final key, several in flight at once;
  the object appears only when the upload is completed, after the digest matched;
- `DiscardSink` only hashes, for bytes the store already holds (the client still proves it has them).

A sink's progress is a small JSON-able `state`, so an upload can continue in another request or process;
the SHA-256 state travels with it (`sha256.new_sha256` serialises it; hashlib cannot).
"""

import contextlib
import ctypes
import hashlib
import os
import queue
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

from botocore.exceptions import ClientError
from django.conf import settings

from artifacts.storage import CHUNK_SIZE, blob_storage, is_s3, s3_object_key
from artifacts.storage.sha256 import Sha256State, new_sha256
from core.s3 import encryption_parameters

# S3 refuses parts smaller than this, except the last one of an upload.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000

State = dict[str, Any]


class TruncatedBody(Exception):
    """The client sent fewer bytes than it announced (or went away)."""

    def __init__(self, received: int, expected: int) -> None:
        super().__init__(f"received {received} of {expected} bytes")
        self.received = received
        self.expected = expected


class DigestMismatch(Exception):
    def __init__(self, actual: str, expected: str) -> None:
        super().__init__(f"bytes hash to sha256:{actual}, not sha256:{expected}")
        self.actual = actual
        self.expected = expected


def new_hasher(state: bytes | None = None) -> Sha256State:
    """A SHA-256 whose state can be saved between the chunks of an upload session (and that releases the GIL
    while it hashes, so a chunk's receiving, hashing and writing overlap: see `sha256`)."""
    return new_sha256(state)


class OneShotSha256:
    """hashlib's SHA-256, for a body received in one request: no state to save, and hashlib releases the GIL,
    so hashing runs beside the thread that receives."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()

    def update(self, data: bytes) -> None:
        self._sha256.update(data)

    def finalize(self) -> str:
        return self._sha256.hexdigest()


class _Stage:
    """One consumer of the blocks a request receives, in a thread of its own, at most `depth` blocks behind."""

    _DONE = object()

    def __init__(self, consume, depth: int) -> None:
        self.consume = consume
        self.blocks: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while (block := self.blocks.get()) is not self._DONE:
            if self.error is None:
                try:
                    self.consume(block)
                except BaseException as error:  # re-raised in the request's thread
                    self.error = error


def _load_sync_file_range():
    """Linux's sync_file_range(2), which Python's os module lacks; None elsewhere (writes are then only fsynced)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()
SYNC_FILE_RANGE_WRITE = 2
#: The writing thread asks the kernel to start writing every this many bytes to disk (see _WriteBehind).
WRITEBACK_BYTES = 16 * 1024 * 1024


class _WriteBehind:
    """Writes a chunk's blocks to its file and, every WRITEBACK_BYTES, starts the disk writing what is in the page
    cache (sync_file_range, which does not wait for it), in the writing thread while the request goes on receiving.

    The fsync that ends a chunk (its offset must survive a crash) then waits for the last few MiB instead of all of
    them: it took ~0.09 s for each 256 MiB chunk, during which the server neither received nor hashed.
    """

    def __init__(self, handle: BinaryIO, start: int) -> None:
        self.handle = handle
        self.position = self.started = start

    def __call__(self, block: bytes) -> None:
        self.handle.write(block)
        self.position += len(block)
        if _sync_file_range is not None and self.position - self.started >= WRITEBACK_BYTES:
            self.handle.flush()
            _sync_file_range(self.handle.fileno(), self.started, self.position - self.started, SYNC_FILE_RANGE_WRITE)
            self.started = self.position


class _BlockWriter:
    """Hashes and writes blocks, each in a thread of its own, while the request's thread goes on receiving:
    receiving, hashing and writing overlap (hashlib and file writes release the GIL). Measured in
    benchmarks/README.md against hashing in the receiving thread, and against one thread for both.

    Each stage is at most `depth` blocks behind, so memory stays bounded (a few MiB: the worker's peak RSS must stay
    under 150 MB); an error anywhere stops the upload.
    """

    def __init__(self, handle: BinaryIO, hasher, *, start: int, depth: int = 8) -> None:
        self.stages = [_Stage(hasher.update, depth), _Stage(_WriteBehind(handle, start), depth)]

    def put(self, block: bytes) -> None:
        for stage in self.stages:
            if stage.error is not None:
                raise stage.error
            stage.blocks.put(block)

    def __enter__(self) -> "_BlockWriter":
        for stage in self.stages:
            stage.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        for stage in self.stages:
            stage.blocks.put(_Stage._DONE)
        for stage in self.stages:
            stage.thread.join()
        errors = [stage.error for stage in self.stages if stage.error is not None]
        if errors and exc_info[0] is None:
            raise errors[0]


def read_blocks(
    stream: BinaryIO, length: int, hasher, *, already: int = 0, total: int | None = None
) -> Iterator[bytes]:
    """Exactly `length` bytes of `stream` in blocks of at most CHUNK_SIZE, each hashed as it is read.

    `already` and `total` place these bytes in a longer body, for the message when the body ends early.
    """
    total = already + length if total is None else total
    remaining = length
    while remaining:
        block = stream.read(min(CHUNK_SIZE, remaining))
        if not block:
            raise TruncatedBody(already + length - remaining, total)
        hasher.update(block)
        remaining -= len(block)
        yield block


def min_chunk_size(total_size: int | None) -> int:
    """How long every chunk of an upload but its last must be, whatever the storage: S3's minimum part, and
    for a large announced size enough that the whole file fits in S3's 10,000 parts. A chunk becomes at most
    one part per `part_size_for(total_size)` bytes (at least this much), so chunks of at least this length
    never need more than MAX_PARTS parts in all."""
    if total_size is None:
        return MIN_PART_SIZE
    return max(MIN_PART_SIZE, -(-total_size // (MAX_PARTS - 1)))


def part_size_for(total_size: int | None) -> int:
    """Large enough that the biggest expected blob fits in S3's 10,000 parts, never below the setting."""
    base = settings.PROVENANT_UPLOAD_PART_SIZE
    if total_size:
        base = max(base, -(-total_size // (MAX_PARTS - 1)))
    return base


class DiscardSink:
    """The store already holds these bytes: hash them to prove the client has them, write nothing."""

    name = "discard"

    def begin(self, key: str, total_size: int | None) -> State:
        return {"sink": self.name}

    def append(self, state: State, offset: int, stream: BinaryIO, length: int, hasher) -> State:
        deque(read_blocks(stream, length, hasher), maxlen=0)  # read and hash every block, keep none
        return state

    def complete(self, state: State, key: str) -> None:
        """Nothing to move: the bytes are already at `key`."""

    def abort(self, state: State) -> None:
        """Nothing was written."""


class FileSink:
    """Appends to `uploads/<id>` in the blob folder, then renames it to the blob's key."""

    name = "file"

    def __init__(self) -> None:
        self.storage = blob_storage()

    def begin(self, key: str, total_size: int | None) -> State:
        return {"sink": self.name, "staging": f"uploads/{uuid.uuid4().hex}"}

    def append(self, state: State, offset: int, stream: BinaryIO, length: int, hasher) -> State:
        path = self.storage.path(state["staging"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "r+b" if os.path.exists(path) else "wb") as handle:
            # Bytes past `offset` belong to a chunk that failed half-way; they are not part of the upload.
            handle.truncate(offset)
            handle.seek(offset)
            with _BlockWriter(handle, hasher, start=offset) as writer:
                remaining = length
                while remaining:
                    block = stream.read(min(CHUNK_SIZE, remaining))
                    if not block:
                        raise TruncatedBody(length - remaining, length)
                    writer.put(block)
                    remaining -= len(block)
            handle.flush()
            os.fsync(handle.fileno())
        return state

    def complete(self, state: State, key: str) -> None:
        """Move the bytes to the blob's key. Repeatable: a finishing request killed after the move and before its
        transaction committed leaves the bytes at `key` and the session unfinished, and the client's repeat of it
        comes here again (the key is the digest's, so whatever is there are the same bytes)."""
        final = self.storage.path(key)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        staging = self.storage.path(state["staging"])
        if not os.path.exists(staging) and os.path.exists(final):
            return
        os.replace(staging, final)
        directory = os.open(os.path.dirname(final), os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)

    def abort(self, state: State) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.storage.path(state["staging"]))


class S3Sink:
    """Parts of a multipart upload opened on the blob's final key; nothing is visible until `complete`.

    Each append cuts its bytes into parts of `part_size` (the last part of an append takes the remainder,
    up to twice that), uploads up to PROVENANT_S3_UPLOAD_CONCURRENCY of them at once, and holds at most
    that many parts in memory.
    """

    name = "s3"
    #: Every part carries its CRC32, which S3 checks on arrival and keeps (boto3's own uploads do the same).
    checksum_algorithm: str | None = "CRC32"

    def __init__(self) -> None:
        self.storage = blob_storage()
        self.client = self.storage.connection.meta.client

    def begin(self, key: str, total_size: int | None) -> State:
        object_key = s3_object_key(self.storage, key)
        extra = {"ChecksumAlgorithm": self.checksum_algorithm} if self.checksum_algorithm else {}
        # Encryption is chosen when the upload is created; S3 encrypts every part as it arrives, which is why a
        # direct upload's presigned part URLs need no encryption headers from the client.
        upload = self.client.create_multipart_upload(
            Bucket=self.storage.bucket_name,
            Key=object_key,
            ContentType="application/octet-stream",
            **extra,
            **encryption_parameters(self.storage),
        )
        return {
            "sink": self.name,
            "key": object_key,
            "upload_id": upload["UploadId"],
            "part_size": part_size_for(total_size),
            "parts": [],
            "next_part": 1,
        }

    @staticmethod
    def piece_sizes(length: int, part_size: int) -> list[int]:
        """Parts of `part_size` bytes; the last takes the remainder (up to twice that), so no part but the
        last of the whole upload falls under S3's minimum."""
        count = max(1, length // part_size)
        return [part_size] * (count - 1) + [length - part_size * (count - 1)]

    def _read_piece(self, stream: BinaryIO, size: int, hasher, *, already: int, total: int) -> bytearray:
        piece = bytearray(size)
        filled = 0
        for block in read_blocks(stream, size, hasher, already=already, total=total):
            piece[filled : filled + len(block)] = block
            filled += len(block)
        return piece

    def _upload_part(self, state: State, number: int, body: bytearray) -> dict:
        extra = {"ChecksumAlgorithm": self.checksum_algorithm} if self.checksum_algorithm else {}
        response = self.client.upload_part(
            Bucket=self.storage.bucket_name,
            Key=state["key"],
            UploadId=state["upload_id"],
            PartNumber=number,
            Body=body,
            **extra,
        )
        part = {"PartNumber": number, "ETag": response["ETag"]}
        if self.checksum_algorithm:
            part[f"Checksum{self.checksum_algorithm}"] = response[f"Checksum{self.checksum_algorithm}"]
        return part

    def append(self, state: State, offset: int, stream: BinaryIO, length: int, hasher) -> State:
        number = state["next_part"]
        in_flight: deque[Future] = deque()
        finished: list[dict] = []
        limit = settings.PROVENANT_S3_UPLOAD_CONCURRENCY
        done = 0
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="s3-part") as pool:
            try:
                for size in self.piece_sizes(length, state["part_size"]):
                    # Wait for a free slot before reading the next part, so at most `limit` parts are in memory.
                    if len(in_flight) >= limit:
                        finished.append(in_flight.popleft().result())
                    piece = self._read_piece(stream, size, hasher, already=done, total=length)
                    in_flight.append(pool.submit(self._upload_part, state, number, piece))
                    number += 1
                    done += size
                while in_flight:
                    finished.append(in_flight.popleft().result())
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise
        return {**state, "parts": state["parts"] + finished, "next_part": number}

    def complete(self, state: State, key: str) -> None:
        """Assemble the parts into the object. Repeatable, as FileSink.complete is: once S3 has assembled them the
        upload id is gone (NoSuchUpload), and the object it made is what a repeat would have made."""
        try:
            self.client.complete_multipart_upload(
                Bucket=self.storage.bucket_name,
                Key=state["key"],
                UploadId=state["upload_id"],
                MultipartUpload={"Parts": sorted(state["parts"], key=lambda part: part["PartNumber"])},
            )
        except self.client.exceptions.NoSuchUpload:
            if not self._exists(state["key"]):
                raise

    def _exists(self, object_key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.storage.bucket_name, Key=object_key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def abort(self, state: State) -> None:
        with contextlib.suppress(self.client.exceptions.NoSuchUpload):
            self.client.abort_multipart_upload(
                Bucket=self.storage.bucket_name, Key=state["key"], UploadId=state["upload_id"]
            )


def parts_past_the_limit(state: State, length: int) -> int:
    """How many parts past S3's MAX_PARTS appending `length` more bytes would take (0: within, or not S3).

    Only an upload of unannounced size can get there (with a size, `min_chunk_size` keeps it within).
    """
    if state.get("sink") != S3Sink.name:
        return 0
    last = state["next_part"] + len(S3Sink.piece_sizes(length, state["part_size"])) - 1
    return max(0, last - MAX_PARTS)


class S3DirectSink(S3Sink):
    """Parts go from the client straight to the bucket with presigned URLs, so the bytes never pass through
    the web servers. They land at a staging key; only after a worker hashed them does `complete` copy them
    (server-side) to their content address. Nothing at the staging key is ever served."""

    name = "s3-direct"
    # Clients send plain presigned PUTs, which carry no checksum; the worker's SHA-256 is the check.
    checksum_algorithm = None

    def begin(self, key: str, total_size: int | None) -> State:
        staging = f"uploads/{uuid.uuid4().hex}"
        return {**super().begin(staging, total_size), "sink": self.name, "staging": staging, "size": total_size}

    def part_plan(self, state: State) -> list[tuple[int, int, int]]:
        """(part number, offset, length) of every part the client must send."""
        size, part_size = state["size"], state["part_size"]
        return [(n + 1, offset, min(part_size, size - offset)) for n, offset in enumerate(range(0, size, part_size))]

    def part_urls(self, state: State, expires_in: int) -> list[dict]:
        return [
            {
                "part_number": number,
                "offset": offset,
                "length": length,
                "url": self.client.generate_presigned_url(
                    "upload_part",
                    Params={
                        "Bucket": self.storage.bucket_name,
                        "Key": state["key"],
                        "UploadId": state["upload_id"],
                        "PartNumber": number,
                    },
                    ExpiresIn=expires_in,
                ),
            }
            for number, offset, length in self.part_plan(state)
        ]

    def append(self, state: State, offset: int, stream: BinaryIO, length: int, hasher) -> State:
        raise TypeError("A direct upload's parts go to the bucket, not through the API.")

    def received_parts(self, state: State) -> list[dict]:
        parts = []
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=self.storage.bucket_name, Key=state["key"], UploadId=state["upload_id"]
        )
        for page in pages:
            parts += [
                {"PartNumber": part["PartNumber"], "ETag": part["ETag"], "Size": part["Size"]}
                for part in page.get("Parts", [])
            ]
        return parts

    def missing_parts(self, state: State, parts: list[dict]) -> list[int]:
        """Part numbers not received in full, as the plan says they must be."""
        received = {part["PartNumber"]: part["Size"] for part in parts}
        return [number for number, _, length in self.part_plan(state) if received.get(number) != length]

    def seal(self, state: State, parts: list[dict]) -> None:
        """Assemble the received parts into the staging object, which a worker then hashes."""
        super().complete({**state, "parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]}, "")

    def complete(self, state: State, key: str) -> None:
        # Repeatable: a worker killed after the staging object's delete has left the blob at its key.
        if not self._exists(state["key"]) and self._exists(s3_object_key(self.storage, key)):
            return
        # A copy is a new object: without its own encryption parameters it would get the bucket's default, not the
        # staging object's.
        self.client.copy(
            {"Bucket": self.storage.bucket_name, "Key": state["key"]},
            self.storage.bucket_name,
            s3_object_key(self.storage, key),
            ExtraArgs=encryption_parameters(self.storage),
        )
        self.client.delete_object(Bucket=self.storage.bucket_name, Key=state["key"])

    def abort(self, state: State) -> None:
        super().abort(state)
        self.client.delete_object(Bucket=self.storage.bucket_name, Key=state["key"])


SINKS = {sink.name: sink for sink in (DiscardSink, FileSink, S3Sink, S3DirectSink)}


def writing_sink() -> FileSink | S3Sink:
    """The sink that writes to the configured blob storage."""
    return S3Sink() if is_s3(blob_storage()) else FileSink()


def sink_for(state: State) -> DiscardSink | FileSink | S3Sink:
    return SINKS[state["sink"]]()


def receive(*, key: str, stream: BinaryIO, length: int, expected_digest: str, discard: bool) -> None:
    """Receive one whole blob in one pass: write (or only hash) it, then complete it at `key` only if its
    digest is `expected_digest`. On any failure nothing is left: no object, no staging file."""
    sink = DiscardSink() if discard else writing_sink()
    hasher = OneShotSha256()
    state = sink.begin(key, length)
    try:
        state = sink.append(state, 0, stream, length, hasher)
        actual = hasher.finalize()
        if actual != expected_digest:
            raise DigestMismatch(actual, expected_digest)
        sink.complete(state, key)
    except BaseException:
        sink.abort(state)
        raise
