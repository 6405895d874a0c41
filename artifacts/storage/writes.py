"""Receiving blob bytes: hashed while they arrive, in bounded chunks; only bytes whose digest matched
reach their content-addressed key."""

import hashlib
from typing import BinaryIO

from django.core.files.uploadedfile import TemporaryUploadedFile

from artifacts.storage import CHUNK_SIZE, blob_storage


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
