"""The collector's batch (`blobs_collect_batch`) against moto's S3 server: one DeleteObjects call removes the
objects, and a key S3 answers it could not delete is not marked collected (see conftest.py for the services).

S3 refuses a key in a DeleteObjects answer (AccessDenied under a bucket policy, an object lock) in ways moto does
not enforce; the refusal is made with botocore's own event hooks on the app's client: the key is taken out of the
request, so the object really stays, and the answer names it under Errors as S3 would."""

from collections.abc import Iterator
from typing import Any

import pytest

from artifacts.models import Blob
from artifacts.services.lifecycle import blobs_collect_batch, version_delete
from artifacts.storage import blob_storage, s3_object_key
from core.models import AuditEntry
from tests.artifacts.factories import ArtifactVersionFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def delete_objects_refusing() -> Iterator[tuple[set[str], list[int]]]:
    """Keys S3 is to refuse in DeleteObjects (fill the set with storage names), and the key count of each call."""
    storage = blob_storage()
    client = storage.connection.meta.client
    refused: set[str] = set()
    calls: list[int] = []

    def asked(params: dict[str, Any], **kwargs: Any) -> None:
        keys = {s3_object_key(storage, name) for name in refused}
        calls.append(len(params["Delete"]["Objects"]))
        params["Delete"]["Objects"] = [entry for entry in params["Delete"]["Objects"] if entry["Key"] not in keys]

    def answered(parsed: dict[str, Any], **kwargs: Any) -> None:
        errors = parsed.setdefault("Errors", [])
        for name in refused:
            errors.append({"Key": s3_object_key(storage, name), "Code": "AccessDenied", "Message": "Access Denied"})

    client.meta.events.register("provide-client-params.s3.DeleteObjects", asked, unique_id="test-gc-batch-asked")
    client.meta.events.register("after-call.s3.DeleteObjects", answered, unique_id="test-gc-batch-answered")
    try:
        yield refused, calls
    finally:
        client.meta.events.unregister("provide-client-params.s3.DeleteObjects", unique_id="test-gc-batch-asked")
        client.meta.events.unregister("after-call.s3.DeleteObjects", unique_id="test-gc-batch-answered")


def test_a_key_s3_refuses_to_delete_stays_uncollected_and_the_others_go_in_one_call(s3_bucket, delete_objects_refusing):
    refused, calls = delete_objects_refusing
    versions = [ArtifactVersionFactory() for _ in range(3)]
    for version in versions:
        version_delete(version=version, deleted_by=None, reason="Old.")
    kept = versions[0].blob
    refused.add(kept.storage_key)
    storage = blob_storage()

    collected = blobs_collect_batch(blob_ids=[version.blob_id for version in versions])

    assert sorted(collected) == sorted(version.blob_id for version in versions[1:])
    assert calls == [3]
    keys = s3_bucket.object_keys()
    assert s3_object_key(storage, kept.storage_key) in keys
    assert not any(s3_object_key(storage, version.blob.storage_key) in keys for version in versions[1:])
    assert not Blob.objects.get(pk=kept.pk).is_collected
    audited = set(AuditEntry.objects.filter(action="blob.collected").values_list("object_id", flat=True))
    assert audited == {str(version.blob_id) for version in versions[1:]}

    refused.clear()  # S3 deletes it now: the next batch (or the sweep) collects it
    assert blobs_collect_batch(blob_ids=[kept.pk]) == [kept.pk]
    assert s3_object_key(storage, kept.storage_key) not in s3_bucket.object_keys()
