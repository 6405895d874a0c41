"""S3 storage classes of stored bytes: moving an object to a colder class, asking S3 for a restore of one that
cannot be read at once, and reading where an object stands. A local folder has no classes: callers check `is_s3`
first (artifacts/services/tiers.py)."""

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from botocore.exceptions import ClientError

from artifacts.storage import blob_storage, s3_object_key
from core.s3 import encryption_parameters, reads_at_once

# S3's answer to a GET of an object that needs a restore first, and to a restore asked while one runs.
NOT_READABLE_NOW = "InvalidObjectState"
RESTORE_ALREADY_IN_PROGRESS = "RestoreAlreadyInProgress"
# The Restore header of HeadObject: `ongoing-request="true"`, or `ongoing-request="false", expiry-date="<date>"`
# once the temporary copy is readable (until that date).
RESTORE_HEADER = re.compile(r'ongoing-request="(?P<ongoing>true|false)"(?:,\s*expiry-date="(?P<expiry>[^"]+)")?')
# The checksum S3 computes for the copy that changes an object's class, as it checks the CRC32 of every uploaded
# part (artifacts/storage/writes.py). Named, so a CopyObject never carries over the source's composite multipart
# checksum, which some S3 servers (moto) then serve as if it were the whole object's, failing every checked GET.
COPY_CHECKSUM = "CRC32"
# Standard retrieval: 3-5 hours from GLACIER, within 12 from DEEP_ARCHIVE. Expedited costs ten times more and
# DEEP_ARCHIVE refuses it; Bulk is cheaper but slower still.
RESTORE_TIER = "Standard"


class NotReadableNow(Exception):
    """The bytes are archived in a class that needs a restore first (GLACIER, DEEP_ARCHIVE), and no restored copy
    of them can be read now."""


@dataclass(frozen=True)
class ObjectTier:
    """Where one stored object stands: its class, and for a class that needs a restore, whether one is running
    and until when a restored copy can be read."""

    storage_class: str
    restore_ongoing: bool = False
    restored_until: datetime | None = None

    @property
    def readable(self) -> bool:
        """Whether a GET answers with the bytes now."""
        return reads_at_once(self.storage_class) or (self.restored_until is not None and not self.restore_ongoing)


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def is_not_readable_now(error: ClientError) -> bool:
    """Whether S3 refused a read because the object is archived and not restored (403 InvalidObjectState)."""
    return _error_code(error) == NOT_READABLE_NOW


def object_tier(key: str) -> ObjectTier:
    """Where the object at `key` stands, as S3 answers HeadObject (which works in every class, archived or not).

    Raises FileNotFoundError when nothing is stored at `key`.
    """
    storage = blob_storage()
    try:
        head = storage.connection.meta.client.head_object(Bucket=storage.bucket_name, Key=s3_object_key(storage, key))
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            raise FileNotFoundError(f"No object at {key} in bucket {storage.bucket_name}.") from error
        raise
    # S3 leaves the header out for STANDARD.
    storage_class = head.get("StorageClass") or "STANDARD"
    restore = RESTORE_HEADER.search(head.get("Restore") or "")
    if restore is None:
        return ObjectTier(storage_class)
    expiry = restore.group("expiry")
    return ObjectTier(
        storage_class,
        restore_ongoing=restore.group("ongoing") == "true",
        restored_until=parsedate_to_datetime(expiry) if expiry else None,
    )


def object_change_class(key: str, storage_class: str) -> None:
    """Move the object at `key` to `storage_class` by copying it onto itself, keeping its metadata and content type.

    boto3's managed copy: one CopyObject up to its threshold, a multipart copy (UploadPartCopy, from the bucket to
    itself, no byte through this process) above it, as S3 requires past 5 GB. The copy is a new object: it carries
    the encryption every write carries (core.s3), or it would fall back to the bucket's default, and a checksum
    S3 computes over the new object (COPY_CHECKSUM), which GETs with checksum validation check. A restored copy
    of a GLACIER object can be copied out; an unrestored one cannot (S3 answers InvalidObjectState).

    Raises FileNotFoundError when nothing is stored at `key`.
    """
    storage = blob_storage()
    name = s3_object_key(storage, key)
    try:
        storage.connection.meta.client.copy(
            {"Bucket": storage.bucket_name, "Key": name},
            storage.bucket_name,
            name,
            ExtraArgs={
                "StorageClass": storage_class,
                "MetadataDirective": "COPY",
                "ChecksumAlgorithm": COPY_CHECKSUM,
                **encryption_parameters(storage),
            },
        )
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404 or _error_code(error) in (
            "NoSuchKey",
            "404",
        ):
            raise FileNotFoundError(f"No object at {key} in bucket {storage.bucket_name}.") from error
        raise


def object_restore(key: str, *, days: int) -> bool:
    """Ask S3 to make a readable copy of the archived object at `key` for `days` days; False when a restore of it
    is already running (asking again is harmless and free, and changes nothing).

    Raises FileNotFoundError when nothing is stored at `key`; InvalidObjectState (a ClientError) when the object is
    in a class that needs no restore.
    """
    storage = blob_storage()
    try:
        storage.connection.meta.client.restore_object(
            Bucket=storage.bucket_name,
            Key=s3_object_key(storage, key),
            RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": RESTORE_TIER}},
        )
    except ClientError as error:
        if _error_code(error) == RESTORE_ALREADY_IN_PROGRESS:
            return False
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            raise FileNotFoundError(f"No object at {key} in bucket {storage.bucket_name}.") from error
        raise
    return True
