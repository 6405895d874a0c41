"""Session services for the integration suite: an S3 server reached over HTTP and a real Celery worker.

PostgreSQL and Redis must already be running (`.ci/run` starts them); the Makefile's `test-integration`
target names them, the broker and the bucket in the environment. Nothing is mocked in-process: the test
process and the worker share the bucket, the broker and pytest-django's test database as production
processes share theirs.

Every process started here is stopped when the session ends, however it ends; on Linux it is also
killed by the kernel if pytest itself dies, so no worker lingers to hold the test database open or to
consume the next run's tasks.
"""

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import pytest
import redis
from django.conf import settings
from django.db import connection

from artifacts.models import Blob
from config.celery import app as celery_app

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
WORKER_TIMEOUT = 30.0
# Where kombu's Redis transport keeps delivered, unacknowledged messages (tasks are acknowledged when they end).
UNACKED = "unacked"
PR_SET_PDEATHSIG = 1
WORKER_ARGS = ["-A", "config", "worker", "--concurrency=1", "--loglevel=INFO"]
# A lone worker has no peers: skipping the cluster handshakes saves seconds at start-up.
WORKER_ALONE = ["--without-gossip", "--without-mingle", "--without-heartbeat"]


# Looked up here, once, so that the child between fork and exec only makes the call (see _die_with_pytest).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_pytest() -> None:
    """Runs in the child between fork and exec: ask the kernel to SIGTERM it when pytest exits.

    A fixture's teardown does not run when pytest is killed outright (a CI timeout, SIGKILL); without
    this a worker from that run would keep consuming tasks from the integration broker.
    """
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ChildProcess:
    """A service started for the session, with its output kept in a log file for failure messages."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        start_new_session: bool = False,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                # preexec_fn is unsafe in a multithreaded parent when it takes locks another thread may hold;
                # this one makes a single system call through a function resolved before the fork, so workers
                # a test starts after others ran threads are safe too.
                preexec_fn=_die_with_pytest,
                start_new_session=start_new_session,
            )
        except BaseException:
            self._log.close()
            raise

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:]) or "(empty)"

    def assert_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            pytest.fail(
                f"The {self.name} exited with status {code}. Its log ({self.log_path}) ends:\n{self.log_tail()}"
            )

    def wait_until(self, ready: Callable[[], bool], what: str, *, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            self.assert_running()
            if time.monotonic() > deadline:
                pytest.fail(
                    f"The {self.name} was not {what} after {timeout:.0f} s. "
                    f"Its log ({self.log_path}) ends:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM (a Celery worker finishes its current task and exits), then SIGKILL if that hangs."""
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            self._log.close()


@pytest.fixture(scope="session", autouse=True)
def integration_services_configured() -> None:
    """Refuse to run against SQLite, eager tasks or a local folder: those would pass without proving anything."""
    problems = []
    if connection.vendor != "postgresql":
        problems.append(f"the database is {connection.vendor}, not PostgreSQL (set DATABASE_URL)")
    if settings.CELERY_TASK_ALWAYS_EAGER:
        problems.append("tasks run eagerly in-process (set CELERY_BROKER_URL to a Redis database)")
    if settings.STORAGES["blobs"]["BACKEND"] != "storages.backends.s3.S3Storage":
        problems.append("blobs go to a local folder (set PROVENANT_S3_BUCKET and PROVENANT_S3_ENDPOINT_URL)")
    elif not settings.STORAGES["blobs"]["OPTIONS"]["endpoint_url"]:
        problems.append("no S3 endpoint is named (set PROVENANT_S3_ENDPOINT_URL)")
    if problems:
        pytest.exit(
            "The integration suite needs its services: "
            + "; ".join(problems)
            + ". Run it with `make test-integration`.",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class S3Bucket:
    """The integration bucket, read and written with its own boto3 client over HTTP, so tests check what
    is really stored rather than what the app's storage layer believes."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def object_keys(self) -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data)


@pytest.fixture(scope="session", autouse=True)
def s3_bucket(integration_services_configured: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Bucket]:
    """moto's S3 server on the configured endpoint (reused if something already listens there), with the
    bucket created before any test runs."""
    options = settings.STORAGES["blobs"]["OPTIONS"]
    endpoint = urlsplit(options["endpoint_url"])
    host, port = endpoint.hostname or "127.0.0.1", endpoint.port or 80
    server = None
    if not _listening(host, port):
        server = ChildProcess(
            "S3 server (moto)",
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
            log_path=tmp_path_factory.mktemp("moto") / "server.log",
        )
    try:
        if server is not None:
            server.wait_until(lambda: _listening(host, port), f"listening on {host}:{port}")
        client = boto3.client("s3", endpoint_url=options["endpoint_url"], region_name=options["region_name"])
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=options["bucket_name"])
        yield S3Bucket(client, options["bucket_name"])
    finally:
        if server is not None:
            server.stop()


def _test_database_url() -> str:
    """DATABASE_URL with pytest-django's test database in place of the configured one (call after setup)."""
    configured = urlsplit(os.environ["DATABASE_URL"])
    return configured._replace(path="/" + quote(connection.settings_dict["NAME"], safe="")).geturl()


class CeleryWorker(ChildProcess):
    """A `celery worker` process on the test database consuming one queue, known by a hostname of its own.

    `env` adds to or overrides the environment every worker gets (the test process's, with the test database).
    The solo pool runs tasks in the worker process itself; `prefork`, production's default, in a child process.
    With `own_process_group` the worker and its pool are a process group of their own, which a test may kill
    at once as a lost container or machine would be.
    """

    def __init__(
        self,
        name: str,
        *,
        queue: str,
        log_path: Path,
        env: dict[str, str] | None = None,
        pool: str = "solo",
        own_process_group: bool = False,
    ) -> None:
        self.hostname = f"provenant-it-{uuid.uuid4().hex[:8]}@localhost"
        self.queue = queue
        argv = [*WORKER_ARGS, f"--pool={pool}", "-Q", queue, *WORKER_ALONE, f"--hostname={self.hostname}"]
        super().__init__(
            name,
            [sys.executable, "-m", "celery", *argv],
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DATABASE_URL": _test_database_url(),
                "PROVENANT_VAR_DIR": str(settings.VAR_DIR),
                **(env or {}),
            },
            log_path=log_path,
            start_new_session=own_process_group,
        )

    def wait_until_ready(self) -> None:
        self.wait_until(
            lambda: bool(celery_app.control.ping(destination=[self.hostname], timeout=0.5)),
            "answering a ping",
            timeout=60,
        )

    def idle(self) -> bool:
        """True when no task is waiting in this worker's queue or running: with late acknowledgement a task's
        message stays in the unacknowledged hash until the task has ended."""
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        if broker.llen(self.queue):
            return False
        return not any(json.loads(payload)[2] == self.queue for payload in broker.hvals(UNACKED))

    def wait_until_idle(self) -> None:
        self.wait_until(self.idle, "idle (its queue empty and no task running)", timeout=WORKER_TIMEOUT)

    def pool_processes(self) -> list[int]:
        """The ids of the processes that run this worker's tasks (the worker itself with the solo pool)."""
        stats = celery_app.control.inspect(destination=[self.hostname], timeout=2).stats() or {}
        if self.hostname not in stats:
            pytest.fail(f"The {self.name} did not answer `inspect stats`. Its log ends:\n{self.log_tail()}")
        return stats[self.hostname]["pool"]["processes"]


@pytest.fixture(scope="session", autouse=True)
def celery_worker(
    s3_bucket: S3Bucket, django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChildProcess]:
    """A `celery worker` process on the test database, consuming the `default` queue, for the whole session:
    every task any test queues is executed, never left for a later run.

    Depending on django_db_setup means the worker stops before the test database is dropped, which
    PostgreSQL refuses while the worker is still connected.
    """
    # The integration broker is a Redis database of its own (db 15 in the Makefile). Emptying it drops
    # tasks that earlier runs queued, or took and never acknowledged, so only this run's tasks execute.
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    worker = CeleryWorker("Celery worker", queue="default", log_path=tmp_path_factory.mktemp("celery") / "worker.log")
    try:
        worker.wait_until_ready()
        yield worker
    finally:
        worker.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Before pytest-django empties the tables after a test that committed, let the session worker finish
    what the test queued (a verification after an upload, say). When it is idle already this costs two Redis
    reads.

    A task still writing while TRUNCATE takes its table locks one by one can deadlock with it: the task holds
    a row TRUNCATE waits for, and waits for a table TRUNCATE already holds.
    """
    worker = getattr(item, "funcargs", {}).get("celery_worker")
    if worker is not None:
        worker.wait_until_idle()


@pytest.fixture
def start_celery_worker(celery_worker: CeleryWorker, tmp_path: Path) -> Iterator[Callable[..., CeleryWorker]]:
    """Start more workers for one test: `start(name, queue=..., **options)` returns one answering pings (options
    as CeleryWorker takes them).

    Each consumes only the queue it is given, so the session worker never takes its tasks, nor it the session
    worker's. Every one still running is stopped when the test ends.
    """
    started: list[CeleryWorker] = []

    def start(name: str, *, queue: str, **options: Any) -> CeleryWorker:
        worker = CeleryWorker(name, queue=queue, log_path=tmp_path / f"worker-{len(started) + 1}.log", **options)
        started.append(worker)
        worker.wait_until_ready()
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
def wait_for_blob_state(celery_worker: CeleryWorker) -> Callable[..., Blob]:
    """Poll the database until the worker has moved a blob (by `sha256:` digest) to `state`.

    Tests that use it must commit their data (`django_db(transaction=True)`): the worker has its own
    connection and never sees a test's open transaction. `worker` names another worker than the
    session's, for a test that started its own.
    """

    def wait(digest: str, state: str, *, timeout: float = WORKER_TIMEOUT, worker: CeleryWorker | None = None) -> Blob:
        worker = worker or celery_worker
        bare = digest.removeprefix("sha256:")
        deadline = time.monotonic() + timeout
        while True:
            blob = Blob.objects.get(digest=bare)
            if blob.state == state:
                return blob
            worker.assert_running()
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Blob {digest} is still '{blob.state}' after {timeout:.0f} s; the worker should have marked "
                    f"it '{state}'. The worker's log ({worker.log_path}) ends:\n{worker.log_tail()}"
                )
            time.sleep(0.1)

    return wait
