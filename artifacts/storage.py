"""Blob bytes in and out of the configured storage (the `blobs` entry of STORAGES).

Bytes are hashed while they are received, in bounded chunks, into a temporary file beside the blob
folder; only bytes whose digest matched reach their content-addressed key.
"""

import hashlib
from collections.abc import Iterator
from typing import BinaryIO

from django.core.files.storage import Storage, storages
from django.core.files.uploadedfile import TemporaryUploadedFile

CHUNK_SIZE = 1024 * 1024


def blob_storage() -> Storage:
    return storages["blobs"]


class ReceivedBytes:
    """Bytes read from a client into a temporary file, with their SHA-256 and size."""

    def __init__(self, stream: BinaryIO, *, declared_length: int | None = None) -> None:
        self.file = TemporaryUploadedFile("upload", "application/octet-stream", 0, None)
        digest = hashlib.sha256()
        size = 0
        try:
            while chunk := stream.read(CHUNK_SIZE):
                digest.update(chunk)
                self.file.write(chunk)
                size += len(chunk)
            self.file.flush()
        except BaseException:
            self.close()
            raise
        self.size = size
        self.file.size = size
        self.digest = digest.hexdigest()
        self.truncated = declared_length is not None and size < declared_length

    def close(self) -> None:
        """Remove the temporary file, unless storage already moved it into place."""
        self.file.close()

    def __enter__(self) -> "ReceivedBytes":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def write_blob(key: str, received: ReceivedBytes) -> None:
    received.file.seek(0)
    saved_as = blob_storage().save(key, received.file)
    if saved_as != key:
        # Content-addressed keys must never be renamed; a storage that did so is misconfigured.
        blob_storage().delete(saved_as)
        raise RuntimeError(f"Blob storage saved {key} as {saved_as}; enable overwriting for the blob storage.")


def iter_blob(key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    with blob_storage().open(key, "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def hash_stored_blob(key: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in iter_blob(key):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size
