"""The encryption parameters every boto3 write to the blob bucket carries come from the storage's own options."""

from django.core.files.storage import FileSystemStorage
from storages.backends.s3 import S3Storage

from core.s3 import encryption_parameters


def test_the_encryption_of_an_s3_storage_is_what_its_object_parameters_say_and_nothing_else():
    storage = S3Storage(
        bucket_name="provenant-blobs",
        object_parameters={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/blobs", "CacheControl": "no-store"},
    )

    assert encryption_parameters(storage) == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/blobs"}


def test_a_storage_without_encryption_asks_for_none():
    assert encryption_parameters(S3Storage(bucket_name="provenant-blobs")) == {}
    assert encryption_parameters(FileSystemStorage(location="/nonexistent")) == {}
