"""What every object the app writes to the blob bucket with boto3 carries, beside what django-storages applies to
its own saves: one place, so no write path (multipart uploads, server-side copies, the audit log's tree-head
copies) can be the one that forgets encryption."""

from django.core.files.storage import Storage

#: The object parameters that say how S3 encrypts an object at rest (PROVENANT_S3_SSE, config/settings/storages.py).
ENCRYPTION_PARAMETERS = ("ServerSideEncryption", "SSEKMSKeyId")


def encryption_parameters(storage: Storage) -> dict[str, str]:
    """The server-side encryption parameters of `storage`'s writes (`object_parameters`, the setting's single
    source), to pass to PutObject, CreateMultipartUpload or a copy's ExtraArgs; empty for none (the bucket's
    default encryption) or a storage that is not S3. A multipart upload's parts need none: S3 encrypts them as the
    upload was created."""
    parameters = getattr(storage, "object_parameters", None) or {}
    return {name: parameters[name] for name in ENCRYPTION_PARAMETERS if name in parameters}


#: S3's storage classes an object the app writes may be in, each with whether a GET reads it at once. GLACIER
#: (Flexible Retrieval) and DEEP_ARCHIVE answer GET with 403 InvalidObjectState until a restore has made a temporary
#: copy readable (hours; AWS charges for it). EXPRESS_ONEZONE and OUTPOSTS are left out: they need a bucket of their
#: own kind, not a class an object moves to.
STORAGE_CLASSES: dict[str, bool] = {
    "STANDARD": True,
    "REDUCED_REDUNDANCY": True,
    "STANDARD_IA": True,
    "ONEZONE_IA": True,
    "INTELLIGENT_TIERING": True,
    "GLACIER_IR": True,
    "GLACIER": False,
    "DEEP_ARCHIVE": False,
}
#: The classes whose objects a GET reads only after a restore.
RESTORE_STORAGE_CLASSES = tuple(name for name, at_once in STORAGE_CLASSES.items() if not at_once)
#: The classes archival may move bytes to: colder (cheaper to keep, dearer to read) than STANDARD.
ARCHIVE_STORAGE_CLASSES = ("STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")


def reads_at_once(storage_class: str) -> bool:
    """Whether a GET of an object in `storage_class` answers with its bytes, without a restore first; empty (the
    bucket's default, STANDARD) and any class this table does not know are taken to read at once, as S3 says."""
    return STORAGE_CLASSES.get(storage_class or "STANDARD", True)
