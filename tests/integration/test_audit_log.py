"""The audit log on the real database, bucket and worker: concurrent appends never fork or skip the sequence,
and signed tree heads reach the bucket, under Object Lock where the bucket has it."""

import base64
import contextlib
import copy
import json
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from core.audit import tree as audit_tree
from core.audit.recorder import AuditObject, audit_record, entry_bytes, tree_head_sign
from core.crypto.merkle import leaf_hash, tree_head_signature_ok, tree_root
from core.models import AuditEntry, SignedTreeHead
from governance.audit.tasks import sign_audit_tree_head
from tests.artifacts.factories import ProjectFactory, UserFactory, grant
from tests.governance.factories import token_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WRITERS = 16
APPENDS_PER_WRITER = 25


class Abandon(Exception):
    """Raised inside a transaction to roll it back after it recorded."""


def _in_threads(count: int, work) -> list[Exception]:
    """Run work(i) in `count` threads, each on its own connection, released together; return their errors."""
    barrier = threading.Barrier(count)
    errors: list[Exception] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except Exception as error:  # collected and reported by the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors


def test_concurrent_appends_never_fork_or_skip_the_sequence():
    """Sixteen writers append at once, each in its own transactions, and every third transaction rolls back
    after recording: the committed entries are numbered 0..n-1 exactly, and the tree over them is the signed one."""

    def write(writer: int) -> None:
        for number in range(APPENDS_PER_WRITER):
            with contextlib.suppress(Abandon), transaction.atomic():
                audit_record(
                    "project.updated",
                    obj=AuditObject(type="writer", id=str(writer), label=f"writer {writer}"),
                    changes={"number": number},
                )
                if number % 3 == 2:
                    raise Abandon

    assert _in_threads(WRITERS, write) == []

    kept = sum(1 for number in range(APPENDS_PER_WRITER) if number % 3 != 2) * WRITERS
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(kept))
    assert audit_tree.log_size() == kept
    per_writer = {}
    for entry in AuditEntry.objects.order_by("seq"):
        per_writer.setdefault(entry.object_id, []).append(json.loads(entry.changes)["number"])
        assert bytes(entry.leaf_hash) == leaf_hash(entry_bytes(entry))
    # Each writer's own entries are in its own order, and none of its rolled-back ones is there.
    assert all(numbers == [n for n in range(APPENDS_PER_WRITER) if n % 3 != 2] for numbers in per_writer.values())
    head = tree_head_sign()
    leaves = [bytes(h) for h in AuditEntry.objects.order_by("seq").values_list("leaf_hash", flat=True)]
    assert head.tree_size == kept
    assert head.root_hash == tree_root(leaves).hex()


def test_concurrent_api_writes_each_leave_exactly_one_entry():
    """Parallel requests through the whole stack: every dataset that was created has its one entry, in a
    gapless sequence, attributed to the token that made it."""
    project = ProjectFactory()
    users = [grant("contributor", on=project).user for _ in range(8)]
    tokens = [token_for(user) for user in users]
    before = audit_tree.log_size()

    def create(index: int) -> None:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[index]}")
        response = api.post("/api/v1/datasets/", {"project": project.slug, "name": f"set-{index}"}, format="json")
        assert response.status_code == 201, response.content

    assert _in_threads(len(users), create) == []

    created = AuditEntry.objects.filter(seq__gte=before, action="dataset.created")
    assert sorted(created.values_list("object_label", flat=True)) == sorted(
        f"{project.slug}/set-{index}" for index in range(8)
    )
    assert sorted(created.values_list("actor_label", flat=True)) == sorted(user.username for user in users)
    assert all(token_id is not None for token_id in created.values_list("token_id", flat=True))
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True)) == list(range(audit_tree.log_size()))


@pytest.fixture
def locked_bucket(s3_bucket):
    """A second bucket on the same S3 server, created with Object Lock, and the blob storage pointed at it."""
    name = "provenant-it-locked"
    with contextlib.suppress(s3_bucket.client.exceptions.BucketAlreadyOwnedByYou):
        s3_bucket.client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    storages = copy.deepcopy(settings.STORAGES)
    storages["blobs"]["OPTIONS"]["bucket_name"] = name
    with override_settings(STORAGES=storages):
        yield name


def test_tree_heads_in_an_object_lock_bucket_are_retained_and_cannot_be_deleted(locked_bucket, s3_bucket):
    audit_record("project.updated", obj=AuditObject(type="writer", id="1", label="writer 1"))

    head = tree_head_sign()

    key = head.storage_name
    stored = s3_bucket.client.head_object(Bucket=locked_bucket, Key=key)
    assert stored["ObjectLockMode"] == settings.PROVENANT_AUDIT_OBJECT_LOCK_MODE
    assert stored["ObjectLockRetainUntilDate"] > timezone.now() + timedelta(days=365)
    assert head.locked_until is not None
    copy_document = json.loads(s3_bucket.client.get_object(Bucket=locked_bucket, Key=key)["Body"].read())
    assert copy_document["root_hash"] == head.root_hash
    assert tree_head_signature_ok(copy_document, base64.b64decode(head.public_key))
    with pytest.raises(s3_bucket.client.exceptions.ClientError, match="AccessDenied"):
        s3_bucket.client.delete_object(Bucket=locked_bucket, Key=key, VersionId=stored["VersionId"])


def test_tree_heads_in_a_bucket_without_object_lock_are_written_plainly(s3_bucket):
    audit_record("project.updated", obj=AuditObject(type="writer", id="1", label="writer 1"))

    head = tree_head_sign()

    assert head.locked_until is None
    prefix = settings.STORAGES["blobs"]["OPTIONS"].get("location") or ""
    key = f"{prefix.strip('/')}/{head.storage_name}".lstrip("/")
    assert json.loads(s3_bucket.read(key))["tree_size"] == head.tree_size


def test_the_worker_signs_a_tree_head_when_the_log_has_grown(celery_worker):
    user = UserFactory()
    audit_record("project.updated", obj=AuditObject(type="writer", id="1", label="writer 1"), actor=user)
    size = audit_tree.log_size()

    sign_audit_tree_head.delay()

    celery_worker.wait_until(lambda: SignedTreeHead.objects.filter(tree_size=size).exists(), "a signed tree head")
    head = SignedTreeHead.objects.get(tree_size=size)
    assert (
        head.root_hash
        == tree_root([bytes(h) for h in AuditEntry.objects.order_by("seq").values_list("leaf_hash", flat=True)]).hex()
    )
