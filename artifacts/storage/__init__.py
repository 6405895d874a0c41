"""Blob bytes in the configured storage (the `blobs` entry of STORAGES): `reads` streams and checks them,
`writes` receives them against a stated digest."""

import sys

from django.core.files.storage import Storage, storages

CHUNK_SIZE = 1024 * 1024


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
