"""Reading stored blob bytes in bounded chunks: the whole blob or any byte range, without reading the bytes
before the range; presigned URLs that let a client read them straight from S3, and internal redirects that let
nginx send them from the local folder."""

import hashlib
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError
from django.core.files.storage import Storage

from artifacts.storage import CHUNK_SIZE, blob_storage, is_s3, s3_object_key
from artifacts.storage.tiers import NotReadableNow, is_not_readable_now

#: Reading from storage can fail for a while and then work again: a network error, S3 throttling or a 5xx, a stream
#: cut short. The tasks that read bytes (verification, scanning, signature checks) retry on these. Missing bytes are
#: not among them: whoever reads decides what absence means (blob_verify records corruption).
TRANSIENT_STORAGE_ERRORS = (OSError, BotoCoreError, ClientError)


class BlobChunks:
    """An open read of stored bytes: iterate it for chunks; close it to release the file or the connection.

    The file or S3 request is opened when the read is made, not at the first chunk, so a missing blob fails
    before a response has sent its headers. StreamingHttpResponse closes what it streams when the response
    ends, also when the client goes away half way; other readers use `with`.
    """

    def __init__(self, chunks: Iterable[bytes], release: Callable[[], None]) -> None:
        self._chunks = iter(chunks)
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except StopIteration:
            self.close()
            raise

    def close(self) -> None:
        self._release()

    def __enter__(self) -> "BlobChunks":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def iter_blob(key: str, start: int = 0, end: int | None = None, chunk_size: int = CHUNK_SIZE) -> BlobChunks:
    """The bytes at `key` from offset `start` up to, not including, offset `end` (None: to the end), as in
    `data[start:end]`, at most `chunk_size` bytes per chunk.

    Only the requested bytes are read: a local file is opened and seeked, and S3 is asked for that range
    alone. Raises FileNotFoundError when nothing is stored at `key`, NotReadableNow when the object is archived
    in a class that needs a restore first and none can be read now.
    """
    if end is not None and end <= start:
        return BlobChunks((), lambda: None)
    storage = blob_storage()
    if is_s3(storage):
        return _iter_s3_object(storage, key, start, end, chunk_size)
    return _iter_file(storage, key, start, end, chunk_size)


def _iter_file(storage: Storage, key: str, start: int, end: int | None, chunk_size: int) -> BlobChunks:
    handle = storage.open(key, "rb")
    try:
        handle.seek(start)
    except BaseException:
        handle.close()
        raise

    def chunks() -> Iterator[bytes]:
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            chunk = handle.read(chunk_size if remaining is None else min(chunk_size, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk

    return BlobChunks(chunks(), handle.close)


def _iter_s3_object(storage: Storage, key: str, start: int, end: int | None, chunk_size: int) -> BlobChunks:
    # Not storage.open(): django-storages' S3File downloads the whole object into a SpooledTemporaryFile
    # that, with its default max_memory_size of 0, never rolls over to disk, so a 10 GB blob would sit in
    # memory. One GET, streamed from the socket, with a Range header for anything but the whole object.
    params = {"Bucket": storage.bucket_name, "Key": s3_object_key(storage, key)}
    if start or end is not None:
        # HTTP ranges name their last byte; `end` is exclusive.
        params["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
    try:
        body = storage.connection.meta.client.get_object(**params)["Body"]
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            raise FileNotFoundError(f"No object at {params['Key']} in bucket {params['Bucket']}.") from error
        if is_not_readable_now(error):
            raise NotReadableNow(f"The object at {params['Key']} is archived and not restored.") from error
        raise
    return BlobChunks(body.iter_chunks(chunk_size), body.close)


def presigned_url(
    key: str, *, expires_in: int, content_disposition: str, content_type: str, head: bool = False
) -> str | None:
    """A URL that reads the bytes at `key` straight from the bucket for `expires_in` seconds, answered with
    the given Content-Disposition and Content-Type; None when the storage cannot sign one (a local folder).

    The signature covers the HTTP method: `head=True` signs the URL for HEAD, which a GET URL refuses.
    Whoever holds the URL can read the bytes until it expires: hand it only to a caller already authorized.
    """
    storage = blob_storage()
    if not is_s3(storage):
        return None
    return storage.connection.meta.client.generate_presigned_url(
        "head_object" if head else "get_object",
        Params={
            "Bucket": storage.bucket_name,
            "Key": s3_object_key(storage, key),
            "ResponseContentDisposition": content_disposition,
            "ResponseContentType": content_type,
        },
        ExpiresIn=expires_in,
    )


def accel_redirect_uri(key: str, *, prefix: str) -> str | None:
    """The URI under nginx's internal location `prefix` that serves the bytes at `key` from the local blob folder
    (an `X-Accel-Redirect` value); None when they are in S3, which nginx cannot read from disk.

    Raises FileNotFoundError when nothing is stored at `key`, as iter_blob does: a missing file fails in the app,
    the same way whether the app or nginx would have sent the bytes, rather than as nginx's own 404 page.
    """
    storage = blob_storage()
    if is_s3(storage):
        return None
    if not storage.exists(key):
        raise FileNotFoundError(f"No file at {key} in {storage.location}.")
    return prefix + quote(key)


def hash_stored_blob(key: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with iter_blob(key) as chunks:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
