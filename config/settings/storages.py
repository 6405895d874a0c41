"""Where blob bytes live: a folder under var/ by default, any S3-compatible bucket when one is named."""

from config.settings.env import VAR_DIR, env_str

S3_BUCKET = env_str("PROVENANT_S3_BUCKET")

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
        },
    }
else:
    BLOB_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # Overwriting a content-addressed key with the same bytes is harmless, and the rename is atomic.
        "OPTIONS": {"location": str(VAR_DIR / "blobs"), "allow_overwrite": True},
    }

STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media")},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "blobs": BLOB_STORAGE,
}

# Uploads are hashed into a temporary file beside the blob folder so the final move is a rename.
FILE_UPLOAD_TEMP_DIR = str(VAR_DIR / "tmp")
