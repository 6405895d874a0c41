"""Where blob bytes live: a folder under var/ by default, any S3-compatible bucket when one is named."""

import re

from django.core.exceptions import ImproperlyConfigured

from config.settings.env import VAR_DIR, env_bool, env_int, env_str
from core.s3 import ARCHIVE_STORAGE_CLASSES

S3_BUCKET = env_str("PROVENANT_S3_BUCKET")

#: The server-side encryptions S3 applies with keys it or KMS holds; SSE-C (keys the client sends with every request)
#: is not offered: the app would have to keep the key, and hand it with every presigned URL.
S3_SERVER_SIDE_ENCRYPTIONS = {"AES256": "SSE-S3, keys managed by S3", "aws:kms": "SSE-KMS"}


def s3_encryption_parameters(sse: str, kms_key_id: str, *, bucket: str) -> dict[str, str]:
    """The parameters every write to the bucket carries (django-storages' `object_parameters`, which
    core.s3.encryption_parameters hands to the boto3 calls the app makes itself), from PROVENANT_S3_SSE and
    PROVENANT_S3_SSE_KMS_KEY_ID. Refuses a combination that would not encrypt as the operator meant."""
    if sse and sse not in S3_SERVER_SIDE_ENCRYPTIONS:
        choices = ", ".join(f"{name} ({meaning})" for name, meaning in S3_SERVER_SIDE_ENCRYPTIONS.items())
        raise ImproperlyConfigured(
            f"PROVENANT_S3_SSE={sse!r} is not a server-side encryption: use {choices}, or leave it empty for the "
            "bucket's default encryption."
        )
    if sse and not bucket:
        raise ImproperlyConfigured(
            f"PROVENANT_S3_SSE={sse!r} encrypts objects in an S3 bucket, and PROVENANT_S3_BUCKET is empty: blobs go to "
            "a local folder, encrypted at rest only by its disk's own encryption. Name a bucket, or unset "
            "PROVENANT_S3_SSE."
        )
    if kms_key_id and sse != "aws:kms":
        raise ImproperlyConfigured(
            f"PROVENANT_S3_SSE_KMS_KEY_ID is set but PROVENANT_S3_SSE is {sse!r}: a KMS key encrypts only with "
            "PROVENANT_S3_SSE=aws:kms. Set that, or unset the key id."
        )
    if re.search(r"\s", kms_key_id):
        raise ImproperlyConfigured(
            f"PROVENANT_S3_SSE_KMS_KEY_ID={kms_key_id!r} is not a KMS key: give its id, ARN or alias "
            "(alias/provenant-blobs), without spaces."
        )
    parameters = {"ServerSideEncryption": sse} if sse else {}
    if kms_key_id:
        parameters["SSEKMSKeyId"] = kms_key_id
    return parameters


S3_ENCRYPTION = s3_encryption_parameters(
    env_str("PROVENANT_S3_SSE"), env_str("PROVENANT_S3_SSE_KMS_KEY_ID"), bucket=S3_BUCKET
)

if S3_BUCKET:
    # Credentials come from boto3's standard chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or
    # an instance role), so no secret needs to pass through Django settings.
    BLOB_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_str("PROVENANT_S3_ENDPOINT_URL") or None,
            "region_name": env_str("PROVENANT_S3_REGION") or None,
            "location": env_str("PROVENANT_S3_PREFIX"),
            "default_acl": None,
            "querystring_auth": True,
            # Keys are content digests: writing the same key twice writes the same bytes.
            "file_overwrite": True,
            "addressing_style": env_str("PROVENANT_S3_ADDRESSING_STYLE") or None,
            # Applied by django-storages to what it saves, and by the app to every object it writes with boto3.
            "object_parameters": S3_ENCRYPTION,
            # SigV4 for every request and presigned URL (downloads' redirects, direct uploads' part URLs): boto3
            # presigns with SigV2 unless told otherwise, which S3 refuses for SSE-KMS objects and for every bucket
            # made since AWS retired SigV2 (2020).
            "signature_version": "s3v4",
        },
    }
else:
    BLOB_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # Overwriting a content-addressed key with the same bytes is harmless, and the rename is atomic.
        "OPTIONS": {"location": str(VAR_DIR / "blobs"), "allow_overwrite": True},
    }

# Downloads from S3 may answer with a redirect to a presigned GET URL, so the bytes flow from the bucket to the
# client without passing through a web worker. Off by default: clients must be able to reach the bucket, and a
# presigned URL works for whoever holds it until it expires, so it is kept short. `?redirect=true` asks for one
# per request; with a local folder there is nothing to redirect to and the bytes are streamed.
PROVENANT_S3_REDIRECT_DOWNLOADS = env_bool("PROVENANT_S3_REDIRECT_DOWNLOADS", default=False)
PROVENANT_S3_PRESIGN_SECONDS = env_int("PROVENANT_S3_PRESIGN_SECONDS", 300)

# Downloads from the local folder behind nginx: the app still checks access, logs the read and decides the answer,
# then hands nginx an X-Accel-Redirect to this internal location, and nginx sends the file itself (sendfile: not a
# byte passes through Python). Empty: off, the app streams the bytes. Ignored with S3, which nginx cannot read. Set
# it only behind a proxy configured as deploy/nginx/provenant.conf is: without one, clients get empty bodies.
PROVENANT_ACCEL_REDIRECT = env_str("PROVENANT_ACCEL_REDIRECT")
if PROVENANT_ACCEL_REDIRECT and not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+/", PROVENANT_ACCEL_REDIRECT):
    raise ImproperlyConfigured(
        f"PROVENANT_ACCEL_REDIRECT={PROVENANT_ACCEL_REDIRECT!r} is not the path of an nginx location: it starts and "
        "ends with '/', with letters, digits, '.', '_', '~' or '-' between (e.g. /_provenant_blobs/)."
    )

# Archival (artifacts/services/tiers.py) moves a blob's bytes to this colder S3 storage class. GLACIER_IR keeps them
# readable at once (a download costs more, and the object is billed at least 90 days); GLACIER or DEEP_ARCHIVE cost
# less to keep, but their downloads answer 409 until someone asks for a restore and S3 has made one (hours). With a
# local folder archival does nothing, whatever this says.
PROVENANT_ARCHIVE_STORAGE_CLASS = env_str("PROVENANT_ARCHIVE_STORAGE_CLASS") or "GLACIER_IR"
if PROVENANT_ARCHIVE_STORAGE_CLASS not in ARCHIVE_STORAGE_CLASSES:
    raise ImproperlyConfigured(
        f"PROVENANT_ARCHIVE_STORAGE_CLASS={PROVENANT_ARCHIVE_STORAGE_CLASS!r} is not an S3 storage class archival can "
        f"move bytes to: use one of {', '.join(ARCHIVE_STORAGE_CLASSES)} (spelled as S3 does, in capitals), or leave "
        "it empty for GLACIER_IR."
    )

STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media")},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "blobs": BLOB_STORAGE,
}

# Uploads: bytes are cut into parts of this size for S3 (at least 5 MiB), with this many parts in flight
# per upload; memory per upload is bounded by about concurrency times the part size.
PROVENANT_UPLOAD_PART_SIZE = max(env_int("PROVENANT_UPLOAD_PART_SIZE", 8 * 1024 * 1024), 5 * 1024 * 1024)
PROVENANT_S3_UPLOAD_CONCURRENCY = max(env_int("PROVENANT_S3_UPLOAD_CONCURRENCY", 4), 1)
# Resumable upload sessions end after this long without a chunk, and their partial data is removed.
PROVENANT_UPLOAD_SESSION_TTL_SECONDS = env_int("PROVENANT_UPLOAD_SESSION_TTL_SECONDS", 24 * 3600)
# A request appending a chunk holds the session this long at most; keep it above the longest time a chunk may
# take to arrive (and the web server's request timeout), so a stalled writer never races its successor.
PROVENANT_UPLOAD_LEASE_SECONDS = env_int("PROVENANT_UPLOAD_LEASE_SECONDS", 900)
