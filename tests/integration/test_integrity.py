"""Integrity against real services: the scrub finds bytes corrupted behind the application's back in the bucket,
and a worker killed (SIGKILL) in the middle of a verification leaves the task to run again, not a blob stuck
pending. Real PostgreSQL, Redis, Celery worker processes and moto's S3 server over HTTP (see conftest.py).
"""

import contextlib
import hashlib
import io
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from artifacts.models import Blob
from artifacts.tasks import verify_blob
from tests.artifacts.factories import sha256
from tests.integration.test_artifact_store import content_address, created, model_artifact, project_with_blobs

pytestmark = pytest.mark.integration

# The workers these tests start and kill consume this queue alone; the session worker never sees it.
KILL_TEST_QUEUE = "integrity-kill-test"
# Short, so the test need not wait the production default of six hours before Redis hands the killed worker's
# message to another worker. Set only in the environment of that test's workers (PROVENANT_CELERY_VISIBILITY_TIMEOUT),
# because a worker applies its own timeout when it looks for abandoned messages. At its start such a worker also
# hands back any message the session worker has held for longer, to be run twice; verification is idempotent.
KILL_TEST_VISIBILITY_TIMEOUT = 5
# The killed worker reads the blob through a relay that stops after STALL_AFTER of its BLOB_SIZE bytes.
BLOB_SIZE = 8 * 1024 * 1024
STALL_AFTER = 1024 * 1024
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


@pytest.fixture
def unverified_blob(s3_bucket) -> Blob:
    """A pending blob whose bytes are in the bucket and whose verification nobody has queued.

    The row is made directly rather than by an upload, whose own verification would go to the session worker:
    only the workers a test starts may touch this blob.
    """
    data = os.urandom(BLOB_SIZE)
    digest = hashlib.sha256(data).hexdigest()
    s3_bucket.write(content_address(digest), data)
    return Blob.objects.create(digest=digest, size=len(data))


@pytest.fixture
def stalling_s3() -> Iterator["StallingProxy"]:
    endpoint = urlsplit(settings.STORAGES["blobs"]["OPTIONS"]["endpoint_url"])
    with StallingProxy((endpoint.hostname, endpoint.port), stall_after=STALL_AFTER) as proxy:
        yield proxy


@pytest.fixture
def broker() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


@pytest.mark.django_db(transaction=True)
def test_a_pool_process_killed_mid_verification_hands_the_task_back_and_it_runs_again(
    unverified_blob, stalling_s3, broker, start_celery_worker, wait_for_blob_state
):
    # Production's pool: the worker process hands each task to a child process, here the one that is killed.
    worker = start_celery_worker(
        "Celery worker (prefork)",
        queue=KILL_TEST_QUEUE,
        pool="prefork",
        env={"PROVENANT_S3_ENDPOINT_URL": stalling_s3.url},
    )
    task = verify_blob.apply_async((unverified_blob.pk,), queue=KILL_TEST_QUEUE)
    worker.wait_until(stalling_s3.stalled.is_set, "reading the blob", timeout=30)
    [pool_process] = worker.pool_processes()

    os.kill(pool_process, signal.SIGKILL)

    # reject_on_worker_lost: the worker hands the message back at once, and runs it again in a new child, which
    # gets all the bytes (the network stalls only once).
    verified = wait_for_blob_state(unverified_blob.prefixed_digest, Blob.State.VERIFIED, worker=worker)
    log = worker.log_path.read_text()
    assert "WorkerLostError" in log
    assert log.count(f"verify_blob[{task.id}] received") == 2
    assert verified.verified_at is not None
    assert unacked_delivery(broker, task.id) is None


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_verification_leaves_the_task_to_run_again(
    unverified_blob, stalling_s3, broker, start_celery_worker, wait_for_blob_state
):
    worker_env = {"PROVENANT_CELERY_VISIBILITY_TIMEOUT": str(KILL_TEST_VISIBILITY_TIMEOUT)}
    doomed = start_celery_worker(
        "Celery worker to be killed",
        queue=KILL_TEST_QUEUE,
        pool="prefork",
        own_process_group=True,
        env={**worker_env, "PROVENANT_S3_ENDPOINT_URL": stalling_s3.url},
    )
    requested_at = timezone.now()
    task = verify_blob.apply_async(
        (unverified_blob.pk,), {"requested_at": requested_at.isoformat()}, queue=KILL_TEST_QUEUE
    )
    doomed.wait_until(stalling_s3.stalled.is_set, "reading the blob", timeout=30)
    delivered_at = unacked_delivery(broker, task.id)

    # The worker and its pool at once, as when its container or machine is lost: nobody is left to hand the
    # message back, so only the broker can.
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.process.wait(timeout=10)

    assert delivered_at is not None, "the worker reading the blob should hold its message unacknowledged"
    unverified_blob.refresh_from_db()
    assert (unverified_blob.state, unverified_blob.verified_at) == (Blob.State.PENDING, None)
    assert unacked_delivery(broker, task.id) == delivered_at, "the killed worker's message should await redelivery"

    # Redis gives the message to another worker once the visibility timeout has passed since its delivery, when
    # a worker sweeps for abandoned messages: at its start, then about every 100 s. So the rescuer starts after
    # the timeout, and its first sweep finds the message. It reads from S3 directly.
    time.sleep(max(0.0, delivered_at + KILL_TEST_VISIBILITY_TIMEOUT + 0.5 - time.time()))
    rescuer = start_celery_worker("Celery worker taking over", queue=KILL_TEST_QUEUE, env=worker_env)

    verified = wait_for_blob_state(unverified_blob.prefixed_digest, Blob.State.VERIFIED, worker=rescuer)
    assert verified.verified_at >= requested_at
    assert unacked_delivery(broker, task.id) is None
    assert f"verify_blob[{task.id}] received" in rescuer.log_path.read_text()


class StallingProxy:
    """A TCP relay to the S3 server that stops once in the middle of a download: the first answer longer than
    `stall_after` bytes is held after them until the relay is closed; everything else passes. `stalled` is set
    when it holds one.

    A worker pointed at it is, once `stalled` is set, provably in the middle of reading a blob larger than
    `stall_after`, however fast the machine: killing it then needs no guess about how long hashing takes.
    """

    def __init__(self, upstream: tuple[str, int], *, stall_after: int) -> None:
        self.upstream = upstream
        self.stall_after = stall_after
        self.stalled = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self.upstream)
            except OSError:
                return
            self._sockets += [client, upstream]
            threading.Thread(target=self._relay, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._relay, args=(upstream, client, self.stall_after), daemon=True).start()

    def _relay(self, source: socket.socket, target: socket.socket, stall_after: int | None) -> None:
        relayed = 0
        try:
            while chunk := source.recv(64 * 1024):
                if stall_after is not None and not self.stalled.is_set() and relayed + len(chunk) > stall_after:
                    target.sendall(chunk[: stall_after - relayed])
                    self.stalled.set()
                    self._closed.wait()
                    return
                target.sendall(chunk)
                relayed += len(chunk)
        except OSError:
            return  # one side hung up: nothing more to relay
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        for sock in [self._listener, *self._sockets]:
            sock.close()

    def __enter__(self) -> "StallingProxy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def unacked_delivery(broker: redis.Redis, task_id: str) -> float | None:
    """When the message of `task_id` was delivered to a worker that has not acknowledged it, if it is waiting so."""
    for tag, payload in broker.hgetall(UNACKED).items():
        message, _exchange, _routing_key = json.loads(payload)
        if message["headers"].get("id") == task_id:
            return broker.zscore(UNACKED_INDEX, tag)
    return None
