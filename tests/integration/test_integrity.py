"""Integrity against real services: the scrub finds bytes corrupted behind the application's back in the bucket,
and a worker killed (SIGKILL) in the middle of a verification leaves the task to run again, not a blob stuck
pending. Real PostgreSQL, Redis, Celery worker processes and moto's S3 server over HTTP (see conftest.py).
"""

import hashlib
import io
import json
import os
import signal
import time

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from artifacts.models import Blob
from artifacts.tasks import verify_blob
from tests.factories import sha256
from tests.integration.conftest import CeleryWorker
from tests.integration.test_artifact_store import content_address, created, model_artifact, project_with_blobs

pytestmark = pytest.mark.integration

# The worker killed below and the one that takes over consume this queue alone; the session worker never sees it.
KILL_TEST_QUEUE = "integrity-kill-test"
# Short, so the test need not wait the production default of six hours before Redis hands the killed worker's
# message to another worker. Set only in those two workers' environment (PROVENANT_CELERY_VISIBILITY_TIMEOUT),
# because a worker applies its own timeout when it looks for abandoned messages.
KILL_TEST_VISIBILITY_TIMEOUT = 5
# Large enough that reading it back from moto and hashing it takes a few seconds, so the kill lands mid-read.
SLOW_BLOB_SIZE = 192 * 1024 * 1024
# Where kombu's Redis transport keeps delivered, unacknowledged messages: a hash by delivery tag, and a sorted
# set of the same tags scored by delivery time.
UNACKED, UNACKED_INDEX = "unacked", "unacked_index"


@pytest.mark.django_db(transaction=True)
def test_scrub_finds_bytes_corrupted_in_the_bucket_and_quarantines_them(api, s3_bucket, wait_for_blob_state):
    damaged, intact = os.urandom(4096), os.urandom(4096)
    project = project_with_blobs(api, damaged, intact)
    version = created(
        api, "/api/v1/artifact-versions/", {"artifact": model_artifact(api, project)["id"], "digest": sha256(damaged)}
    )
    first_proof = {
        digest: wait_for_blob_state(digest, Blob.State.VERIFIED) for digest in map(sha256, (damaged, intact))
    }

    # Bit rot, a bad disk or a careless hand on the bucket: nothing in the application sees it happen.
    s3_bucket.write(content_address(sha256(damaged)), b"bit rot" + damaged[7:])
    out = io.StringIO()
    call_command("verify_blobs", "--scrub", stdout=out)

    assert out.getvalue().startswith("Queued 2 blobs for verification"), out.getvalue()
    corrupt = wait_for_blob_state(sha256(damaged), Blob.State.CORRUPT)
    assert corrupt.verified_at > first_proof[sha256(damaged)].verified_at
    quarantined = api.get(version["download_url"])
    assert quarantined.status_code == 409, quarantined.content
    assert quarantined.json()["code"] == "blob_corrupt"
    assert api.get(f"/api/v1/artifact-versions/{version['id']}/").json()["blob_state"] == "corrupt"
    # The intact blob was re-proved by the same scrub, and stays verified.
    deadline = time.monotonic() + 30
    while Blob.objects.get(digest=sha256(intact)[7:]).verified_at == first_proof[sha256(intact)].verified_at:
        assert time.monotonic() < deadline, "the scrub's verification of the intact blob never ran"
        time.sleep(0.1)
    assert Blob.objects.get(digest=sha256(intact)[7:]).state == Blob.State.VERIFIED


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_verification_leaves_the_task_to_run_again(
    s3_bucket, start_celery_worker, wait_for_blob_state
):
    data = os.urandom(1024 * 1024) * (SLOW_BLOB_SIZE // (1024 * 1024))
    digest = hashlib.sha256(data).hexdigest()
    s3_bucket.write(content_address(digest), data)
    # The row is made directly rather than by an upload, whose own verification would go to the session worker:
    # here only the workers of this test may touch the blob.
    blob = Blob.objects.create(digest=digest, size=len(data))
    worker_env = {"PROVENANT_CELERY_VISIBILITY_TIMEOUT": str(KILL_TEST_VISIBILITY_TIMEOUT)}
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    doomed = start_celery_worker("Celery worker to be killed", queue=KILL_TEST_QUEUE, env=worker_env)
    requested_at = timezone.now()
    task = verify_blob.apply_async((blob.pk,), {"requested_at": requested_at.isoformat()}, queue=KILL_TEST_QUEUE)
    # With the solo pool and a prefetch of one, the worker takes a message only to run it at once.
    delivered_at = wait_for_delivery(broker, task.id, doomed)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.process.wait(timeout=10)

    blob.refresh_from_db()
    assert blob.state == Blob.State.PENDING, "the verification finished before the kill; make SLOW_BLOB_SIZE larger"
    assert unacked_delivery(broker, task.id) == delivered_at, "the killed worker's message should await redelivery"

    # Redis gives the message to another worker once the visibility timeout has passed since its delivery, when
    # a worker sweeps for abandoned messages: at its start, then about every 100 s. So the rescuer starts after
    # the timeout, and its first sweep finds the message.
    time.sleep(max(0.0, delivered_at + KILL_TEST_VISIBILITY_TIMEOUT + 0.5 - time.time()))
    rescuer = start_celery_worker("Celery worker taking over", queue=KILL_TEST_QUEUE, env=worker_env)

    verified = wait_for_blob_state(blob.prefixed_digest, Blob.State.VERIFIED, worker=rescuer)
    assert verified.verified_at >= requested_at
    assert unacked_delivery(broker, task.id) is None
    assert f"verify_blob[{task.id}] received" in rescuer.log_path.read_text()


def unacked_delivery(broker: redis.Redis, task_id: str) -> float | None:
    """When the message of `task_id` was delivered to a worker that has not acknowledged it, if it is waiting so."""
    for tag, payload in broker.hgetall(UNACKED).items():
        message, _exchange, _routing_key = json.loads(payload)
        if message["headers"].get("id") == task_id:
            return broker.zscore(UNACKED_INDEX, tag)
    return None


def wait_for_delivery(broker: redis.Redis, task_id: str, worker: CeleryWorker, *, timeout: float = 30) -> float:
    """Wait until `worker` has taken the message of `task_id`; return when it was delivered."""
    deadline = time.monotonic() + timeout
    while (delivered_at := unacked_delivery(broker, task_id)) is None:
        worker.assert_running()
        if time.monotonic() > deadline:
            pytest.fail(f"No worker took task {task_id} within {timeout:.0f} s. Its log ends:\n{worker.log_tail()}")
        time.sleep(0.02)
    return delivered_at
