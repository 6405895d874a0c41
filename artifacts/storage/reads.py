"""Reading stored blob bytes in bounded chunks."""

import hashlib
from collections.abc import Iterator

from artifacts.storage import CHUNK_SIZE, blob_storage


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
