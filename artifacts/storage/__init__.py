"""Blob bytes in the configured storage (the `blobs` entry of STORAGES): `reads` streams and checks them,
`writes` receives them against a stated digest."""

from django.core.files.storage import Storage, storages

CHUNK_SIZE = 1024 * 1024


def blob_storage() -> Storage:
    return storages["blobs"]
