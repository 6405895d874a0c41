"""Webhooks end to end: a real receiver on loopback, a real Redis broker, real Celery worker and beat processes.

Each test gets a Redis server of its own (so stopping it disturbs no other test) and points this process's Celery
app at it, with a worker and a beat (which runs the relay every second) on it. Retries and leases are shortened
through the same environment variables an operator would use.
"""

import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from standardwebhooks.webhooks import Webhook

from governance.webhooks.models import WebhookAttempt, WebhookDelivery
from governance.webhooks.services import delivery_attempt
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, BlobFactory, UserFactory
from tests.celery_broker import celery_app_on
from tests.dns_server import running_dns_server
from tests.governance.factories import WebhookEndpointFactory
from tests.integration.conftest import CeleryWorker, ChildProcess, _test_database_url
from tests.webhook_receiver import Answer

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DELIVERED_WITHIN = 60.0
# What an operator would set, shortened: retries a second apart, a 2 s timeout (so a lost attempt's lease is
# 2 * 2 + 5 = 9 s), and the relay every second.
WEBHOOK_ENV = {
    "PROVENANT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
    "PROVENANT_WEBHOOK_RETRY_SCHEDULE": "1s,1s,1s,1s,1s",
    "PROVENANT_WEBHOOK_TIMEOUT_SECONDS": "2",
    "PROVENANT_WEBHOOK_RELAY_INTERVAL_SECONDS": "1",
    "PROVENANT_WEBHOOK_REQUEUE_AFTER_SECONDS": "5",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server of this test's own, on a fixed port, that the test may stop and start again."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_dir = log_dir
        self.process: ChildProcess | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.process = ChildProcess(
            "Redis server",
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            log_path=self.log_dir / f"redis-{self.starts}.log",
        )
        self.process.wait_until(self.answers, "answering PING")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as link:
                link.sendall(b"PING\r\n")
                return link.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """As a crash would: whatever it held (queued messages) is gone."""
        if self.process is not None:
            self.process.process.kill()
            self.process.stop()
            self.process = None


class WebhookStack:
    def __init__(self, redis: RedisServer, log_dir: Path) -> None:
        self.redis = redis
        self.log_dir = log_dir
        self.env = {"CELERY_BROKER_URL": redis.url, **WEBHOOK_ENV}
        self.workers: list[CeleryWorker] = []
        self.beat: ChildProcess | None = None

    def start_worker(self, **options) -> CeleryWorker:
        worker = CeleryWorker(
            f"webhook worker {len(self.workers) + 1}",
            queue="default",
            log_path=self.log_dir / f"worker-{len(self.workers) + 1}.log",
            env=self.env,
            **options,
        )
        self.workers.append(worker)
        worker.wait_until_ready()
        return worker

    def start_beat(self) -> ChildProcess:
        self.beat = ChildProcess(
            "Celery beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel=INFO",
                "-s",
                str(self.log_dir / "beat-schedule"),
            ],
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DATABASE_URL": _test_database_url(),
                **self.env,
            },
            log_path=self.log_dir / "beat.log",
        )
        return self.beat

    def logs(self) -> str:
        parts = [f"--- {w.name} ---\n{w.log_tail(25)}" for w in self.workers]
        if self.beat is not None:
            parts.append(f"--- beat ---\n{self.beat.log_tail(10)}")
        return "\n".join(parts)

    def stop(self) -> None:
        for process in [*self.workers, *([self.beat] if self.beat else [])]:
            process.stop()


@pytest.fixture
def webhook_stack(celery_worker, tmp_path) -> Iterator[WebhookStack]:
    """A Redis of this test's own with this process's Celery app on it, and beat running the relay each second;
    `start_worker()` adds workers (the test decides how many, and when)."""
    redis = RedisServer(tmp_path)
    redis.start()
    stack = WebhookStack(redis, tmp_path)
    try:
        with celery_app_on(redis.url):
            stack.start_beat()
            yield stack
    finally:
        stack.stop()
        redis.stop()


def wait_until(check: Callable[[], bool], what: str, stack: WebhookStack, timeout: float = DELIVERED_WITHIN) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s.\n{stack.logs()}")
        time.sleep(0.2)


def register(api, project, receiver_url: str, event_types=("artifact_version.published",)) -> tuple[int, str]:
    answer = api.post(
        "/api/v1/webhooks/endpoints/",
        {"project": project.slug, "url": receiver_url, "event_types": list(event_types)},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    return answer.json()["id"], answer.json()["secret"]


def test_a_publish_is_delivered_signed_by_a_worker(webhook_stack, receiver, api):
    webhook_stack.start_worker()
    artifact = ArtifactFactory()
    _endpoint, secret = register(api, artifact.project, receiver.url)

    version = ArtifactVersionFactory(artifact=artifact)

    [received] = receiver.wait_for(1, timeout=DELIVERED_WITHIN, what=webhook_stack.logs)
    payload = Webhook(secret).verify(received.body, received.headers)
    assert payload["type"] == "artifact_version.published"
    assert payload["data"]["artifact_version"]["id"] == version.pk
    assert payload["data"]["artifact_version"]["digest"] == version.blob.prefixed_digest
    wait_until(
        lambda: WebhookDelivery.objects.get().state == WebhookDelivery.State.SUCCEEDED,
        "the delivery recorded as succeeded",
        webhook_stack,
    )


def test_a_receiver_answering_500_then_200_gets_the_event_delivered_once(webhook_stack, receiver, api):
    webhook_stack.start_worker()
    artifact = ArtifactFactory()
    _endpoint, secret = register(api, artifact.project, receiver.url)
    receiver.answers.append(Answer(status=500, body=b"try again"))

    ArtifactVersionFactory(artifact=artifact)

    first, second = receiver.wait_for(2, timeout=DELIVERED_WITHIN, what=webhook_stack.logs)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    Webhook(secret).verify(second.body, second.headers)
    wait_until(
        lambda: WebhookDelivery.objects.get().state == WebhookDelivery.State.SUCCEEDED,
        "the delivery recorded as succeeded",
        webhook_stack,
    )
    delivery = WebhookDelivery.objects.get()
    assert list(delivery.attempts.values_list("status_code", "outcome")) == [(500, "failed"), (200, "succeeded")]
    time.sleep(3)  # a few relay rounds: nothing more is sent once it succeeded
    assert len(receiver.requests) == 2


def test_a_worker_killed_mid_delivery_leaves_it_to_the_next_worker_with_the_same_id(webhook_stack, receiver, api):
    doomed = webhook_stack.start_worker(pool="prefork", own_process_group=True)
    artifact = ArtifactFactory()
    _endpoint, secret = register(api, artifact.project, receiver.url)
    receiver.answers.append(Answer(delay=30))  # the receiver is slow: the worker is mid-request when it dies

    ArtifactVersionFactory(artifact=artifact)
    [first] = receiver.wait_for(1, timeout=DELIVERED_WITHIN, what=webhook_stack.logs)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.process.wait()

    webhook_stack.start_worker()
    second = receiver.wait_for(2, timeout=DELIVERED_WITHIN, what=webhook_stack.logs)[1]
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert second.body == first.body
    Webhook(secret).verify(second.body, second.headers)
    wait_until(
        lambda: WebhookDelivery.objects.get().state == WebhookDelivery.State.SUCCEEDED,
        "the delivery recorded as succeeded",
        webhook_stack,
    )
    attempts = list(WebhookDelivery.objects.get().attempts.values_list("number", "outcome"))
    assert attempts == [(1, WebhookAttempt.Outcome.LOST), (2, WebhookAttempt.Outcome.SUCCEEDED)]


def test_events_published_while_redis_is_down_are_all_delivered_when_it_returns(webhook_stack, receiver, api):
    webhook_stack.start_worker()
    artifact = ArtifactFactory()
    _endpoint, secret = register(api, artifact.project, receiver.url)
    publisher = UserFactory(is_superuser=True)
    blobs = [BlobFactory(project=artifact.project, uploaded_by=publisher) for _ in range(5)]

    webhook_stack.redis.stop()
    for blob in blobs:
        answer = api.post(
            "/api/v1/artifact-versions/", {"artifact": artifact.pk, "digest": blob.prefixed_digest}, format="json"
        )
        assert answer.status_code == 201, answer.content  # the publish does not depend on the broker
    assert WebhookDelivery.objects.filter(state="pending", handed_at__isnull=True).count() == 5
    assert receiver.requests == []

    webhook_stack.redis.start()  # empty, as after a crash without persistence

    received = receiver.wait_for(5, timeout=DELIVERED_WITHIN, what=webhook_stack.logs)
    published = {Webhook(secret).verify(r.body, r.headers)["data"]["artifact_version"]["digest"] for r in received}
    assert published == {blob.prefixed_digest for blob in blobs}
    wait_until(
        lambda: WebhookDelivery.objects.filter(state="succeeded").count() == 5,
        "all five deliveries recorded as succeeded",
        webhook_stack,
    )


def test_private_addresses_are_refused_at_registration(api, settings):
    settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = []
    project = ArtifactFactory().project
    for url in (
        "http://127.0.0.1:8000/hooks",
        "https://10.1.2.3/hooks",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hooks",
        "https://[::ffff:192.168.0.1]/hooks",
        "https://localhost/hooks",
    ):
        answer = api.post(
            "/api/v1/webhooks/endpoints/",
            {"project": project.slug, "url": url, "event_types": ["artifact_version.published"]},
            format="json",
        )
        assert answer.status_code == 400, (url, answer.content)
        assert answer.json()["field"] == "url", answer.json()
        assert "public addresses" in answer.json()["detail"] or "resolve" in answer.json()["detail"]


def test_a_name_rebound_to_loopback_after_registration_is_refused_when_the_worker_connects(
    webhook_stack, receiver, api, settings
):
    with running_dns_server() as (dns, dns_address):
        webhook_stack.env.update(
            {"PROVENANT_WEBHOOK_ALLOWED_NETWORKS": "", "PROVENANT_WEBHOOK_DNS_SERVERS": dns_address}
        )
        webhook_stack.start_worker()
        settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = []
        settings.PROVENANT_WEBHOOK_DNS_SERVERS = [dns_address]
        # A public address when the endpoint is registered, loopback from then on: DNS rebinding.
        dns.ipv4["hooks.rebind.test"] = ["93.184.216.34", "127.0.0.1"]
        port = receiver.url.split(":")[2].split("/")[0]
        artifact = ArtifactFactory()
        register(api, artifact.project, f"https://hooks.rebind.test:{port}/hooks")

        ArtifactVersionFactory(artifact=artifact)

        wait_until(
            lambda: WebhookAttempt.objects.filter(outcome=WebhookAttempt.Outcome.REFUSED).exists(),
            "an attempt refused at connect time",
            webhook_stack,
        )
    attempt = WebhookAttempt.objects.get(outcome=WebhookAttempt.Outcome.REFUSED)
    assert "127.0.0.1" in attempt.error
    assert "connect" in attempt.error
    assert receiver.requests == []


def worker_backends(application_name: str) -> list[tuple[int, object]]:
    """(pid, backend start) of the PostgreSQL connections opened by processes named `application_name`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE application_name = %s ORDER BY pid",
            [application_name],
        )
        return cursor.fetchall()


def test_a_worker_keeps_its_database_connection_from_one_delivery_to_the_next(webhook_stack, receiver, api):
    # libpq names the worker's connections after PGAPPNAME, so pg_stat_activity tells them from everyone else's.
    name = f"provenant-it-webhooks-{os.getpid()}"
    webhook_stack.env["PGAPPNAME"] = name
    webhook_stack.start_worker(pool="prefork")  # production's pool: the child process opens the connection
    artifact = ArtifactFactory()
    register(api, artifact.project, receiver.url)

    ArtifactVersionFactory(artifact=artifact)
    receiver.wait_for(1, timeout=DELIVERED_WITHIN, what=webhook_stack.logs)
    wait_until(lambda: WebhookDelivery.objects.filter(state="succeeded").count() == 1, "a success", webhook_stack)
    after_first = worker_backends(name)
    for _ in range(3):
        ArtifactVersionFactory(artifact=artifact)
    receiver.wait_for(4, timeout=DELIVERED_WITHIN, what=webhook_stack.logs)
    wait_until(lambda: WebhookDelivery.objects.filter(state="succeeded").count() == 4, "4 successes", webhook_stack)

    # Celery's Django fixup used to close it after every task: then none was left between deliveries.
    assert len(after_first) == 1, after_first
    assert worker_backends(name) == after_first


def test_an_attempt_commits_without_waiting_for_the_disk_but_the_event_does(receiver):
    artifact = ArtifactFactory()
    endpoint = WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    lazy = "SET LOCAL synchronous_commit TO OFF"
    # The broker is down at the commit (nothing listens on that port): the delivery waits in the database, and this
    # process makes the attempt a worker would.
    with celery_app_on(f"redis://127.0.0.1:{free_port()}/0"), CaptureQueriesContext(connection) as publish:
        ArtifactVersionFactory(artifact=artifact)
    assert not [query for query in publish.captured_queries if lazy in query["sql"]]
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.handed_at is None

    with CaptureQueriesContext(connection) as attempt:
        assert delivery_attempt(delivery.pk).outcome == WebhookAttempt.Outcome.SUCCEEDED

    # The claim's transaction and the result's.
    assert [query["sql"] for query in attempt.captured_queries].count(lazy) == 2
    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.SUCCEEDED
    assert len(receiver.requests) == 1
