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
