"""Blob bytes in the configured storage (the `blobs` entry of STORAGES): `reads` streams and checks them,
`writes` receives them against a stated digest."""

from django.core.files.storage import Storage, storages

CHUNK_SIZE = 1024 * 1024


def blob_storage() -> Storage:
    return storages["blobs"]


def is_s3(storage: Storage) -> bool:
    from storages.backends.s3 import S3Storage

    return isinstance(storage, S3Storage)


def s3_object_key(storage: Storage, name: str) -> str:
    """The S3 key of a storage name, with the storage's `location` prefix, as django-storages forms it.

    boto3 calls that django-storages does not wrap (multipart uploads, ranged reads) need the real key.
    """
    from storages.utils import clean_name

    return storage._normalize_name(clean_name(name))
