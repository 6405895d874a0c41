"""Blob bytes in the configured storage (the `blobs` entry of STORAGES): `reads` streams and checks them,
`writes` receives them against a stated digest."""

import sys

from django.core.files.storage import Storage, storages

from core.memory import MMAP_THRESHOLD

# The blocks bytes are received, written, hashed, streamed and read back in: below the web worker's fixed mmap
# threshold (core/memory.py), so each block's buffer comes from the heap and is reused, instead of fresh pages
# mapped and faulted in for every block. In 1 MiB blocks a 1 GiB PUT cost the worker 2.2 s of CPU (1.5 s in these)
# and a download from granian alone ran at 0.9-1.3 GB/s (2.6-3.2 GB/s in these): benchmarks/README.md.
CHUNK_SIZE = MMAP_THRESHOLD // 2


def blob_storage() -> Storage:
    return storages["blobs"]


def is_s3(storage: Storage) -> bool:
    """Whether `storage` is django-storages' S3 backend, without importing it: the import loads boto3 (~11 MiB of a
    web worker's memory, benchmarks/README.md "Where the memory goes"), and a storage can only be an S3Storage once
    its module is loaded."""
    s3 = sys.modules.get("storages.backends.s3")
    return s3 is not None and isinstance(storage, s3.S3Storage)


def s3_object_key(storage: Storage, name: str) -> str:
    """The S3 key of a storage name, with the storage's `location` prefix, as django-storages forms it.

    boto3 calls that django-storages does not wrap (multipart uploads, ranged reads) need the real key.
    """
    from storages.utils import clean_name

    return storage._normalize_name(clean_name(name))
