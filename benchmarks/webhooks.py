"""Webhook delivery: publish-to-delivery latency, one worker's deliveries per second, the outbox backlog at a steady
100 events/s, and what the outbox adds to each publish.

(One file of about 950 lines on purpose: the receiver, the publishing phases and the report that reads their records
belong together. What every benchmark needs around its measurements is in benchmarks/harness.py.)

    .venv/bin/python benchmarks/webhooks.py [--quick] [--pool prefork|solo] [--no-readme] [--smoke]

Everything runs on 127.0.0.1 and is started and stopped here: a fresh PostgreSQL database of the script's own
(`provenant_bench_<pid>_webhooks`, migrated, dropped at the end), the first empty Redis database of 13, 12, ..., 8 as
the broker (emptied at the end), one Celery worker (prefork with one child by default, or solo), Celery beat (which
queues the relay task every PROVENANT_WEBHOOK_RELAY_INTERVAL_SECONDS, as in production), and the receiver: a
ThreadingHTTPServer in a process of its own, so its arrival times do not wait for this process's GIL, answering 200
at once and checking the Standard Webhooks signature of a sample of what it receives. Events are published in this
process by `artifact_version_publish`, the service the API calls. What each figure means and the targets are in
benchmarks/README.md, whose webhooks results this script rewrites.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import itertools
import json
import math
import multiprocessing
import os
import re
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (  # benchmarks/ is the script's folder, first on sys.path
    LOCAL_POSTGRES,
    STARTUP_TIMEOUT,
    BenchDatabases,
    BenchError,
    Child,
    app_settings,
    bench_main,
    celery_worker,
    children_of,
    claim_redis_db,
    clean_environment,
    cpu_seconds,
    django_setup,
    free_port,
    load_average,
    machine_lines,
    progress,
    quantile,
    results_header,
    verdict,
)

RESULTS_START = "<!-- results:start (written by benchmarks/webhooks.py) -->"
RESULTS_END = "<!-- results:end -->"
#: The comment the script's database carries: nothing else is ever dropped.
MARKER = "provenant-bench-webhooks"
EVENT_TYPE = "artifact_version.published"

# Targets from the issue "Webhooks" (p50 under 1 s, no backlog at 100/s), and from issue 18 (p50 under 100 ms at
# 20 events/s, on an otherwise idle machine; a held backlog drained at 50 deliveries/s or more by two processes).
LATENCY_P50_TARGET_S = 1.0
SLOW_LATENCY_P50_TARGET_S = 0.1
SLOW_RATE_TARGETED = 20.0
DRAIN_RATE_TARGET = 50.0
DRAIN_TARGET_PROCESSES = 2
BACKLOG_RATE = 100.0  # events/s at which the backlog must not grow
#: "No growth": the backlog's least-squares slope over the steady phase stays under this share of the arrival rate.
BACKLOG_SLOPE_TOLERANCE = 0.01

#: Every this-many-th delivery's signature is checked by the receiver, after it has answered.
SIGNATURE_SAMPLE = 20
DRAIN_TIMEOUT = 300.0
RELAY_DONE = re.compile(
    r"Task governance\.webhooks\.tasks\.relay_webhook_deliveries\[[0-9a-f-]+\] succeeded in [0-9.eE+-]+s: (\d+)"
)
DELIVERY_FAILED = re.compile(r"Task governance\.webhooks\.tasks\.deliver_webhook\[[0-9a-f-]+\] (?:raised|retry)")
DELIVERY_OUTCOME = re.compile(
    r"Task governance\.webhooks\.tasks\.deliver_webhook\[[0-9a-f-]+\] succeeded in [0-9.eE+-]+s: '?(\w+)'?"
)


def slope(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of y over x (0 for fewer than two points)."""
    if len(points) < 2:
        return 0.0
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return 0.0 if spread == 0 else sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


# ---------------------------------------------------------------------------------------------- the receiver


def receiver_main(port: int, secret: str, received, commands, ready) -> None:
    """The receiver process: answers every POST with 200 and no body, records (artifact version id, webhook-id,
    arrival time), counts the distinct webhook-ids in `received` and, after answering, checks every
    SIGNATURE_SAMPLE-th signature with the standardwebhooks library. `commands` takes "take" (send the records so
    far) and "stop"."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    lock = threading.Lock()
    records: list[tuple[int, str, float]] = []
    seen: set[str] = set()
    checks = {"verified": 0, "failed": 0, "bad_body": 0}
    webhook = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.time()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                version_id = json.loads(body)["data"]["artifact_version"]["id"]
            except (ValueError, KeyError, TypeError):
                version_id = -1
            message_id = headers.get("webhook-id", "")
            with lock:
                records.append((version_id, message_id, arrived))
                number = len(records)
                checks["bad_body"] += version_id == -1
                new = message_id not in seen
                seen.add(message_id)
            if new:
                with received.get_lock():
                    received.value += 1
            if number % SIGNATURE_SAMPLE == 0:
                try:
                    webhook.verify(body, headers)
                    outcome = "verified"
                except WebhookVerificationError:
                    outcome = "failed"
                with lock:
                    checks[outcome] += 1

        def log_message(self, *args: object) -> None:
            """Quiet: http.server would print a line per delivery."""

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ready.set()
    while True:
        command = commands.recv()
        if command == "stop":
            server.shutdown()
            return
        with lock:
            commands.send((list(records), dict(checks)))


class Receiver:
    """The receiver process, started with the endpoint's secret once the endpoint exists."""

    def __init__(self, port: int, secret: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.received = context.Value("q", 0)
        self._commands, child_end = context.Pipe()
        ready = context.Event()
        self.process = context.Process(
            target=receiver_main, args=(port, secret, self.received, child_end, ready), daemon=True
        )
        self.process.start()
        if not ready.wait(STARTUP_TIMEOUT):
            raise BenchError(f"the receiver did not listen on 127.0.0.1:{port} within {STARTUP_TIMEOUT:.0f} s")

    @property
    def count(self) -> int:
        return self.received.value

    def records(self) -> tuple[list[tuple[int, str, float]], dict[str, int]]:
        self._commands.send("take")
        return self._commands.recv()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._commands.send("stop")
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# ---------------------------------------------------------------------------------------------- publishing


class Publisher:
    """Publishes new versions into one project: each call the next (blob, artifact) pair not yet published, so
    every publish creates a version and emits its event (the same bytes under the same artifact would not)."""

    def __init__(self, user: Any, artifacts: list[Any], digests: list[str]) -> None:
        self.user = user
        self.pairs: Iterator[tuple[str, Any]] = itertools.product(digests, artifacts)

    def publish(self) -> int:
        """One publish (the service's own transaction, or a savepoint inside the caller's); the new version's id."""
        from artifacts.services.catalog import artifact_version_publish

        digest, artifact = next(self.pairs)
        version, created = artifact_version_publish(artifact=artifact, digest=digest, created_by=self.user)
        if not created:
            raise BenchError(f"publishing {digest} under {artifact} again created nothing")
        return version.pk

    def publish_stamped(self) -> tuple[int, float]:
        """One publish and the time.time() its transaction committed: taken by the first on-commit callback, so
        before the hand-off to the broker (which the latency then includes)."""
        from django.db import transaction

        stamps: list[float] = []
        with transaction.atomic():
            transaction.on_commit(lambda: stamps.append(time.time()))
            version_id = self.publish()
        return version_id, stamps[0]


@dataclass
class Phase:
    """Events published at one rate (None: a capacity phase, published with the hand-off held) and what became
    of them."""

    name: str
    rate: float | None
    start: float = 0.0  # time.time() the phase began; backlog samples count from it
    workers: str = ""
    processes: int = 1  # the worker processes that run tasks (prefork children; 1 with the solo pool)
    released_at: float | None = None  # a capacity phase: when its held deliveries were all handed over
    handed_seconds: float = 0.0
    commits: dict[int, float] = field(default_factory=dict)  # version id -> commit time
    backlog: list[tuple[float, int]] = field(default_factory=list)  # (time, pending deliveries)
    published_until: float = 0.0
    drained_at: float | None = None
    latencies: list[float] = field(default_factory=list)  # seconds, for the events delivered
    arrivals: list[float] = field(default_factory=list)
    missing: int = 0
    worker_cpu: float = 0.0

    @property
    def first_commit(self) -> float:
        return min(self.commits.values())

    @property
    def achieved_rate(self) -> float:
        spread = max(self.commits.values()) - self.first_commit
        return (len(self.commits) - 1) / spread if spread > 0 else float("nan")


class Delivery:
    """The worker, beat and receiver around one endpoint, and the phases published to it."""

    def __init__(self, bench: Bench, publisher: Publisher, endpoint: Any, receiver: Receiver) -> None:
        self.bench = bench
        self.publisher = publisher
        self.endpoint = endpoint
        self.receiver = receiver
        self.published = 0
        self.phases: list[Phase] = []

    def pending(self) -> int:
        from governance.webhooks.models import WebhookDelivery

        return WebhookDelivery.objects.filter(endpoint=self.endpoint, state=WebhookDelivery.State.PENDING).count()

    def run(self, name: str, rate: float, seconds: float) -> Phase:
        """Publish events at `rate` per second for `seconds` (sleeping to each one's due time; a publish that falls
        behind is followed at once by the next, and the phase ends on time however many it published), sampling the
        backlog every second; then wait for all of them to be delivered."""
        start = time.time() + 0.05
        phase = Phase(name, rate, start, workers=self.bench.workers_label())
        progress(f"{name}: {seconds:g} s")
        cpu_before = self.bench.worker_cpu()
        next_sample = start
        for number in itertools.count():
            now = time.time()
            # Due times past the end are never published, even when the clock has not reached them yet: a phase
            # publishes at most rate * seconds events (the project was sized for that many).
            due = start + number / rate
            if now >= start + seconds or due >= start + seconds:
                break
            if now >= next_sample:
                phase.backlog.append((now - start, self.pending()))
                next_sample += 1.0
            if due > now:
                time.sleep(due - now)
            version_id, committed = self.publisher.publish_stamped()
            phase.commits[version_id] = committed
        phase.published_until = time.time()
        phase.backlog.append((phase.published_until - start, self.pending()))
        self.published += len(phase.commits)
        self.wait_delivered(phase, start)
        phase.worker_cpu = self.bench.worker_cpu() - cpu_before
        self.phases.append(phase)
        return phase

    def capacity(self, name: str, count: int) -> Phase:
        """Publish `count` events with the hand-off held, then hand all their deliveries over at once and time the
        worker until the last arrives: its deliveries per second with no publisher competing for the CPU."""
        from django.utils import timezone

        from governance.webhooks import receivers
        from governance.webhooks.models import WebhookDelivery

        start = time.time()
        phase = Phase(name, None, start, workers=self.bench.workers_label(), processes=self.bench.concurrency)
        progress(f"{name}: {count:,} events published with the hand-off held, then handed over at once")
        held: list[int] = []

        def hold(delivery_ids: list[int], *, marked: bool = False) -> list[int]:
            # Marked handed, so the relay leaves them alone, but no message sent: as if the broker were slow.
            WebhookDelivery.objects.filter(pk__in=delivery_ids).update(handed_at=timezone.now())
            held.extend(delivery_ids)
            return []

        # Replaced where the event's on-commit callback looks it up: governance/webhooks/receivers.py's global.
        real_hand_off = receivers.deliveries_hand_off
        receivers.deliveries_hand_off = hold
        try:
            for _ in range(count):
                version_id, committed = self.publisher.publish_stamped()
                phase.commits[version_id] = committed
        finally:
            receivers.deliveries_hand_off = real_hand_off
        phase.published_until = time.time()
        cpu_before = self.bench.worker_cpu()
        phase.released_at = time.time()
        real_hand_off(held)
        phase.handed_seconds = time.time() - phase.released_at
        self.published += count
        self.wait_delivered(phase, start)
        phase.worker_cpu = self.bench.worker_cpu() - cpu_before
        self.phases.append(phase)
        return phase

    def wait_delivered(self, phase: Phase, start: float) -> None:
        deadline = time.time() + DRAIN_TIMEOUT
        next_sample = time.time() + 1.0
        while self.receiver.count < self.published:
            self.bench.check_children()
            now = time.time()
            if now > deadline:
                progress(f"{phase.name}: {self.published - self.receiver.count} not delivered after the drain timeout")
                return
            if now >= next_sample:
                phase.backlog.append((now - start, self.pending()))
                next_sample += 1.0
            time.sleep(0.02)
        phase.drained_at = time.time()

    def collect(self) -> tuple[dict[str, int], int]:
        """Fill each phase's latencies from the receiver's records; the signature checks and the duplicates."""
        records, checks = self.receiver.records()
        first: dict[int, float] = {}
        seen_ids: set[str] = set()
        duplicates = 0
        for version_id, message_id, arrived in records:
            if message_id in seen_ids:
                duplicates += 1
                continue
            seen_ids.add(message_id)
            first.setdefault(version_id, arrived)
        for phase in self.phases:
            for version_id, committed in phase.commits.items():
                arrived = first.get(version_id)
                if arrived is None:
                    phase.missing += 1
                else:
                    phase.latencies.append(arrived - committed)
                    phase.arrivals.append(arrived)
        return checks, duplicates


# ---------------------------------------------------------------------------------------------- the bench


@dataclass
class OutboxCost:
    """Per-publish milliseconds of each variant (endpoints, hand-off on), and the checks made after."""

    timings: dict[tuple[int | None, bool], list[float]] = field(default_factory=dict)
    queued_messages: int = 0
    expected_messages: int = 0
    deliveries: dict[int, int] = field(default_factory=dict)  # endpoints -> deliveries written
    publishes: dict[int, int] = field(default_factory=dict)  # endpoints -> publishes


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.databases = BenchDatabases(args.database_url, default_base="postgres", marker=MARKER)
        self.database = f"provenant_bench_{os.getpid()}_webhooks"
        self.redis_url = ""
        self.redis: Any = None
        self.worker: Child | None = None
        self.beat: Child | None = None
        self.receiver: Receiver | None = None
        self.env: dict[str, str] = {}
        self.user: Any = None
        self.outbox = OutboxCost()
        self.delivery: Delivery | None = None
        self.checks: dict[str, int] = {}
        self.duplicates = 0
        self.db_settings: dict[str, str] = {}
        self.load_at_start = load_average()
        self.load_at_end = "?"
        self.worker_log = ""
        self.concurrency = 1

    # Set-up ---------------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        self.redis_url, self.redis = claim_redis_db(
            *([(self.args.redis_db,)] if self.args.redis_db is not None else [])
        )
        progress(f"broker {self.redis_url}; creating and migrating {self.database}")
        self.databases.create(self.database)
        self.db_settings = self.databases.settings(
            ["server_version", "shared_buffers", "synchronous_commit", "fsync", "max_connections"]
        )
        settings = app_settings(
            database_url=self.databases.url(self.database),
            var_dir=self.workdir / "var",
            secret_key=secrets.token_urlsafe(50),  # the same in every process: it seals the secrets
            allowed_hosts="127.0.0.1",
        )
        self.env = clean_environment() | settings
        self.env |= {
            "CELERY_BROKER_URL": self.redis_url,
            "PROVENANT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
            "PYTHONUNBUFFERED": "1",
        }
        os.environ.clear()
        os.environ.update(self.env)
        django_setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        self.databases.set_comment(self.database, f"{MARKER}: complete")
        from django.contrib.auth import get_user_model

        # A superuser reads every project's bytes, which publishing requires, without role grants to set up.
        self.user = get_user_model().objects.create_user(
            username="bench-publisher", password=None, is_superuser=True, is_staff=True
        )

    def project_publisher(self, slug: str, *, events: int, endpoints: int, url: str) -> tuple[Publisher, list]:
        """A project with enough artifacts and small random blobs for `events` new versions, and `endpoints`
        endpoints subscribed to artifact_version.published at `url`; returns its publisher and (endpoint, secret)s."""
        from artifacts.models import Artifact
        from artifacts.services.blobs import blob_store
        from artifacts.services.catalog import artifact_create, project_create
        from governance.webhooks.services import webhook_endpoint_create

        project = project_create(slug=slug, name=slug.replace("-", " ").title(), created_by=self.user)
        blob_count = max(10, int(events**0.5) + 1)
        artifact_count = -(-events // blob_count)
        digests = []
        for _ in range(blob_count):
            content = os.urandom(256)
            hexdigest = hashlib.sha256(content).hexdigest()
            blob_store(project=project, stream=io.BytesIO(content), expected_digest=hexdigest,
                       uploaded_by=self.user, declared_length=len(content))  # fmt: skip
            digests.append(f"sha256:{hexdigest}")
        artifacts = [
            artifact_create(project=project, name=f"model-{number}", kind=Artifact.Kind.MODEL, created_by=self.user)
            for number in range(artifact_count)
        ]
        created = [
            webhook_endpoint_create(project=project, url=url, event_types=[EVENT_TYPE], created_by=self.user)
            for _ in range(endpoints)
        ]
        return Publisher(self.user, artifacts, digests), created

    # Processes ------------------------------------------------------------------------------------------------

    def workers_label(self) -> str:
        if self.args.pool == "solo":
            return "1 worker, solo pool"
        return f"1 worker, prefork pool, {self.concurrency} child{'ren' if self.concurrency > 1 else ''}"

    def start_worker(self, concurrency: int) -> None:
        """A worker on the default queue, as README's production command but with the pool stated; its log is
        kept for the outcome counts."""
        if self.worker is not None:
            self.worker_log += self.worker.log_text()
            self.worker.stop()
        self.concurrency = concurrency
        env = self.env | {"PROVENANT_LOG_LEVEL": "INFO"}
        pool = ["--pool=solo"] if self.args.pool == "solo" else ["--pool=prefork", f"--concurrency={concurrency}"]
        self.worker = celery_worker(
            f"Celery worker ({self.args.pool}, {concurrency})",
            pool=pool,
            hostname=f"bench-webhooks-{concurrency}@localhost",
            env=env,
            log_path=self.workdir / f"worker-{concurrency}.log",
        )

    def start_worker_and_beat(self) -> None:
        self.redis.flushdb()  # the blobs' own verify tasks: only deliveries and the relay run in this benchmark
        env = self.env | {"PROVENANT_LOG_LEVEL": "INFO"}
        self.start_worker(1)
        self.beat = Child(
            "Celery beat",
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO",
             f"--schedule={self.workdir / 'beat-schedule'}", "--pidfile="],
            env=env,
            log_path=self.workdir / "beat.log",
        )  # fmt: skip
        self.beat.wait_until(lambda: "beat: Starting" in self.beat.log_text(), "started", STARTUP_TIMEOUT)

    def worker_pids(self) -> list[int]:
        if self.worker is None:
            return []
        pids, pending = [], [self.worker.pid]
        while pending:
            pid = pending.pop()
            pids.append(pid)
            pending += children_of(pid)
        return pids

    def worker_cpu(self) -> float:
        total = 0.0
        for pid in self.worker_pids():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                total += cpu_seconds(pid)
        return total

    def check_children(self) -> None:
        for child in (self.worker, self.beat):
            if child is not None:
                child.check_running()
        if self.receiver is not None and not self.receiver.process.is_alive():
            raise BenchError("the receiver process died")

    # Part 1: the outbox's cost ----------------------------------------------------------------------------------

    def measure_outbox_cost(self, url: str) -> None:
        """Each variant's publish, interleaved (the order rotating each round), with no worker running: the
        hand-off, when on, only puts the messages on Redis, where they stay until the queue is emptied."""
        from governance.webhooks import receivers
        from governance.webhooks.models import WebhookDelivery
        from governance.webhooks.services import webhook_endpoint_update

        args = self.args
        publishes = args.outbox_rounds + args.outbox_warmup
        variants = [(None, False), (0, False), (1, False), (1, True), (5, False), (5, True)]
        publishers: dict[tuple[int | None, bool], Publisher] = {}
        endpoints = []
        for count, handoff in variants:
            slug = f"outbox-{'none' if count is None else count}-{'handoff' if handoff else 'held'}"
            publishers[(count, handoff)], created = self.project_publisher(
                slug, events=publishes, endpoints=count or 0, url=url
            )
            endpoints += [endpoint for endpoint, _ in created]
        self.redis.flushdb()
        real_hand_off = receivers.deliveries_hand_off

        def publish(variant: tuple[int | None, bool]) -> float:
            count, handoff = variant
            # In this process only, production code untouched: the hand-off held back (the deliveries wait for the
            # relay), or no event at all for the baseline of a publish without an outbox.
            receivers.deliveries_hand_off = real_hand_off if handoff else (lambda delivery_ids, marked=False: [])
            with switched_off_event(count is None):
                started = time.perf_counter()
                publishers[variant].publish()
                return (time.perf_counter() - started) * 1000

        try:
            progress(f"outbox cost: {args.outbox_warmup} warm-up publishes of each of {len(variants)} variants")
            for _ in range(args.outbox_warmup):
                for variant in variants:
                    publish(variant)
            progress(f"outbox cost: {args.outbox_rounds} rounds of {len(variants)} variants, interleaved")
            for number in range(args.outbox_rounds):
                shift = number % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    self.outbox.timings.setdefault(variant, []).append(publish(variant))
        finally:
            receivers.deliveries_hand_off = real_hand_off
        # Checks: the deliveries written, and one message per delivery handed over.
        self.outbox.queued_messages = self.redis.llen("default")
        self.outbox.expected_messages = publishes * sum(count or 0 for count, handoff in variants if handoff)
        for count, handoff in variants:
            if count:
                written = WebhookDelivery.objects.filter(endpoint__project__slug=f"outbox-{count}-"
                                                         f"{'handoff' if handoff else 'held'}").count()  # fmt: skip
                self.outbox.deliveries[count] = self.outbox.deliveries.get(count, 0) + written
                self.outbox.publishes[count] = self.outbox.publishes.get(count, 0) + publishes
        # Switched off, their pending deliveries fail: the relay never sends them during the delivery part.
        for endpoint in endpoints:
            webhook_endpoint_update(endpoint=endpoint, changed_by=self.user, is_active=False)
        self.redis.flushdb()

    # Part 2: delivery ------------------------------------------------------------------------------------------

    def measure_delivery(self) -> None:
        args = self.args
        port = free_port()
        total = args.warmup + math.ceil(args.slow_rate * args.slow_seconds)
        total += math.ceil(BACKLOG_RATE * args.fast_seconds)
        total += args.burst + (args.burst // 2 if args.pool == "prefork" else 0)
        progress(f"delivery: a project for {total:,} events, one endpoint at http://127.0.0.1:{port}/hook")
        publisher, [(endpoint, secret)] = self.project_publisher(
            "delivery", events=total, endpoints=1, url=f"http://127.0.0.1:{port}/hook"
        )
        self.receiver = Receiver(port, secret)
        self.start_worker_and_beat()
        self.delivery = delivery = Delivery(self, publisher, endpoint, self.receiver)
        delivery.run("warm-up", 10.0, args.warmup / 10.0)
        delivery.phases.clear()
        delivery.run(f"{args.slow_rate:g} events/s for {args.slow_seconds:g} s", args.slow_rate, args.slow_seconds)
        delivery.run(f"{BACKLOG_RATE:g} events/s for {args.fast_seconds:g} s", BACKLOG_RATE, args.fast_seconds)
        delivery.capacity(f"{args.burst:,} held, then handed over", args.burst)
        if args.pool == "prefork":
            # What a second process buys on this 2-core machine: the same worker with two children.
            self.start_worker(2)
            delivery.capacity(f"{args.burst // 2:,} held, then handed over", args.burst // 2)
        self.worker_log += self.worker.log_text()
        self.checks, self.duplicates = delivery.collect()

    def run(self) -> None:
        # The outbox part's endpoints are never called (no worker runs then, and they are switched off after it):
        # any allowed address will do, and port 9 (discard) says so.
        self.measure_outbox_cost("http://127.0.0.1:9/outbox")
        self.measure_delivery()
        self.load_at_end = load_average()
        if self.args.smoke:
            self.check_smoke()

    def check_smoke(self) -> None:
        """--smoke: a run that did not deliver, sign and queue what it published fails, whatever its timings."""
        assert self.delivery is not None
        problems = [f"{phase.name}: {phase.missing} of {len(phase.commits)} events not delivered"
                    for phase in self.delivery.phases if phase.missing or not phase.latencies]  # fmt: skip
        if self.checks.get("failed") or self.checks.get("bad_body") or not self.checks.get("verified"):
            problems.append(f"the receiver's signature checks: {self.checks}")
        if failures := DELIVERY_FAILED.findall(self.worker_log):
            problems.append(f"{len(failures)} deliver_webhook tasks raised")
        outbox = self.outbox
        if outbox.queued_messages != outbox.expected_messages or any(
            outbox.deliveries[count] != count * outbox.publishes[count] for count in outbox.deliveries
        ):
            problems.append(f"outbox: deliveries {outbox.deliveries} for publishes {outbox.publishes}, "
                            f"{outbox.queued_messages} messages queued of {outbox.expected_messages}")  # fmt: skip
        if problems:
            raise BenchError("the smoke run did not do what it measures:\n- " + "\n- ".join(problems))
        progress("smoke checks: every event delivered once signed, every outbox delivery written and queued")

    def cleanup(self) -> None:
        from django.db import connections

        Child.stop_all()
        if self.receiver is not None:
            self.receiver.stop()
        connections.close_all()
        with contextlib.suppress(Exception):
            self.databases.drop_created()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                self.redis.flushdb()


@contextlib.contextmanager
def switched_off_event(off: bool) -> Iterator[None]:
    """artifact_version_publish without its event, in this process only, while `off`."""
    from artifacts.services import catalog

    real = catalog.artifact_version_published_event
    if off:
        catalog.artifact_version_published_event = lambda changes, version, *, actor: None
    try:
        yield
    finally:
        catalog.artifact_version_published_event = real


# ---------------------------------------------------------------------------------------------- report


def machine(bench: Bench) -> list[str]:
    redis_version = bench.redis.info("server").get("redis_version", "?") if bench.redis is not None else "?"
    settings = bench.db_settings
    load = (
        f"; load average {bench.load_at_start} at the start, {bench.load_at_end} at the end (1, 5, 15 min; the "
        "machine is shared: other sessions' tests may run meanwhile)"
    )
    return [
        *machine_lines(("Django", "celery", "redis", "psycopg", "httpcore"), note=load),
        f"- PostgreSQL {settings.get('server_version', '?')} (shared_buffers {settings.get('shared_buffers', '?')}, "
        f"synchronous_commit {settings.get('synchronous_commit', '?')}, fsync {settings.get('fsync', '?')}); "
        f"Redis {redis_version} ({bench.redis_url}); all on 127.0.0.1; DEBUG off",
    ]


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def delivery_report(bench: Bench, misses: list[str]) -> list[str]:
    args, delivery = bench.args, bench.delivery
    assert delivery is not None
    rated = [phase for phase in delivery.phases if phase.released_at is None]
    lines = [
        "### Publish to delivery",
        "",
        f"One Celery worker ({rated[0].workers}, `--loglevel=INFO`), Celery beat queuing the relay task every 5 s "
        "(the default interval), the receiver in its own process. Latency: the receiver's arrival time of each "
        "event's first delivery minus the commit of the publish that emitted it (taken by the transaction's first "
        "on-commit callback, so the hand-off to the broker is inside the latency). Events are published by one "
        f"thread, each due at start + n / rate (one that falls behind is followed at once by the next), after "
        f"{args.warmup} warm-up events. Worker CPU: user + system seconds of the worker's processes over the phase, "
        "its drain included, per delivery.",
        "",
        "| Phase | Events | Rate achieved /s | Delivered | p50 ms | p99 ms | max ms | Worker CPU ms / delivery | "
        "Target | Result |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for phase in rated:
        if not phase.latencies:
            lines.append(f"| {phase.name} | {len(phase.commits):,} | | 0 | | | | | | **MISS** |")
            misses.append(f"{phase.name}: nothing delivered")
            continue
        p50 = statistics.median(phase.latencies)
        kept = phase.achieved_rate >= 0.95 * phase.rate
        target = SLOW_LATENCY_P50_TARGET_S if phase.rate == SLOW_RATE_TARGETED else LATENCY_P50_TARGET_S
        passed = p50 < target and phase.missing == 0 and kept
        result = verdict(passed) + ("" if kept else " (rate not reached)")
        if not passed:
            misses.append(
                f"{phase.name}: p50 {ms(p50)} ms at {phase.achieved_rate:.1f} events/s published, "
                f"{phase.missing} not delivered"
            )
        cpu = phase.worker_cpu / len(phase.latencies) * 1000
        lines.append(
            f"| {phase.name} | {len(phase.commits):,} | {phase.achieved_rate:,.1f} | {len(phase.latencies):,} | "
            f"{ms(p50)} | {ms(quantile(phase.latencies, 0.99))} | {ms(max(phase.latencies))} | {cpu:.1f} | "
            f"p50 < {target * 1000:,.0f} ms | {result} |"
        )
    lines += ["", *backlog_report(delivery, misses), "", *throughput_report(delivery, misses)]
    relay = [int(number) for number in RELAY_DONE.findall(bench.worker_log)]
    failures = DELIVERY_FAILED.findall(bench.worker_log)
    outcomes: dict[str, int] = {}
    for outcome in DELIVERY_OUTCOME.findall(bench.worker_log):
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    checked = bench.checks.get("verified", 0) + bench.checks.get("failed", 0)
    lines += [
        "",
        f"Checks: the receiver verified the Standard Webhooks signature of every {SIGNATURE_SAMPLE}th delivery with "
        f"`standardwebhooks` ({bench.checks.get('verified', 0):,} of {checked:,} verified); duplicates received: "
        f"{bench.duplicates}; `deliver_webhook` results in the workers' logs: "
        f"{', '.join(f'{name} {count:,}' for name, count in sorted(outcomes.items())) or 'none'}; tasks that raised: "
        f"{len(failures)}; the relay ran {len(relay)} times and handed over {sum(relay)} deliveries (the on-commit "
        "hand-off had handed the rest).",
    ]
    if failures:
        misses.append(f"{len(failures)} deliver_webhook tasks raised, the first: {failures[0][:200]}")
    if bench.checks.get("failed") or checked == 0:
        misses.append("signatures: not every sampled delivery verified")
    return lines


def backlog_report(delivery: Delivery, misses: list[str]) -> list[str]:
    phase = next(phase for phase in delivery.phases if phase.rate == BACKLOG_RATE)
    end = phase.published_until - phase.start
    during = [(at, count) for at, count in phase.backlog if at <= end + 0.5]
    counts = [count for _, count in during]
    growth = slope(during)
    tolerance = BACKLOG_SLOPE_TOLERANCE * BACKLOG_RATE
    kept_rate = phase.achieved_rate >= 0.95 * BACKLOG_RATE
    passed = growth < tolerance and kept_rate and phase.missing == 0
    if not passed:
        misses.append(
            f"backlog at {BACKLOG_RATE:g}/s: slope {growth:+.1f} deliveries/s, {phase.achieved_rate:.1f} events/s "
            "published"
        )
    drain = (
        f"drained {phase.drained_at - phase.published_until:.1f} s after the last publish"
        if phase.drained_at is not None
        else f"NOT drained within {DRAIN_TIMEOUT:.0f} s"
    )
    samples = " ".join(str(count) for count in counts)
    return [
        f"Backlog during the {phase.name} phase (pending deliveries, sampled about every second): first "
        f"{counts[0]}, last {counts[-1]}, max {max(counts)}, least-squares slope {growth:+.2f} deliveries/s (target: "
        f"no growth, taken as under {tolerance:g}/s, {BACKLOG_SLOPE_TOLERANCE:.0%} of the arrival rate, with the "
        f"rate kept): {verdict(passed)}; {drain}.",
        "",
        f"Samples: {samples}",
    ]


def throughput_report(delivery: Delivery, misses: list[str]) -> list[str]:
    lines = [
        "Throughput: events published with the hand-off held (no message sent), then all their deliveries handed "
        "over at once (`deliveries_hand_off`, the function the on-commit callback calls) with no publisher running; "
        "deliveries/s from that moment to the last arrival.",
        "",
        "| Worker | Deliveries | Handed over in s | Last arrival after s | Deliveries/s | Worker CPU ms / delivery | "
        "Target | Result |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for phase in delivery.phases:
        if phase.released_at is None:
            continue
        targeted = phase.processes == DRAIN_TARGET_PROCESSES
        target = f">= {DRAIN_RATE_TARGET:g}/s" if targeted else ""
        if not phase.arrivals:
            lines.append(f"| {phase.workers} | 0 | | | | | {target} | {verdict(False) if targeted else ''} |")
            if targeted:
                misses.append(f"drain with {phase.workers}: nothing delivered")
            continue
        seconds = max(phase.arrivals) - phase.released_at
        rate = len(phase.arrivals) / seconds
        passed = rate >= DRAIN_RATE_TARGET and not phase.missing
        if targeted and not passed:
            misses.append(f"drain with {phase.workers}: {rate:,.1f} deliveries/s, {phase.missing} not delivered")
        lines.append(
            f"| {phase.workers} | {len(phase.arrivals):,} | {phase.handed_seconds:.2f} | {seconds:.1f} | "
            f"**{rate:,.1f}** | {phase.worker_cpu / len(phase.arrivals) * 1000:.1f} | {target} | "
            f"{verdict(passed) if targeted else ''} |"
        )
    return lines


def outbox_report(bench: Bench, misses: list[str]) -> list[str]:
    outbox, args = bench.outbox, bench.args
    timings = outbox.timings
    base = statistics.median(timings[(None, False)])
    base0 = statistics.median(timings[(0, False)])
    lines = [
        "### What the outbox adds to a publish",
        "",
        f"`artifact_version_publish` in its own transaction (commit and on-commit hand-off included), no worker "
        f"running; {args.outbox_rounds} rounds after {args.outbox_warmup} warm-up publishes of each variant, the "
        "variants interleaved (the order rotating each round), each in a project of its own with the same shape. "
        "No event: the same publish with `artifact_version_published_event` replaced by a no-op in this process. "
        "Hand-off held: `deliveries_hand_off` replaced by a no-op in this process (the deliveries wait for the "
        "relay); on: the ids are marked handed and one message per delivery is sent to Redis.",
        "",
        "| Publish | p50 ms | p95 ms | Added to the p50 vs no event | vs 0 endpoints |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for (count, handoff), samples in timings.items():
        p50 = statistics.median(samples)
        name = "no event" if count is None else (
            f"event, {count} endpoint{'s' if count != 1 else ''}" + ("" if not count else
                                                                       f", hand-off {'on' if handoff else 'held'}")
        )  # fmt: skip
        vs_none = "" if count is None else f"{(p50 - base):+.2f} ms ({p50 / base - 1:+.0%})"
        vs_zero = "" if not count else f"{(p50 - base0):+.2f} ms ({p50 / base0 - 1:+.0%})"
        lines.append(f"| {name} | {p50:.2f} | {quantile(samples, 0.95):.2f} | {vs_none} | {vs_zero} |")
    checks = ", ".join(
        f"{count} endpoint(s): {outbox.deliveries[count]:,} deliveries for {outbox.publishes[count]:,} publishes"
        for count in sorted(outbox.deliveries)
    )
    ok = outbox.queued_messages == outbox.expected_messages and all(
        outbox.deliveries[count] == count * outbox.publishes[count] for count in outbox.deliveries
    )
    if not ok:
        misses.append("outbox cost: deliveries or messages not as expected")
    lines += [
        "",
        f"Checks: {checks}; messages on the Redis queue from the hand-off: {outbox.queued_messages:,} (expected "
        f"{outbox.expected_messages:,}): {'as expected' if ok else 'NOT AS EXPECTED'}.",
    ]
    return lines


def report(bench: Bench, **header: Any) -> str:
    misses: list[str] = []
    lines = [*results_header(**header), *machine(bench), ""]
    lines += delivery_report(bench, misses)
    lines += ["", *outbox_report(bench, misses)]
    lines += ["", f"Targets missed: {len(misses)}" + "".join(f"\n- {miss}" for miss in misses)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run: 10 s at 20/s, 15 s at 100/s, 300 held")
    parser.add_argument("--pool", choices=("prefork", "solo"), default="prefork", help="the worker's pool")
    parser.add_argument("--slow-rate", type=float, default=20.0, help="events/s of the first phase (default 20)")
    parser.add_argument("--slow-seconds", type=float, help="length of the first phase (default 30, quick 10)")
    parser.add_argument("--fast-seconds", type=float, help="length of the 100 events/s phase (default 60, quick 15)")
    parser.add_argument("--burst", type=int, help="events held, then handed over at once (default 1500, quick 300)")
    parser.add_argument("--warmup", type=int, default=20, help="events delivered before the timed phases")
    parser.add_argument("--outbox-rounds", type=int, help="timed publishes of each variant (default 300, quick 40)")
    parser.add_argument("--outbox-warmup", type=int, default=10, help="untimed publishes of each variant first")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or LOCAL_POSTGRES,
        help="the PostgreSQL server to make the benchmark's database on (default DATABASE_URL)",
    )
    parser.add_argument(
        "--redis-db",
        type=int,
        help="the Redis database to use as the broker, which must be empty (default: the "
        "first empty one of 13, 12, ..., 8)",
    )
    parser.add_argument("--no-readme", action="store_true", help="print the results only")
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker's and beat's logs in the work folder")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a quick check that everything runs: 2 s at 20/s, 2 s at 100/s, 40 held, 5 outbox rounds, --no-readme; "
        "exits non-zero on any error or on an event not delivered, a signature that fails, a delivery not queued",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.slow_seconds, args.fast_seconds, args.burst, args.warmup = 2.0, 2.0, 40, 5
        args.outbox_rounds, args.outbox_warmup, args.no_readme = 5, 2, True
    quick = args.quick
    args.slow_seconds = args.slow_seconds or (10.0 if quick else 30.0)
    args.fast_seconds = args.fast_seconds or (15.0 if quick else 60.0)
    args.burst = args.burst or (300 if quick else 1500)
    args.outbox_rounds = args.outbox_rounds or (40 if quick else 300)
    if min(args.slow_rate, args.slow_seconds, args.fast_seconds, args.burst, args.outbox_rounds, args.warmup) <= 0:
        parser.error("rates, lengths and counts must be positive")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    return bench_main(__file__, argv, args, Bench, report, markers=(RESULTS_START, RESULTS_END))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
