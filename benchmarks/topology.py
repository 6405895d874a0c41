"""The production topology under load: nginx in front, granian web processes, Celery workers and beat, PostgreSQL,
Redis and an S3 server, all on loopback, started from the deployment files as they ship, then pipelines, reviewers
and auditors working through the real client for a few minutes, with one web process and one worker killed midway.

    .venv/bin/python benchmarks/topology.py            # 50 clients, files 1-200 MB, 3 minutes per phase
    .venv/bin/python benchmarks/topology.py --smoke    # 4 clients, files 1-4 MB, 20 s per phase: under 2 minutes

What it starts (ports 18100-18104 by default, `--port-base`): a fresh PostgreSQL database `provenant_topo_<pid>`
(migrated and `collectstatic`ed as README's "Production" says, dropped at the end), the first empty Redis database
of 12, 13, 11 … 8 (or `--redis-db`; emptied at the end), moto's S3 server with an Object Lock bucket, nginx running
deploy/nginx/provenant.conf (tests/nginx.py substitutes only the addresses and folders, and writes one upstream
`server` line per web process), two granian processes, two Celery workers and one beat, each with the command and
the Environment= of its unit in deploy/systemd (the venv's path for /srv/provenant/.venv, its own port, --workers
from `--web-workers`), and every process with the variables of deploy/provenant.env.example, addresses, paths and
secrets replaced (`app_environment` lists what else is set, and why). A receiver takes every webhook.

The load, the same scenario in two phases, phase 1 with one web process in nginx's upstream, phase 2 with both
(nginx reloaded between): each pipeline client pushes a new file (sizes: mostly small, a few large) as the next
version of its model, pulls a version of its project, registers every third version and asks for staging, and now
and then pulls a version of a project it has no role on, which must answer 404 (the failure made on purpose);
reviewers approve what awaits them; auditors export their projects' log. Midway through phase 2 one granian process
and one worker are killed with SIGKILL (their whole process group) and started again after their unit's RestartSec,
as systemd does. The client retries as it always does (idempotent requests, refused connections); an operation
whose request was cut off by the kill ("outcome unknown", a 502) is repeated once by the pipeline, as a CI job
would, and counted in the table's "retried" column.

At the end, once the queue has drained (past the visibility timeout, so a task the killed worker held is
redelivered): no unexpected failure; every published version's blob verified exactly once (its `blob.verified`
audit entries); every webhook delivery received, counted by webhook-id (distinct ids == deliveries, raw arrivals
reported beside); the whole audit log exported by an auditor and checked by the offline verifier against the
server's public key, with no gap in `seq`; the tasks the killed worker held (it is killed while it holds one, if
one comes within 10 s) run again; the pipelines' own X-Forwarded-For/-Proto overridden by nginx's (audit entries
record 127.0.0.1, links stay http://); the static files served by nginx. Exit status 1 if a check fails, 2 if the
run could not measure. benchmarks/README.md, "Production topology", has the figures.

Why one file over 1,000 lines: it is one run read top to bottom (start, seed, load, kill, checks, report) around
one shared state, `Bench`; what other benchmarks share (databases, Redis, moto, ports) is already in harness.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from harness import (  # benchmarks/ is the script's folder, first on sys.path
    LOCAL_POSTGRES,
    REPO,
    BenchDatabases,
    BenchError,
    Child,
    claim_redis_db,
    clean_environment,
    code_version,
    django_setup,
    exit_on_sigterm,
    failed,
    fmt,
    listening,
    load_average,
    manage,
    progress,
    quantile,
)
from webhooks import Receiver  # the receiver process of the webhook benchmark, counting distinct webhook-ids

sys.path.insert(1, str(REPO / "clients" / "python" / "src"))
sys.path.append(str(REPO))

MARKER = "provenant-bench-topology"
UNITS = REPO / "deploy" / "systemd"
ENV_TEMPLATE = REPO / "deploy" / "provenant.env.example"
VENV_BIN = Path(sys.executable).parent
MB = 1_000_000
EVENT_TYPES = [
    "artifact_version.published",
    "blob.verified",
    "promotion.requested",
    "promotion.approved",
    "model_version.stage_changed",
]
#: What the pipelines claim in their own forwarding headers (a documentation address, never contacted).
SPOOFED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
#: Seconds a killed process's in-flight requests may fail for, after the kill, and still count as the kill's.
KILL_WINDOW = 15.0


# ---------------------------------------------------------------------------------------------- deployment files


def unit_service(name: str) -> tuple[list[str], dict[str, str], float]:
    """A unit's [Service] ExecStart (split), its Environment= variables and its RestartSec."""
    command, environment, restart = [], {}, 0.0
    section = ""
    for line in (UNITS / name).read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            if key == "ExecStart":
                command = shlex.split(value)
            elif key == "Environment":
                variable, _, assigned = value.partition("=")
                environment[variable] = assigned
            elif key == "RestartSec":
                restart = float(value)
    if not command:
        raise BenchError(f"deploy/systemd/{name} has no ExecStart")
    return [part.replace("/srv/provenant/.venv/bin/", f"{VENV_BIN}/") for part in command], environment, restart


def env_template() -> dict[str, str]:
    """The variables deploy/provenant.env.example assigns (its `#NAME=` examples are not assigned)."""
    assigned = {}
    for line in ENV_TEMPLATE.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            assigned[key.strip()] = value.strip()
    return assigned


def replaced_option(command: list[str], option: str, value: str) -> list[str]:
    """`command` with the value after `option` replaced (the unit must have the option)."""
    if option not in command:
        raise BenchError(f"the unit's command has no {option}: {shlex.join(command)}")
    index = command.index(option) + 1
    return [*command[:index], value, *command[index + 1 :]]


# ---------------------------------------------------------------------------------------------- services


class Service:
    """One process started from its unit, restarted like systemd's Restart=on-failure when it dies."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, restart_sec: float) -> None:
        self.name, self.argv, self.env, self.log_dir, self.restart_sec = name, argv, env, log_dir, restart_sec
        self.starts = 0
        self.child: Child | None = None
        self.supervised = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.before_start = lambda: None

    def start(self) -> Child:
        self.before_start()
        self.starts += 1
        self.child = Child(self.name, self.argv, env=self.env, log_path=self.log_dir / f"{self.name}.{self.starts}.log")
        return self.child

    def supervise(self) -> None:
        """Restart the process RestartSec after it exits, until `stop`."""
        self.supervised = True
        self._thread = threading.Thread(target=self._watch, name=f"systemd-{self.name}", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            if self.child is not None and self.child.process.poll() is not None:
                code = self.child.process.returncode
                self.child.stop()  # closes its log, kills what its group left
                progress(f"{self.name} exited ({code}); restarting in {self.restart_sec:g} s (Restart=on-failure)")
                if self._stop.wait(self.restart_sec):
                    return
                self.start()

    def kill(self) -> None:
        """SIGKILL to the whole process group: a crash, or the machine's OOM killer, not a stop."""
        assert self.child is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.child.pid, signal.SIGKILL)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.child is not None:
            self.child.stop()


# ---------------------------------------------------------------------------------------------- the load


@dataclass
class Op:
    name: str
    phase: int
    started: float
    seconds: float
    ok: bool
    nbytes: int = 0
    expected_failure: bool = False
    retried: bool = False
    error: str = ""


@dataclass
class Shared:
    """What the clients share: the versions published, by project, and the record of every operation."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    versions: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    ops: list[Op] = field(default_factory=list)
    phase: int = 1
    stop: threading.Event = field(default_factory=threading.Event)
    killed_at: float | None = None
    cut_off: list[str] = field(default_factory=list)  # the first error of each operation repeated after the kill
    pushed: int = 0  # bytes pushed so far: past --max-total-gb, files are the smallest size

    def record(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)


def file_size(rng: random.Random, smallest: int, largest: int) -> int:
    """Mostly small files, a few large: 85% in the lowest tenth of the range, 12% up to a half, 3% up to the top."""
    draw = rng.random()
    span = largest - smallest
    top = smallest + span * (0.1 if draw < 0.85 else 0.5 if draw < 0.97 else 1.0)
    return int(rng.uniform(smallest, max(smallest, top)))


class Clients:
    """The pipelines, reviewers and auditors, one thread each, each with its own client and token."""

    def __init__(self, bench: Bench, seeded: dict[str, Any]) -> None:
        self.bench = bench
        self.seeded = seeded
        self.shared = Shared()
        self.threads: list[threading.Thread] = []

    def client(self, token: str, cache: Path, *, spoof: bool = False) -> Any:
        """A client of the server through nginx; `spoof`: one claiming another address and HTTPS in its own
        X-Forwarded-For and X-Forwarded-Proto, which nginx must not pass on as the truth."""
        from provenant_client import Client

        client = Client(self.bench.url, token, cache_dir=cache, timeout=300.0)
        if spoof:
            client.http.headers.update(SPOOFED)
        return client

    def timed(self, name: str, action: Any, *, nbytes: int = 0, expect_error: type | None = None) -> Any:
        """Run `action` once, recorded; once more if a kill cut its request off (the pipeline's own retry)."""
        from provenant_client.errors import ProvenantError

        retried = False
        while True:
            started = time.monotonic()
            try:
                result = action()
            except Exception as error:  # anything the client lets through is a failure too, never a dead thread
                if not isinstance(error, ProvenantError):
                    error = ProvenantError(f"{type(error).__name__}: {error}")
                seconds = time.monotonic() - started
                if expect_error is not None and isinstance(error, expect_error):
                    self.shared.record(Op(name, self.shared.phase, started, seconds, True, 0, expected_failure=True))
                    return None
                killed = self.shared.killed_at
                if not retried and killed is not None and started - KILL_WINDOW < killed < time.monotonic():
                    retried = True
                    with self.shared.lock:
                        self.shared.cut_off.append(f"{name}: {type(error).__name__}: {error}"[:300])
                    continue
                self.shared.record(Op(name, self.shared.phase, started, seconds, False, 0, retried=retried,
                                      error=f"{type(error).__name__}: {error}"[:300]))  # fmt: skip
                return None
            seconds = time.monotonic() - started
            if expect_error is not None:
                self.shared.record(Op(name, self.shared.phase, started, seconds, False, error="no error answered"))
                return None
            size = nbytes(result) if callable(nbytes) else nbytes
            self.shared.record(Op(name, self.shared.phase, started, seconds, True, size, retried=retried))
            return result

    def pipeline(self, number: int, token: str, project: str, other_project: str | None) -> None:
        from provenant_client.errors import NotFound

        args = self.bench.args
        rng = random.Random(number)
        folder = self.bench.workdir / "clients" / f"pipeline-{number}"
        folder.mkdir(parents=True, exist_ok=True)
        client = self.client(token, folder / "cache", spoof=True)
        artifact = f"model-{number}"
        pushes = 0
        with client:
            while not self.shared.stop.is_set():
                with self.shared.lock:
                    over_budget = self.shared.pushed >= args.max_total_gb * 1000 * MB
                size = args.min_mb * MB if over_budget else file_size(rng, args.min_mb * MB, args.max_mb * MB)
                path = folder / f"{artifact}.bin"
                with path.open("wb") as file:
                    left = size
                    while left:
                        file.write(os.urandom(min(left, 8 * MB)))
                        left -= min(left, 8 * MB)
                pushed = self.timed("push + publish", partial(client.push, path, project=project, artifact=artifact),
                                    nbytes=size)  # fmt: skip
                path.unlink(missing_ok=True)
                if pushed is None:
                    continue
                with self.shared.lock:
                    self.shared.pushed += size
                pushes += 1
                version = pushed.version["id"]
                with self.shared.lock:
                    self.shared.versions[project].append(version)
                    choice = rng.choice(self.shared.versions[project])
                pulled = self.timed("pull", partial(client.pull, choice), nbytes=lambda path: path.stat().st_size)
                if pulled is not None:
                    shutil.rmtree(folder / "cache", ignore_errors=True)
                if pushes % 3 == 0:
                    self.timed(
                        "register + request staging",
                        partial(self.promote, client, version, artifact),
                    )
                if other_project and pushes % 4 == 0:
                    with self.shared.lock:
                        theirs = list(self.shared.versions[other_project])
                    if theirs:
                        target = rng.choice(theirs)
                        self.timed(
                            "pull, no role (404 on purpose)", partial(client.pull, target), expect_error=NotFound
                        )

    @staticmethod
    def promote(client: Any, version: int, model: str) -> Any:
        """Register the version as the model's next and ask for staging (one approval, verified bytes)."""
        return client.request_promotion(client.register(version, model=model), stage="staging",
                                        justification="nightly run")  # fmt: skip

    def reviewer(self, token: str, projects: list[str]) -> None:
        client = self.client(token, self.bench.workdir / "clients" / f"reviewer-{token[:8]}")
        with client:
            while not self.shared.stop.is_set():
                waiting = []
                for project in projects:
                    waiting += self.timed("list awaiting review", lambda p=project: client.awaiting_me(project=p)) or []
                for request in waiting:
                    self.timed("approve promotion", lambda r=request: client.approve(r["id"], comment="ok"))
                if not waiting:
                    self.shared.stop.wait(1.0)

    def auditor(self, number: int, token: str, projects: list[str]) -> None:
        folder = self.bench.workdir / "clients" / f"auditor-{number}"
        folder.mkdir(parents=True, exist_ok=True)
        client = self.client(token, folder / "cache")
        rng = random.Random(1000 + number)
        with client:
            while not self.shared.stop.is_set():
                dest = folder / "export.jsonl"
                self.timed(
                    "audit export (project)",
                    partial(client.audit_export, dest, project=rng.choice(projects)),
                    nbytes=lambda path: path.stat().st_size,
                )
                dest.unlink(missing_ok=True)
                self.shared.stop.wait(2.0)

    def start(self) -> None:
        self.shared.stop.clear()
        seeded = self.seeded
        projects = seeded["projects"]
        for number, (token, project) in enumerate(seeded["pipelines"]):
            others = [each for each in projects if each != project]
            other = others[number % len(others)] if others else None
            self.threads.append(
                threading.Thread(target=self.guarded(self.pipeline), args=(number, token, project, other))
            )
        for token, reviewed in seeded["reviewers"]:
            self.threads.append(threading.Thread(target=self.guarded(self.reviewer), args=(token, reviewed)))
        for number, token in enumerate(seeded["auditors"]):
            self.threads.append(threading.Thread(target=self.guarded(self.auditor), args=(number, token, projects)))
        for thread in self.threads:
            thread.daemon = True
            thread.start()

    def guarded(self, target: Any) -> Any:
        """`target` recording a crash of its thread as a failed operation, so a broken client fails the run."""

        def run(*args: Any) -> None:
            try:
                target(*args)
            except Exception as error:
                self.shared.record(Op("client thread", self.shared.phase, time.monotonic(), 0.0, False,
                                      error=f"{type(error).__name__}: {error}"[:300]))  # fmt: skip
                raise

        return run

    def stop(self) -> None:
        self.shared.stop.set()
        for thread in self.threads:
            thread.join(timeout=600)
        self.threads = []


# ---------------------------------------------------------------------------------------------- the run


SEED = """
import json, sys
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from artifacts.access.roles import Role
from artifacts.access.services import role_grant
from artifacts.services.catalog import project_create
from governance.access.services import api_token_issue
from governance.webhooks.services import webhook_endpoint_create

plan = json.loads(sys.argv[-1])
User = get_user_model()
admin = User.objects.create_user("topo-admin")
projects = [project_create(slug=f"team-{n}", name=f"Team {n}", created_by=admin) for n in range(plan["projects"])]
def token(user):
    return api_token_issue(user=user, name="topology", lifetime=timedelta(days=1))[1]
out = {"projects": [p.slug for p in projects], "pipelines": [], "reviewers": [], "auditors": [], "secrets": []}
for n in range(plan["pipelines"]):
    user = User.objects.create_user(f"pipeline-{n}")
    project = projects[n % len(projects)]
    role_grant(obj=project, role=Role.CONTRIBUTOR, user=user, granted_by=None)
    out["pipelines"].append([token(user), project.slug])
for n in range(plan["reviewers"]):
    user = User.objects.create_user(f"reviewer-{n}")
    mine = [p for i, p in enumerate(projects) if i % plan["reviewers"] == n]
    for project in mine:
        role_grant(obj=project, role=Role.REVIEWER, user=user, granted_by=None)
    out["reviewers"].append([token(user), [p.slug for p in mine]])
for n in range(plan["auditors"]):
    user = User.objects.create_user(f"auditor-{n}")
    for project in projects:
        role_grant(obj=project, role=Role.AUDITOR, user=user, granted_by=None)
    out["auditors"].append(token(user))
chief = User.objects.create_user("chief-auditor")
chief.user_permissions.add(Permission.objects.get(content_type__app_label="core", codename="view_auditentry"))
out["chief_auditor"] = token(chief)
for project in projects:
    out["secrets"].append(webhook_endpoint_create(project=project, url=plan["hook"], event_types=plan["events"],
                                                  created_by=admin)[1])
print(json.dumps(out))
"""


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        base = args.port_base
        self.ports = {"nginx": base, "web-1": base + 1, "web-2": base + 2, "moto": base + 3, "receiver": base + 4}
        self.url = f"http://127.0.0.1:{self.ports['nginx']}"
        self.var = workdir / "var"
        self.logs = workdir / "logs"
        self.databases = BenchDatabases(
            args.database_url.rsplit("/", 1)[0] + "/provenant_topo", default_base="provenant_topo", marker=MARKER
        )
        self.database = f"provenant_topo_{os.getpid()}"
        self.broker = ""
        self.redis = None
        self.moto: Child | None = None
        self.nginx: Child | None = None
        self.receiver: Receiver | None = None
        self.services: dict[str, Service] = {}
        self.env: dict[str, str] = {}
        self.phase_seconds: dict[int, float] = {}
        self.checks: list[tuple[str, bool, str]] = []
        self.clients: Clients | None = None
        self.kills: list[str] = []
        self.held: list[str] = []

    # ---- environment

    def app_environment(self) -> dict[str, str]:
        """deploy/provenant.env.example with this host's addresses, paths and secrets, and what loopback adds."""
        template = env_template()
        keys = self.var / "keys"
        replaced = {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_CSRF_TRUSTED_ORIGINS": self.url,
            "PROVENANT_PUBLIC_URL": self.url,
            "PROVENANT_VAR_DIR": str(self.var),
            "DATABASE_URL": self.databases.url(self.database),
            "PROVENANT_S3_BUCKET": "provenant-topo",
            "PROVENANT_S3_REGION": "us-east-1",
            "CELERY_BROKER_URL": self.broker,
            "PROVENANT_AUDIT_SIGNING_KEY_FILE": str(keys / "audit-signing-key.pem"),
            "PROVENANT_ATTESTATION_SIGNING_KEY_FILE": str(keys / "attestation-signing-key.pem"),
            "PROVENANT_METRICS_TOKEN": secrets.token_urlsafe(20),
            "DJANGO_EMAIL_HOST": "",  # printed to the log, as the template's comment says of an empty host
        }
        unknown = set(replaced) - set(template)
        if unknown:
            raise BenchError(f"deploy/provenant.env.example no longer assigns {sorted(unknown)}: update this script")
        added = {
            # The S3 server is moto on loopback, plain HTTP (the template asks https:// of a real one).
            "PROVENANT_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.ports['moto']}",
            "AWS_ACCESS_KEY_ID": "topology",
            "AWS_SECRET_ACCESS_KEY": "topology",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(self.workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.workdir / "no-aws-credentials"),
            # No TLS on loopback: nginx listens on plain HTTP, so no redirect to HTTPS.
            "PROVENANT_HTTPS": "false",
            # The receiver is on loopback, which webhooks may reach only when allowed (plain http:// too).
            "PROVENANT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
            # A task the killed worker held comes back after this long: shorter than the template's 6 hours (longer
            # than any verification here) so that the run sees the redelivery.
            "PROVENANT_CELERY_VISIBILITY_TIMEOUT": str(self.args.visibility_timeout),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        return clean_environment("AWS_") | template | replaced | added

    # ---- starting

    def prepare(self) -> None:
        import redis

        for folder in (self.var / "keys", self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        if self.args.redis_db is None:
            self.broker, self.redis = claim_redis_db((12, 13, 11, 10, 9, 8))
        else:
            self.broker = f"redis://127.0.0.1:6379/{self.args.redis_db}"
            self.redis = redis.Redis.from_url(self.broker, socket_timeout=5)
            if self.redis.dbsize():
                raise BenchError(f"Redis database {self.args.redis_db} is not empty; choose another with --redis-db")
        progress(f"broker: {self.broker}")
        busy = [f"{name} {port}" for name, port in self.ports.items() if listening(port)]
        if busy:
            raise BenchError(f"ports already taken: {', '.join(busy)}; choose others with --port-base")
        free_gb = shutil.disk_usage(self.workdir).free / 1e9
        if free_gb < self.args.max_total_gb * 1.5 + 5:
            raise BenchError(
                f"{free_gb:.0f} GB free in {self.workdir}; the run may store {self.args.max_total_gb:g} GB "
                "(moto's objects) and the clients' files: lower --max-total-gb"
            )
        if not self.databases.answers():
            raise BenchError(f"no PostgreSQL server answers at {self.args.database_url}")
        self.env = self.app_environment()
        self.write_keys()
        self.start_moto()
        progress(f"creating and migrating {self.database}; collectstatic")
        self.databases.create(self.database)
        manage(self.env, "migrate", "--noinput")
        manage(self.env, "collectstatic", "--noinput")
        self.receiver = Receiver(self.ports["receiver"], "unused")
        seeded = self.seed()
        self.clients = Clients(self, seeded)
        self.start_services()
        self.start_nginx(web=1)

    def write_keys(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        for name in ("audit-signing-key.pem", "attestation-signing-key.pem"):
            (self.var / "keys" / name).write_bytes(
                Ed25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )

    def start_moto(self) -> None:
        import boto3

        port = self.ports["moto"]
        self.moto = Child(
            "moto S3 server",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(self.workdir)},
            log_path=self.logs / "moto.log",
        )
        self.moto.wait_until(lambda: listening(port), f"listening on 127.0.0.1:{port}")
        boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
            aws_access_key_id="topology", aws_secret_access_key="topology",  # noqa: S106 (moto)
        ).create_bucket(Bucket=self.env["PROVENANT_S3_BUCKET"], ObjectLockEnabledForBucket=True)  # fmt: skip
        progress(f"moto S3 server on 127.0.0.1:{port}, bucket {self.env['PROVENANT_S3_BUCKET']} (Object Lock)")

    def seed(self) -> dict[str, Any]:
        import json

        args = self.args
        auditors = max(1, args.clients // 10)
        reviewers = max(1, args.clients // 10)
        pipelines = max(1, args.clients - auditors - reviewers)
        plan = {
            "projects": max(2, pipelines // 8),
            "pipelines": pipelines,
            "reviewers": reviewers,
            "auditors": auditors,
            "hook": f"http://127.0.0.1:{self.ports['receiver']}/hook",
            "events": EVENT_TYPES,
        }
        printed = manage(self.env, "shell", "-c", SEED.replace("sys.argv[-1]", repr(json.dumps(plan))))
        seeded = json.loads(printed.strip().splitlines()[-1])
        progress(
            f"seeded {plan['projects']} projects (a webhook endpoint each), {pipelines} pipelines, {reviewers} "
            f"reviewers, {auditors} auditors"
        )
        return seeded

    def start_services(self) -> None:
        web, web_env, web_restart = unit_service("provenant-web.service")
        worker, worker_env, worker_restart = unit_service("provenant-worker.service")
        beat, beat_env, beat_restart = unit_service("provenant-beat.service")
        for number in (1, 2):
            name = f"web-{number}"
            argv = replaced_option(web, "--port", str(self.ports[name]))
            argv = replaced_option(argv, "--workers", str(self.args.web_workers))
            runtime = self.workdir / f"run-{name}"  # RuntimeDirectory=: fresh at each start
            env = self.env | web_env | {"PROMETHEUS_MULTIPROC_DIR": str(runtime)}
            service = Service(name, argv, env, self.logs, web_restart)

            def fresh(runtime: Path = runtime) -> None:
                shutil.rmtree(runtime, ignore_errors=True)
                runtime.mkdir()

            service.before_start = fresh
            self.services[name] = service
        for number in (1, 2):
            # Two hosts' workers on one machine: each needs a node name of its own.
            argv = [*worker, f"--hostname=worker{number}@topology"]
            self.services[f"worker-{number}"] = Service(f"worker-{number}", argv, self.env | worker_env, self.logs,
                                                        worker_restart)  # fmt: skip
        self.services["beat"] = Service("beat", beat, self.env | beat_env, self.logs, beat_restart)
        for service in self.services.values():
            service.start()
        for name in ("web-1", "web-2"):
            port = self.ports[name]
            self.services[name].child.wait_until(lambda port=port: listening(port), f"listening on {port}")
        for name in ("worker-1", "worker-2"):
            child = self.services[name].child
            child.wait_until(lambda child=child: " ready." in child.log_text(), "ready")
        for service in self.services.values():
            service.supervise()
        progress(f"2 granian ({shlex.join(web[1:3])}…), 2 Celery workers and beat started from deploy/systemd")

    def nginx_config(self, web: int) -> Path:
        from tests import nginx

        ports = [self.ports[f"web-{number}"] for number in range(1, web + 1)]
        workdir = self.workdir / "nginx"
        workdir.mkdir(exist_ok=True)
        return nginx.render_config(
            workdir, port=self.ports["nginx"], upstream_port=ports, blobs=self.var / "blobs",
            static=self.var / "static", worker_connections=1024,
        )  # fmt: skip

    def start_nginx(self, web: int) -> None:
        from tests import nginx

        if not nginx.installed():
            raise BenchError("nginx is not installed (apt-get install nginx-light)")
        config = self.nginx_config(web)
        self.nginx = Child("nginx", nginx.command(config.parent, config), env=dict(os.environ),
                           log_path=self.logs / "nginx.log")  # fmt: skip
        port = self.ports["nginx"]
        self.nginx.wait_until(lambda: listening(port), f"serving on 127.0.0.1:{port}")
        progress(f"nginx on {self.url}: deploy/nginx/provenant.conf, upstream of {web} granian process(es)")

    def reload_nginx(self, web: int) -> None:
        self.nginx_config(web)
        os.kill(self.nginx.pid, signal.SIGHUP)
        time.sleep(1.0)
        self.nginx.check_running()
        progress(f"nginx reloaded: upstream of {web} granian processes")

    # ---- the load

    def run(self) -> None:
        assert self.clients is not None
        self.check_static()
        for phase, web in ((1, 1), (2, 2)):
            if web == 2:
                self.reload_nginx(2)
            self.clients.shared.phase = phase
            progress(f"phase {phase}: {len(self.clients.seeded['pipelines'])} pipelines … for {self.args.seconds} s, "
                     f"{web} web process(es)")  # fmt: skip
            started = time.monotonic()
            self.clients.start()
            if phase == 2:
                self.clients.shared.stop.wait(self.args.seconds / 2)
                self.kill_midway()
                self.clients.shared.stop.wait(max(0.0, self.args.seconds - (time.monotonic() - started)))
            else:
                self.clients.shared.stop.wait(self.args.seconds)
            self.clients.stop()
            self.phase_seconds[phase] = time.monotonic() - started
            ops = [op for op in self.clients.shared.ops if op.phase == phase]
            progress(f"phase {phase} done in {self.phase_seconds[phase]:.0f} s: {len(ops)} operations")
        self.held = self.held_by_killed_worker()
        progress(f"the killed worker held {len(self.held)} unfinished task(s): {', '.join(self.held) or 'none'}")
        self.settle()
        self.final_checks()

    def kill_midway(self) -> None:
        # The worker is killed while it holds a task if one comes within 10 s, so that a redelivery is exercised.
        log = self.services["worker-1"].child.log_path
        deadline = time.monotonic() + 10
        while not self.held_by_killed_worker(log) and time.monotonic() < deadline:
            time.sleep(0.02)
        for name in ("worker-1", "web-2"):
            service = self.services[name]
            pid = service.child.pid
            self.clients.shared.killed_at = time.monotonic()
            service.kill()
            self.kills.append(f"{name} (pid {pid}, with its process group)")
            progress(f"kill -9 {name} (pid {pid} and its children)")
        deadline = time.monotonic() + 60
        while any(self.services[name].starts < 2 for name in ("web-2", "worker-1")):
            if time.monotonic() > deadline:
                raise BenchError("the killed processes were not restarted within 60 s")
            time.sleep(0.2)
        port = self.ports["web-2"]
        self.services["web-2"].child.wait_until(lambda: listening(port), "listening again")
        progress("web-2 and worker-1 restarted")

    def redone(self) -> tuple[list[str], list[str]]:
        """Of the tasks the killed worker held, those a worker ran to the end afterwards, and those a worker was
        handed again but discarded because their `expires` had passed (any worker's later log). Only the periodic
        tasks beat sends carry an expiry (config/settings/celery.py): a later run of the same task has done their
        work, which the delivery and verification checks confirm."""
        import re

        ended: set[str] = set()
        discarded: set[str] = set()
        for log in self.logs.glob("worker-*.log"):
            if log.name != "worker-1.1.log":
                text = log.read_text(errors="replace")
                ended |= set(re.findall(r"Task [\w.]+\[([0-9a-f]{8})[0-9a-f-]{28}\] (?:succeeded|raised)", text))
                discarded |= set(re.findall(r"Discarding revoked task: [\w.]+\[([0-9a-f]{8})[0-9a-f-]{28}\]", text))

        def short_id(task: str) -> str:
            return task.rsplit("[", 1)[1].rstrip("]")

        return (
            [task for task in self.held if short_id(task) in ended],
            [task for task in self.held if short_id(task) in discarded - ended],
        )

    def held_by_killed_worker(self, log: Path | None = None) -> list[str]:
        """The tasks the worker had received and not finished (by default the killed one's first log): what the
        broker must hand out again after the visibility timeout."""
        import re

        text = (log or self.logs / "worker-1.1.log").read_text(errors="replace")
        received = {task_id: name for name, task_id in re.findall(r"Task ([\w.]+)\[([0-9a-f-]{36})\] received", text)}
        ended = set(re.findall(r"Task [\w.]+\[([0-9a-f-]{36})\] (?:succeeded|raised|retry)", text))
        # A task that waited past its `expires` (beat's periodic ones) is discarded by the worker that had it: done.
        ended |= set(re.findall(r"Discarding revoked task: [\w.]+\[([0-9a-f-]{36})\]", text))
        return [f"{name}[{task_id[:8]}]" for task_id, name in received.items() if task_id not in ended]

    def check_static(self) -> None:
        import httpx

        files = sorted(path for path in (self.var / "static").rglob("*.css") if path.is_file())
        if not files:
            self.checks.append(("static files served by nginx", False, "collectstatic wrote no .css"))
            return
        path = files[0]
        answer = httpx.get(f"{self.url}/static/{path.relative_to(self.var / 'static')}")
        # The app adds X-Request-ID to every answer; nginx's own answers have none, and carry its Expires.
        ok = (
            answer.status_code == 200
            and answer.content == path.read_bytes()
            and "x-request-id" not in answer.headers
            and "expires" in answer.headers
        )
        self.checks.append(("static files served by nginx", ok, f"GET /static/{path.name}: {answer.status_code}"))

    # ---- the checks

    def settle(self) -> None:
        """Wait until every blob is verified and every delivery made (the killed worker's task comes back after
        the visibility timeout), or give up after it and a margin."""
        from django.db import close_old_connections

        from artifacts.models import ArtifactVersion
        from governance.webhooks.models import WebhookDelivery

        deadline = time.monotonic() + self.args.visibility_timeout + self.args.drain_margin
        progress("waiting for the queue to drain (verifications, deliveries)")
        while True:
            close_old_connections()
            pending_blobs = ArtifactVersion.objects.exclude(blob__state="verified").count()
            pending = WebhookDelivery.objects.exclude(state=WebhookDelivery.State.SUCCEEDED).count()
            if not pending_blobs and not pending:
                break
            if time.monotonic() > deadline:
                progress(f"gave up waiting: {pending_blobs} versions' blobs unverified, {pending} deliveries not made")
                break
            time.sleep(2)
        time.sleep(3)  # deliveries just marked delivered: their arrival is already counted; a margin for stragglers
        # The killed worker's tasks come back once the visibility timeout has passed and a worker restores them; one
        # that no check above waits for (a scan) may come later than the last verification, so wait for it too.
        while time.monotonic() < deadline:
            redone, expired = self.redone()
            if all(task in redone or task in expired for task in self.held):
                break
            time.sleep(2)

    def final_checks(self) -> None:
        from django.db import connection
        from django.db.models import Count, Max
        from provenant_client import Client

        from artifacts.models import ArtifactVersion
        from core.models import AuditEntry
        from governance.webhooks.models import WebhookDelivery

        ops = self.clients.shared.ops
        unexpected = [op for op in ops if not op.ok]
        self.checks.append(
            (
                "no unexpected failure",
                not unexpected,
                f"{len(unexpected)} failed: {[op.error for op in unexpected[:3]]}",
            )
        )
        blob_ids = set(ArtifactVersion.objects.values_list("blob_id", flat=True))
        counts = dict(
            AuditEntry.objects.filter(action="blob.verified")
            .values_list("object_id")
            .annotate(n=Count("seq"))
            .values_list("object_id", "n")
        )
        per_blob = [counts.get(str(blob_id), 0) for blob_id in blob_ids]
        never, twice = sum(n == 0 for n in per_blob), sum(n > 1 for n in per_blob)
        self.checks.append(
            (
                "every published version's blob verified exactly once",
                bool(per_blob) and not never and not twice,
                f"{len(blob_ids)} blobs of {ArtifactVersion.objects.count()} versions: {never} never, {twice} more "
                "than once",
            )
        )
        deliveries = list(WebhookDelivery.objects.select_related("event").values_list("event__public_id", "state"))
        expected = {str(public_id) for public_id, _ in deliveries}
        records, _ = self.receiver.records()
        raw = [message_id for _, message_id, _ in records]
        distinct = set(raw)
        undelivered = sum(state != WebhookDelivery.State.SUCCEEDED for _, state in deliveries)
        self.webhook_figures = (len(deliveries), len(distinct), len(raw))
        self.checks.append(
            (
                "every event delivered once (distinct webhook-ids == deliveries)",
                bool(deliveries) and distinct == expected and not undelivered,
                f"{len(deliveries)} deliveries, {len(distinct)} distinct ids received, {len(raw)} raw arrivals "
                f"({len(raw) - len(distinct)} duplicates), {len(expected - distinct)} missing, {undelivered} not "
                "marked delivered",
            )
        )
        # The whole log, exported by an auditor through nginx and checked offline against the server's key.
        manage(self.env, "audit_sign_tree_head")
        public_key = manage(self.env, "audit_public_key", "--pem")
        export = self.workdir / "audit-export.jsonl"
        with Client(self.url, self.clients.seeded["chief_auditor"], cache_dir=self.workdir / "chief") as client:
            client.audit_export(export)
            try:
                report = client.audit_verify(export, public_key=public_key)
                verified, detail = True, report.summary().splitlines()[0]
            except Exception as error:  # the verifier's VerificationFailed, or a malformed export
                verified, detail = False, f"{type(error).__name__}: {error}"
        redone, expired = self.redone()
        lost = [task for task in self.held if task not in redone and task not in expired]
        self.checks.append(
            (
                "tasks the killed worker held were run again (or, periodic, expired and superseded)",
                not lost,
                f"of {len(self.held)} held: {len(redone)} run again, {len(expired)} handed out again past their "
                f"expiry and discarded, {len(lost)} lost ({', '.join(lost) or 'none'})"
                if self.held
                else "it held none when killed",
            )
        )
        stats = AuditEntry.objects.aggregate(count=Count("seq"), top=Max("seq"))
        no_gap = stats["count"] == (stats["top"] or 0) + 1
        self.checks.append(("audit log verifies offline", verified, detail[:300]))
        self.checks.append(
            ("no gap in the audit log's seq", no_gap, f"{stats['count']} entries, seq 0 to {stats['top']}")
        )
        import httpx

        token = self.clients.seeded["pipelines"][0][0]
        answer = httpx.get(f"{self.url}/api/v1/artifact-versions/", params={"page_size": 1},
                           headers={"Authorization": f"Bearer {token}"} | SPOOFED)  # fmt: skip
        link = (answer.json().get("next") or "") if answer.status_code == 200 else ""
        self.checks.append(
            (
                "a client's X-Forwarded-Proto is replaced by nginx's (links stay http://)",
                link.startswith(f"{self.url}/"),
                f"next link {link[:60]!r} (status {answer.status_code})",
            )
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), count(*) FILTER (WHERE source_ip = '127.0.0.1') FROM core_auditentry "
                "WHERE request_id <> ''"
            )
            requests, loopback = cursor.fetchone()
        self.checks.append(
            (
                "audit entries of requests carry the address nginx saw, not the one pipelines claim (X-Forwarded-For)",
                requests > 0 and requests == loopback,
                f"{loopback} of {requests} with 127.0.0.1",
            )
        )

    # ---- stopping

    def cleanup(self) -> None:
        for service in self.services.values():
            with contextlib.suppress(Exception):
                service.stop()
        if self.receiver is not None:
            self.receiver.stop()
        Child.stop_all()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with contextlib.suppress(Exception):
            self.databases.drop_created(quiet=True)
        if self.redis is not None:
            with contextlib.suppress(Exception):
                self.redis.flushdb()


# ---------------------------------------------------------------------------------------------- the report


def table(bench: Bench) -> str:
    ops = bench.clients.shared.ops
    names = list(dict.fromkeys(op.name for op in sorted(ops, key=lambda op: op.name)))
    lines = [
        "| Phase | Operation | Count | Failed | Expected failures | Retried after kill | req/s | p50 ms | p95 ms | "
        "p99 ms | MB/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for phase in (1, 2):
        seconds = bench.phase_seconds.get(phase, 0.0)
        for name in names:
            mine = [op for op in ops if op.phase == phase and op.name == name]
            if not mine:
                continue
            samples = [op.seconds * 1000 for op in mine]
            moved = sum(op.nbytes for op in mine if op.ok)
            rate = f"{moved / MB / seconds:.1f}" if name in ("push + publish", "pull") and seconds else "—"
            lines.append(
                f"| {phase} ({phase} web) | {name} | {len(mine)} | {sum(not op.ok for op in mine)} | "
                f"{sum(op.expected_failure for op in mine)} | {sum(op.retried for op in mine)} | "
                f"{len(mine) / seconds:.2f} | {fmt(quantile(samples, 0.5))} | {fmt(quantile(samples, 0.95))} | "
                f"{fmt(quantile(samples, 0.99))} | {rate} |"
            )
        mine = [op for op in ops if op.phase == phase]
        if mine and seconds:
            moved = sum(op.nbytes for op in mine if op.ok and op.name in ("push + publish", "pull"))
            lines.append(
                f"| {phase} ({phase} web) | **all** | {len(mine)} | {sum(not op.ok for op in mine)} | "
                f"{sum(op.expected_failure for op in mine)} | {sum(op.retried for op in mine)} | "
                f"{len(mine) / seconds:.2f} | | | | {moved / MB / seconds:.1f} |"
            )
    return "\n".join(lines)


def report(bench: Bench, command: str, code: str) -> str:
    args = bench.args
    lines = [
        f"Command: `{command}`; {code}; load average at the end {load_average()}",
        f"{len(bench.clients.seeded['pipelines'])} pipelines, {len(bench.clients.seeded['reviewers'])} reviewers, "
        f"{len(bench.clients.seeded['auditors'])} auditors; files {args.min_mb}-{args.max_mb} MB; "
        f"{args.seconds} s per phase; granian --workers {args.web_workers} per web process",
        f"Killed mid phase 2: {', '.join(bench.kills) or 'nothing'}; tasks the worker held unfinished, so "
        f"redelivered: {', '.join(bench.held) or 'none'}",
        "",
        table(bench),
        "",
        "| Check | Result | Detail |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {name} | {'pass' if ok else '**FAIL**'} | {detail} |" for name, ok, detail in bench.checks]
    if bench.clients.shared.cut_off:
        lines += ["", "Cut off by the kill, then repeated by the pipeline (first 10):"]
        lines += [f"- {text}" for text in bench.clients.shared.cut_off[:10]]
    failures = [op for op in bench.clients.shared.ops if not op.ok]
    if failures:
        lines += ["", "Unexpected failures (first 10):"]
        lines += [f"- phase {op.phase} {op.name}: {op.error}" for op in failures[:10]]
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--min-mb", type=int, default=1, help="smallest file, MB (default 1)")
    parser.add_argument("--max-mb", type=int, default=200, help="largest file, MB (default 200)")
    parser.add_argument("--seconds", type=int, default=180, help="seconds per phase (default 180)")
    parser.add_argument(
        "--max-total-gb",
        type=float,
        default=30.0,
        help="bytes pushed in the whole run, in GB, after which files are --min-mb: moto keeps every object, in its "
        "memory up to 5 MiB and in the work folder above (default 30)",
    )
    parser.add_argument("--web-workers", type=int, default=1, help="granian --workers per web process (default 1)")
    parser.add_argument("--visibility-timeout", type=int, default=120, help="PROVENANT_CELERY_VISIBILITY_TIMEOUT")
    parser.add_argument("--port-base", type=int, default=18100, help="first of 5 loopback ports (default 18100)")
    parser.add_argument(
        "--redis-db",
        type=int,
        default=None,
        help="an empty Redis database (default: the first empty of 12, 13, 11 … 8)",
    )
    parser.add_argument("--database-url", default=LOCAL_POSTGRES, help="the PostgreSQL server (its postgres db)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the work folder's logs")
    parser.add_argument("--smoke", action="store_true", help="4 clients, files 1-4 MB, 20 s per phase")
    args = parser.parse_args(argv)
    args.drain_margin = 60 if args.smoke else 600  # seconds past the visibility timeout the queue has to drain
    if args.smoke:
        args.clients, args.min_mb, args.max_mb, args.seconds, args.visibility_timeout = 4, 1, 4, 20, 10
        args.max_total_gb = 1.0
    if args.clients < 3 or args.min_mb < 1 or args.max_mb < args.min_mb or args.seconds < 4:
        parser.error("--clients at least 3, 1 <= --min-mb <= --max-mb, --seconds at least 4")
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    command = " ".join([".venv/bin/python", "benchmarks/topology.py", *argv])
    code = code_version()
    exit_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="provenant-topology-", dir=os.environ.get("TMPDIR")))
    progress(f"work folder {workdir}")
    bench = Bench(args, workdir)
    finished = False
    try:
        bench.prepare()
        os.environ.update(bench.env | {"PROVENANT_LOG_LEVEL": "WARNING"})  # the checks' queries, quietly
        django_setup()
        bench.run()
        finished = True
    except BenchError as error:
        return failed(error)
    finally:
        bench.cleanup()
        # A failed check keeps the logs: a 500's traceback is in the web process's log, and a run may not repeat it.
        passed = finished and all(ok for _, ok, _ in bench.checks)
        if passed and not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            shutil.rmtree(workdir / "clients", ignore_errors=True)
            shutil.rmtree(workdir / "var", ignore_errors=True)
            print(f"Logs kept in {workdir / 'logs'}", file=sys.stderr)
    print("\n" + report(bench, command, code))
    return 0 if all(ok for _, ok, _ in bench.checks) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
