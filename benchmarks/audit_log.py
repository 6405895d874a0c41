"""The audit log at scale: what an append costs the write it records, verifying and proving a million entries.

(One file of about 1,300 lines on purpose: each part's set-up, measurement and report read together. What every
benchmark needs around its measurements, the databases' code among it, is in benchmarks/harness.py.)

    .venv/bin/python benchmarks/audit_log.py [--parts append,verify,proofs,export,filters] [--entries N] [--reuse]
    .venv/bin/python benchmarks/audit_log.py --smoke

Five parts, each on PostgreSQL (--database-url, else DATABASE_URL, else postgres://postgres@127.0.0.1:5432/
provenant_bench_audit), in databases of the script's own, migrated with the app's migrations:

- append: what the entry adds to the write it records, in two meanings measured side by side in the same run:
  "bare", a project's description saved with update_fields, then `audit_record` in the same transaction, inside
  the request middleware that gives the entry its request id, address and user agent, against the identical write
  without the call; and "api", a pipeline's `PATCH /api/v1/projects/<slug>/` (JSON body, bearer token) through
  Django's whole stack in-process, where `project_update` records `project.updated` itself, against the identical
  request with every `audit_record` and `audit_record_many` module attribute replaced by a no-op in the writer
  processes only. With 1 and 8 writers (spawned processes, a connection each), in rounds that alternate with and
  without, for a fixed time each. After every run the entries it added are counted (one per recorded write, none in
  a baseline); every 8-writer run's entries are numbered without a gap or a duplicate, and the log exports and verifies.
- verify: an export of N synthetic entries, written in the exact export format without the database (signed tree
  heads every 100,000 entries and at the end), checked by `tools/audit_verify.py` in a child process.
- proofs: N entries copied into the database (COPY), the kept Merkle subtrees caught up (`extend_kept_subtrees`),
  a tree head signed, then `inclusion_proof` and `consistency_proof` at size N for random positions.
- export: `export_lines` of that database's N entries streamed to a file (then verified by the standalone
  verifier), and again under tracemalloc, to show memory stays flat from N/10 to N.
- filters: the first page of `GET /api/v1/audit/entries/?actor=...` over those N entries for an actor with no entry
  (a name, an id), a user by name and by id, and the system actor, timed; and its statement under EXPLAIN (ANALYZE,
  BUFFERS) (`--explain` prints the plans). Run at two sizes, it shows whether the filter's cost follows the log's.

The results go between the audit-log markers of benchmarks/README.md (--no-readme prints them only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from harness import (  # benchmarks/ is the script's folder, first on sys.path
    REPO,
    BenchDatabases,
    BenchError,
    code_version,
    command_line,
    configure_django,
    elapsed,
    failed,
    fmt,
    in_turn,
    machine_lines,
    memory_kb,
    progress,
    quantile,
    results_header,
    short,
    show_results,
    verdict,
)

VERIFIER = REPO / "tools" / "audit_verify.py"
RESULTS_START = "<!-- audit-log:start (written by benchmarks/audit_log.py) -->"
RESULTS_END = "<!-- audit-log:end -->"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/provenant_bench_audit"
#: The comment a database this script made carries: nothing else is ever dropped or reused.
MARKER = "provenant-bench-audit-log"
DATA_VERSION = 1
PARTS = ("append", "verify", "proofs", "export", "filters")

APPEND_TARGET = 0.20  # the log adds under 20 % to the cost of the write it records
VERIFY_TARGET_S = 10.0
PROOF_TARGET_MS = 50.0
TREE_HEAD_EVERY = 100_000
SEED = 5

# ---------------------------------------------------------------------------------------------- databases


class Databases(BenchDatabases):
    """The benchmark's own databases on the server of the given URL: `<base>_append` and `<base>_<entries>`."""

    def __init__(self, url: str) -> None:
        super().__init__(url, default_base="provenant_bench_audit", marker=MARKER)

    def settings(self) -> dict[str, str]:
        return super().settings(
            ["server_version", "shared_buffers", "synchronous_commit", "fsync", "wal_level", "max_connections"]
        )


# ---------------------------------------------------------------------------------------------- part 1: append

#: A project description of about the length people write; each write changes it.
DESCRIPTION = "Image classifiers for the quality line; retrained weekly on the labelled defects of the last quarter."
USER_AGENT = "provenant-cli/1.4.2 python-requests/2.32.3 CPython/3.11.7 Linux/6.8.0"
#: The two meanings of "the write an entry records", each timed with and without its entry.
WRITE_KINDS = {
    "bare": "bare UPDATE (service's transaction)",
    "api": "PATCH /api/v1/projects/<slug>/ (bearer token)",
}
#: Beyond this many points more cost with the most writers than with one, the results say why (the head-row lock).
CONTENTION_NOTE_POINTS = 0.05


def recorded_write(project, number: int, *, audited: bool) -> None:
    """What a service does for `project_update(project, description=...)`: the row saved with update_fields and,
    when `audited`, the entry recorded last in the same transaction. The baseline is the same without the entry."""
    from django.db import transaction

    from core.audit.recorder import audit_record

    before = project.description
    after = f"{DESCRIPTION} (revision {number})"
    with transaction.atomic():
        project.description = after
        project.save(update_fields=["description"])
        if audited:
            audit_record("project.updated", obj=project, changes={"description": [before, after]})


def _audit_record_switched_off(*_args: object, **_kwargs: object) -> None:
    """Stands in for `audit_record` in a writer process while the API baseline runs: records nothing."""
    return None


def _audit_record_many_switched_off(*_args: object, **_kwargs: object) -> list:
    """Stands in for `audit_record_many` (what a change set records with) the same way."""
    return []


_REAL_RECORDERS: dict[str, Callable] = {}
_SWITCHED_OFF = {"audit_record": _audit_record_switched_off, "audit_record_many": _audit_record_many_switched_off}


def switch_audit_recording(on: bool) -> int:
    """Turn audit recording on or off in THIS process only, for the API write's baseline: every module attribute
    named `audit_record` or `audit_record_many` (core.audit.recorder's own, and each importer's: core.changes,
    through which services record, and the login signals) is set to the real function or to a no-op. Production
    code is not touched. Returns how many attributes were set; one that is neither (a wrapper nobody told the
    benchmark about) is an error, not a silent miss."""
    from core.audit import recorder as audit

    for name in _SWITCHED_OFF:
        _REAL_RECORDERS.setdefault(name, getattr(audit, name))
        if _REAL_RECORDERS[name] is _SWITCHED_OFF[name]:
            raise BenchError(f"{name} was switched off before the benchmark saw the real one")
    switched = 0
    for module_name, module in list(sys.modules.items()):
        attributes = getattr(module, "__dict__", None)
        if not isinstance(attributes, dict):
            continue
        for name, off in _SWITCHED_OFF.items():
            if name not in attributes:
                continue
            real, current = _REAL_RECORDERS[name], attributes[name]
            if current is not real and current is not off:
                raise BenchError(f"{module_name}.{name} is not core.audit.recorder.{name}; cannot switch it")
            setattr(module, name, real if on else off)
            switched += 1
    return switched


def writer_main(index: int, url: str, var_dir: str, token: str, commands, answers) -> None:
    """A writer process: its own connection, user, project and API token; runs the writes it is told to, for the
    time it is told, and answers (index, None, latencies in ms), or (index, error text, None) when a write fails."""
    import traceback

    try:
        configure_django(url, var_dir, secret_key=os.environ.get("PROVENANT_BENCH_SECRET"))
        write = writer_setup(index, token)
    except Exception:
        answers.put((index, traceback.format_exc(), None))
        return
    while True:
        command = commands.get()
        if command[0] == "stop":
            return
        try:
            if command[0] == "warmup":
                for kind in WRITE_KINDS:
                    for audited in (True, False) * command[1]:
                        switch_audit_recording(audited or kind == "bare")
                        write(kind, audited)
                answers.put((index, None, []))
                continue
            _, kind, audited, start_at, seconds = command
            switch_audit_recording(audited or kind == "bare")
            time.sleep(max(0.0, start_at - time.time()))
            end, latencies = time.perf_counter() + seconds, []
            while (now := time.perf_counter()) < end:
                write(kind, audited)
                latencies.append((time.perf_counter() - now) * 1000)
            answers.put((index, None, latencies))
        except Exception:
            answers.put((index, traceback.format_exc(), None))


def writer_setup(index: int, token: str) -> Callable[[str, bool], None]:
    """The writer's `write(kind, audited)`: the bare write inside the audit middleware, or the API request."""
    from django.contrib.auth import get_user_model
    from django.http import HttpResponse
    from django.test import Client, RequestFactory

    from artifacts.models import Project
    from core.audit.context import AuditContextMiddleware

    user = get_user_model().objects.get(username=f"bench-writer-{index}")
    project = Project.objects.get(slug=f"bench-audit-{index}")
    path = f"/api/v1/projects/{project.slug}/"
    address = f"10.20.{index}.17"
    request = RequestFactory().patch(path, REMOTE_ADDR=address, HTTP_USER_AGENT=USER_AGENT)
    request.user, request.auth = user, None
    # What a pipeline sends: its bearer token and user agent, a JSON body; the whole stack runs (middleware, DRF
    # authentication and permission checks, the serializer, project_update, the response rendered as JSON).
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_USER_AGENT=USER_AGENT, REMOTE_ADDR=address)
    number = 0

    def write(kind: str, audited: bool) -> None:
        nonlocal number
        number += 1
        if kind == "bare":

            def respond(_request) -> HttpResponse:
                recorded_write(project, number, audited=audited)
                return HttpResponse(status=200)

            AuditContextMiddleware(respond)(request)
            return
        description = f"{DESCRIPTION} (API revision {number})"
        response = client.patch(path, data=json.dumps({"description": description}), content_type="application/json")
        if response.status_code != 200:
            raise BenchError(f"PATCH {path} answered {response.status_code}: {response.content[:500]!r}")

    return write


@dataclass
class AppendRun:
    """The writes of one kind and variant with one number of writers, over all rounds."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds


@dataclass
class SequenceCheck:
    """The entries one run with the entry added, after the most writers' run."""

    kind: str
    writes: int
    count: int
    low: int
    high: int
    size: int

    @property
    def ok(self) -> bool:
        return self.writes == self.count == self.high - self.low + 1 and self.size == self.high + 1


@dataclass
class AppendResults:
    runs: dict[tuple[str, int, bool], AppendRun] = field(default_factory=dict)  # (kind, writers, audited)
    sequence_checks: list[SequenceCheck] = field(default_factory=list)
    whole_log: tuple[int, int, int, int] = (0, 0, 0, 0)  # entries, min, max, head size
    verifier: str = ""


class Writers:
    """Writer processes, started once (spawned: a fresh interpreter and connection each) and told what to run."""

    def __init__(self, count: int, url: str, var_dir: str, tokens: list[str]) -> None:
        context = multiprocessing.get_context("spawn")
        self.answers = context.Queue()
        self.commands = [context.Queue() for _ in range(count)]
        self.processes = [
            context.Process(target=writer_main, args=(index, url, var_dir, token, queue, self.answers), daemon=True)
            for index, (queue, token) in enumerate(zip(self.commands, tokens, strict=True))
        ]
        for process in self.processes:
            process.start()

    def ask(self, count: int, command: tuple, timeout: float) -> list[list[float]]:
        for queue in self.commands[:count]:
            queue.put(command)
        answers, errors = [], []
        for _ in range(count):
            try:
                index, error, latencies = self.answers.get(timeout=timeout)
            except Exception as exception:  # queue.Empty; a writer that died says so in its own traceback
                raise BenchError(f"a writer did not answer within {timeout:.0f} s") from exception
            if error is not None:
                errors.append(f"writer {index}:\n{error}")
            else:
                answers.append(latencies)
        if errors:
            raise BenchError("a write failed:\n" + "\n".join(errors))
        return answers

    def stop(self) -> None:
        for queue in self.commands:
            with suppress(Exception):
                queue.put(("stop",))
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()


def log_head_size() -> int:
    from core.audit.tree import log_size

    return log_size()


def check_sequence(since: int) -> tuple[int, int, int, int]:
    """Entries from `since` on: count, lowest and highest seq, and the head's size."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), min(seq), max(seq) FROM core_auditentry WHERE seq >= %s", [since])
        count, low, high = cursor.fetchone()
    return count, low if low is not None else -1, high if high is not None else -1, log_head_size()


def entries_recorded(since: int) -> tuple[int, int]:
    """Entries from `since` on: all of them, and those that say `project.updated`."""
    from core.models import AuditEntry

    entries = AuditEntry.objects.filter(seq__gte=since)
    return entries.count(), entries.filter(action="project.updated").count()


def require_project_update_records() -> None:
    """Fail now, loudly, when project_update does not record `project.updated`: the API write would then
    measure a request with no entry against the same request with no entry."""
    import inspect

    from artifacts.services import catalog

    if "AuditAction.PROJECT_UPDATED" not in inspect.getsource(catalog.project_update):
        raise BenchError(
            "artifacts.services.catalog.project_update does not record AuditAction.PROJECT_UPDATED, so the API write "
            "records no entry and there is nothing to measure; record `project.updated` there first"
        )


def require_entries(kind: str, count: int, audited: bool, writes: int, before: int) -> None:
    """Each recorded write added exactly one `project.updated` entry, and each baseline write none."""
    added, updates = entries_recorded(before)
    expected = writes if audited else 0
    if added != expected or updates != expected:
        variant = "with the entry" if audited else "baseline (audit_record switched off)"
        hint = ""
        if not audited:
            hint = " Did switching audit_record off miss a module?"
        elif kind == "api" and updates == 0:
            hint = " Does project_update call audit_record?"
        raise BenchError(
            f"{kind} write, {count} writer(s), {variant}: {writes:,} writes added {added:,} entries "
            f"({updates:,} project.updated), expected {expected:,}.{hint}"
        )


def run_append(args: argparse.Namespace, databases: Databases, var_dir: str) -> AppendResults:
    """Both kinds of write, recorded against unrecorded, 1 and `--writers` writers, rounds alternating."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    from artifacts.access.roles import Role
    from artifacts.access.services import role_grant
    from artifacts.models import Project
    from governance.access.services.tokens import api_token_issue

    require_project_update_records()
    name = f"{databases.base}_append"
    databases.migrated(name, {"data": DATA_VERSION, "part": "append"}, reuse=False)
    if args.synchronous_commit:
        from psycopg import sql

        with databases.admin() as admin:
            admin.execute(
                sql.SQL("ALTER DATABASE {} SET synchronous_commit = {}").format(
                    sql.Identifier(name), sql.Literal(args.synchronous_commit)
                )
            )
    most = max(args.writers)
    tokens = []
    for index in range(most):
        user = get_user_model().objects.create_user(username=f"bench-writer-{index}", password=None)
        project = Project.objects.create(
            slug=f"bench-audit-{index}", name=f"Audit bench {index}", description=DESCRIPTION
        )
        # A pipeline's account: maintainer of its project (the role PATCH needs), not a superuser.
        role_grant(obj=project, role=Role.MAINTAINER, user=user, granted_by=None)
        _, plaintext = api_token_issue(user=user, name="audit benchmark pipeline", lifetime=dt.timedelta(days=1))
        tokens.append(plaintext)
    databases.set_comment(name, f"{MARKER}: append")
    connections.close_all()
    results = AppendResults()
    progress(f"starting {most} writer processes")
    writers = Writers(most, databases.url(name), var_dir, tokens)
    try:
        writers.ask(most, ("warmup", args.warmup), timeout=180)
        for number in range(1, args.rounds + 1):
            order = in_turn(number, True, False)
            for count in args.writers:
                for kind in WRITE_KINDS:
                    for audited in order:
                        progress(
                            f"round {number}/{args.rounds}: {kind} write, {count} writer(s), "
                            f"{'with the audit entry' if audited else 'without (baseline)'}, {args.seconds:g} s"
                        )
                        before = log_head_size()
                        answers = writers.ask(
                            count, ("run", kind, audited, time.time() + 0.5, args.seconds), timeout=args.seconds + 120
                        )
                        run = results.runs.setdefault((kind, count, audited), AppendRun())
                        run.seconds += args.seconds
                        writes = sum(len(latencies) for latencies in answers)
                        run.latencies += [ms for latencies in answers for ms in latencies]
                        require_entries(kind, count, audited, writes, before)
                        if audited and count == most:
                            results.sequence_checks.append(SequenceCheck(kind, writes, *check_sequence(before)))
    finally:
        writers.stop()
    results.whole_log = check_sequence(0)
    results.verifier = verify_database_export(var_dir)
    connections.close_all()
    return results


def verify_database_export(var_dir: str) -> str:
    """Sign a tree head over the log, export it and run the standalone verifier: its first line, or the failure."""
    from core.audit.recorder import export_lines, tree_head_sign

    head = tree_head_sign()
    path, key = Path(var_dir) / "append-export.jsonl", public_key_file(var_dir)
    with path.open("wb") as handle:
        for line in export_lines(head):
            handle.write(line)
    run = run_verifier(path, key)
    path.unlink()
    return run.output.splitlines()[0] if run.output else f"exit status {run.status}"


# ---------------------------------------------------------------------------------------------- synthetic entries

ACTIONS = [
    ("blob.downloaded", "blob"),
    ("blob.downloaded", "blob"),
    ("blob.presigned_url_issued", "blob"),
    ("artifact_version.published", "artifact_version"),
    ("model_version.stage_changed", "model_version"),
    ("blob.verified", "blob"),
    ("run.created", "run"),
    ("dataset_version.created", "dataset_version"),
    ("project.updated", "project"),
    ("role_grant.granted", "role_grant"),
    ("api_token.issued", "api_token"),
    ("user.logged_in", "user"),
    ("user.login_failed", "user"),
    ("promotion_request.approved", "promotion_request"),
]
USER_AGENTS = [
    USER_AGENT,
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1",
    "python-requests/2.32.3",
    "",
]
STAGES = ["none", "staging", "production", "archived"]


def synthetic_entries(count: int) -> Iterator:
    """`count` unsaved AuditEntry rows numbered 0..count-1 with realistic values (labels, a changes summary of
    100-300 bytes, addresses, user agents), each with its leaf hash, the same for the same count every time."""
    from core.audit.recorder import entry_bytes
    from core.crypto.merkle import canonical_json, leaf_hash
    from core.models import AuditEntry

    rng = random.Random(SEED)
    start = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
    projects = [f"team-{n:03d}-{word}" for n, word in enumerate(["vision", "speech", "ranking", "fraud", "nlp"] * 20)]
    users = [f"user{n:04d}" for n in range(1000)]
    for seq in range(count):
        action, object_type = ACTIONS[rng.randrange(len(ACTIONS))]
        project = rng.randrange(len(projects))
        artifact = project * 100 + rng.randrange(100)
        version = rng.randrange(1, 60)
        digest = rng.getrandbits(256).to_bytes(32, "big").hex()
        if object_type == "artifact_version":
            label = f"{projects[project]}/model-{artifact}:v{version}"
            if action.endswith("stage_changed"):
                stage = rng.randrange(3)
                changes = {"stage": [STAGES[stage], STAGES[stage + 1]], "promotion_request": rng.randrange(10**5)}
                changes["note"] = "Promoted after the weekly evaluation: accuracy and latency within the agreed bounds."
            else:
                changes = {"digest": f"sha256:{digest}", "size": rng.randrange(10**6, 10**10), "via": "api"}
        else:
            label = f"{projects[project]}/{object_type}-{rng.randrange(10**5)}"
            changes = {
                "name": [f"{object_type}-{version}", f"{object_type}-{version + 1}"],
                "description": [DESCRIPTION[: rng.randrange(20, 60)], DESCRIPTION[: rng.randrange(60, 100)]],
            }
        user = rng.randrange(len(users) + 50)
        system = user >= len(users)
        entry = AuditEntry(
            seq=seq,
            recorded_at=start + dt.timedelta(microseconds=seq * 500_000 + rng.randrange(500_000)),
            actor_kind="system" if system else "user",
            actor_user_id=None if system else user + 1,
            actor_label="task artifacts.tasks.verify_blob" if system else users[user],
            token_id=None if system or rng.random() < 0.5 else rng.randrange(1, 5000),
            action=action,
            object_type=object_type,
            object_id=str(rng.randrange(1, 10**6)),
            object_label=label,
            project_id=project + 1,
            project_label=projects[project],
            artifact_id=artifact + 1 if object_type == "artifact_version" else None,
            request_id="" if system else f"{rng.getrandbits(128):032x}",
            source_ip="" if system else f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            user_agent="" if system else USER_AGENTS[rng.randrange(len(USER_AGENTS))],
            changes=canonical_json(changes).decode(),
        )
        entry.leaf_hash = leaf_hash(entry_bytes(entry))
        yield entry


def public_key_file(var_dir: str) -> Path:
    from core.audit import signing

    path = Path(var_dir) / "audit-key.pub"
    path.write_text(signing.public_key_pem())
    return path


def unsaved_tree_head(size: int, root: bytes):
    """A SignedTreeHead over `size` entries with `root`, signed with the server's key, not saved."""
    from django.utils import timezone

    from core.audit import signing
    from core.audit.recorder import format_time
    from core.crypto.merkle import tree_head_message
    from core.models import SignedTreeHead

    signed_at = timezone.now()
    key = signing.signing_key_id()
    message = tree_head_message(tree_size=size, root_hash=root.hex(), signed_at=format_time(signed_at), key=key)
    return SignedTreeHead(
        tree_size=size,
        root_hash=root.hex(),
        signed_at=signed_at,
        key_id=key,
        public_key=signing.public_key_base64(),
        signature=signing.sign(message),
    )


def write_synthetic_export(path: Path, count: int) -> None:
    """An export of `count` synthetic entries in the exact format `export_lines` writes: header, tree heads
    (every 100,000 entries and at the end), entries. The entries go to a side file first, as the heads that
    precede them are only known once their roots are."""
    from core.audit import signing
    from core.audit.recorder import entry_line, format_time, tree_head_document
    from core.crypto.merkle import EXPORT_FORMAT, Frontier, canonical_json

    frontier, heads = Frontier(), []
    entries_path = path.with_suffix(".entries")
    with entries_path.open("wb") as handle:
        for entry in synthetic_entries(count):
            handle.write(entry_line(entry))
            frontier.append(bytes(entry.leaf_hash))
            if frontier.size % TREE_HEAD_EVERY == 0 or frontier.size == count:
                heads.append(unsaved_tree_head(frontier.size, frontier.root()))
    header = {
        "format": EXPORT_FORMAT,
        "tree_size": count,
        "exported_at": format_time(dt.datetime.now(dt.UTC)),
        "public_keys": {signing.signing_key_id(): signing.public_key_base64()},
    }
    with path.open("wb") as handle:
        handle.write(canonical_json({"header": header}) + b"\n")
        for head in heads:
            handle.write(canonical_json({"tree_head": tree_head_document(head)}) + b"\n")
        with entries_path.open("rb") as entries:
            shutil.copyfileobj(entries, handle, 1 << 20)
    entries_path.unlink()


@dataclass
class VerifierRun:
    status: int
    seconds: float
    peak_rss_mb: float
    output: str


def run_verifier(path: Path, key: Path) -> VerifierRun:
    """`python tools/audit_verify.py PATH --public-key KEY` in a child process: wall time and its own peak
    RSS (from wait4, so other children of this process do not count)."""
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, str(VERIFIER), str(path), "--public-key", str(key)], stdout=output, stderr=output
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read().decode(errors="replace").strip()
    return VerifierRun(process.returncode, seconds, usage.ru_maxrss / 1024, text)


@dataclass
class VerifyResults:
    entries: int = 0
    file_bytes: int = 0
    generate_seconds: float = 0.0
    runs: list[VerifierRun] = field(default_factory=list)


def run_verify(args: argparse.Namespace, var_dir: str) -> VerifyResults:
    path, key = Path(var_dir) / "synthetic-export.jsonl", public_key_file(var_dir)
    progress(f"writing a synthetic export of {args.entries:,} entries")
    started = time.perf_counter()
    write_synthetic_export(path, args.entries)
    results = VerifyResults(args.entries, path.stat().st_size, time.perf_counter() - started)
    progress(f"written in {results.generate_seconds:.1f} s ({results.file_bytes / 1e6:,.0f} MB)")
    for number in range(1, args.verify_runs + 1):
        run = run_verifier(path, key)
        progress(f"verifier run {number}/{args.verify_runs}: {run.seconds:.2f} s, exit {run.status}")
        if run.status != 0:
            raise BenchError(f"the verifier rejected the synthetic export: {run.output}")
        results.runs.append(run)
    path.unlink()
    return results


# ---------------------------------------------------------------------------------------------- proofs and export

COPY_COLUMNS = (
    "seq, recorded_at, actor_kind, actor_user_id, actor_label, token_id, action, object_type, object_id, "
    "object_label, project_id, project_label, artifact_id, request_id, source_ip, user_agent, changes, leaf_hash"
)


def load_entries(count: int) -> float:
    """Empty the log, COPY `count` synthetic entries in, and set the head to `count` (TRUNCATE and INSERT: the
    head's trigger refuses any update but +1, and row triggers do not see TRUNCATE). Returns the seconds taken."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE core_auditentry, core_auditloghead, core_audittreenode, core_signedtreehead")
        with cursor.cursor.copy(f"COPY core_auditentry ({COPY_COLUMNS}) FROM STDIN") as copy:
            for entry in synthetic_entries(count):
                copy.write_row(
                    (
                        entry.seq,
                        entry.recorded_at,
                        entry.actor_kind,
                        entry.actor_user_id,
                        entry.actor_label,
                        entry.token_id,
                        entry.action,
                        entry.object_type,
                        entry.object_id,
                        entry.object_label,
                        entry.project_id,
                        entry.project_label,
                        entry.artifact_id,
                        entry.request_id,
                        entry.source_ip,
                        entry.user_agent,
                        entry.changes,
                        entry.leaf_hash,
                    )
                )
                if entry.seq and entry.seq % 200_000 == 0:
                    progress(f"  {entry.seq:,} entries copied")
        cursor.execute("INSERT INTO core_auditloghead (id, size) VALUES (1, %s)", [count])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE core_auditentry")
    return time.perf_counter() - started


def trim_log(count: int) -> None:
    """Cut a reused log back to its first `count` entries (an earlier run's API timing appended one): with the
    session's triggers off, which only a superuser may do, and only in this benchmark's own database."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM core_auditentry WHERE seq >= %s", [count])
        cursor.execute("UPDATE core_auditloghead SET size = %s WHERE id = 1", [count])


@dataclass
class ProofResults:
    load_seconds: float | None = None
    extend_seconds: float = 0.0
    nodes: int = 0
    sign_seconds: float = 0.0
    inclusion: list[float] = field(default_factory=list)
    consistency: list[float] = field(default_factory=list)
    inclusion_lengths: list[int] = field(default_factory=list)
    consistency_lengths: list[int] = field(default_factory=list)
    api: dict[str, list[float]] = field(default_factory=dict)
    api_missing: str = ""


def prepare_loaded(args: argparse.Namespace, databases: Databases) -> float | None:
    """The database of N entries: reused with --reuse when complete, else made and loaded (returns the load time)."""
    name = f"{databases.base}_{short(args.entries)}"
    parameters = {"data": DATA_VERSION, "entries": args.entries}
    if databases.migrated(name, parameters, reuse=args.reuse):
        from core.models import AuditEntry

        if AuditEntry.objects.filter(seq__lt=args.entries).count() == args.entries:
            trim_log(args.entries)
            return None
        progress(f"{name} does not hold the {args.entries:,} entries it should; loading it again")
    progress(f"copying {args.entries:,} synthetic entries into {name}")
    seconds = load_entries(args.entries)
    databases.mark_complete(name, parameters)
    progress(f"loaded in {seconds:.1f} s")
    return seconds


def timed_ms(call: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    answer = call()
    return (time.perf_counter() - started) * 1000, answer


def run_proofs(args: argparse.Namespace) -> ProofResults:
    """Catch the kept subtrees up from nothing, sign a head, then time proofs at size N (each checked)."""
    from django.db import connection

    from core.audit import tree as audit_tree
    from core.audit.recorder import tree_head_sign
    from core.crypto.merkle import verify_consistency, verify_inclusion
    from core.models import AuditEntry, AuditTreeNode, SignedTreeHead

    size, results = args.entries, ProofResults()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE core_audittreenode, core_signedtreehead")
    progress(f"extend_kept_subtrees({size:,}) from no kept subtree")
    started = time.perf_counter()
    audit_tree.extend_kept_subtrees(size)
    results.extend_seconds = time.perf_counter() - started
    results.nodes = AuditTreeNode.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE core_audittreenode")
    started = time.perf_counter()
    head = tree_head_sign()
    results.sign_seconds = time.perf_counter() - started
    if head is None or head.tree_size != size:
        raise BenchError(f"the signed head covers {getattr(head, 'tree_size', None)} entries, not {size:,}")
    root = bytes.fromhex(head.root_hash)
    rng = random.Random(SEED)
    progress(f"timing {args.proofs} inclusion and {args.proofs} consistency proofs at size {size:,}")
    for number in range(args.warmup + args.proofs):
        seq = rng.randrange(size)
        ms, proof = timed_ms(lambda seq=seq: audit_tree.inclusion_proof(seq, size))
        leaf = bytes(AuditEntry.objects.values_list("leaf_hash", flat=True).get(seq=seq))
        if not verify_inclusion(seq, size, leaf, proof, root):
            raise BenchError(f"the inclusion proof of seq {seq} at size {size} does not verify")
        first = rng.randrange(1, size)
        ms2, proof2 = timed_ms(lambda first=first: audit_tree.consistency_proof(first, size))
        if not verify_consistency(first, size, audit_tree.root_at(first), root, proof2):
            raise BenchError(f"the consistency proof {first} → {size} does not verify")
        if number >= args.warmup:
            results.inclusion.append(ms)
            results.consistency.append(ms2)
            results.inclusion_lengths.append(len(proof))
            results.consistency_lengths.append(len(proof2))
    if not SignedTreeHead.objects.filter(tree_size=size).exists():
        raise BenchError(f"no signed tree head of size {size:,} after the proofs")
    time_api_proofs(args, results)
    return results


def time_api_proofs(args: argparse.Namespace, results: ProofResults) -> None:
    """The same proofs through the API (Django's test client, the whole URL stack, a superuser's bearer token),
    where the endpoints exist; issuing the token appends an entry, after the N the proofs are about."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from governance.access.services.tokens import api_token_issue

    size, rng, client = args.entries, random.Random(SEED + 1), Client()
    user = get_user_model().objects.filter(username="bench-auditor").first()
    user = user or get_user_model().objects.create_superuser(username="bench-auditor", password=None)
    _, plaintext = api_token_issue(user=user, name="audit benchmark", lifetime=dt.timedelta(hours=12))
    header = {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}
    urls = {
        "inclusion": lambda: f"/api/v1/audit/entries/{rng.randrange(size)}/proof/?tree_size={size}",
        "consistency": lambda: f"/api/v1/audit/tree-heads/consistency/?first={rng.randrange(1, size)}&second={size}",
    }
    progress(f"timing {args.proofs} proofs of each kind through the API")
    for kind, url in urls.items():
        samples = results.api.setdefault(kind, [])
        for number in range(args.warmup + args.proofs):
            path = url()
            ms, response = timed_ms(lambda path=path: client.get(path, **header))
            if response.status_code != 200:
                results.api_missing = f"GET {path} answered {response.status_code}"
                results.api.clear()
                return
            if number >= args.warmup:
                samples.append(ms)


#: The actor filters the filters part times: (what it asks, the query string). The synthetic users are user0000 to
#: user0999 with ids 1 to 1000, about one entry in 1,050 each; the one system actor has about one in 21.
ACTOR_FILTERS = [
    ("no match, a name", "actor=nobody-at-all"),
    ("no match, an id", "actor=987654"),
    ("a user by name", "actor=user0042"),
    ("a user by id", "actor=43"),
    ("the system actor (1 entry in 21)", "actor=task+artifacts.tasks.verify_blob"),
]


@dataclass
class FilterResults:
    samples: dict[str, list[float]] = field(default_factory=dict)  # query string -> ms
    rows: dict[str, list[int]] = field(default_factory=dict)  # query string -> the first page's seqs
    plans: dict[str, tuple[float, int, str]] = field(default_factory=dict)  # execution ms, buffers, plan


def bench_auditor_header() -> dict[str, str]:
    """A superuser's bearer token (issuing it appends an entry, after the N the parts are about)."""
    from django.contrib.auth import get_user_model

    from governance.access.services.tokens import api_token_issue

    user = get_user_model().objects.filter(username="bench-auditor").first()
    user = user or get_user_model().objects.create_superuser(username="bench-auditor", password=None)
    _, plaintext = api_token_issue(user=user, name="audit benchmark", lifetime=dt.timedelta(hours=12))
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


def run_filters(args: argparse.Namespace) -> FilterResults:
    """The first page of `GET /api/v1/audit/entries/?actor=...` for each of ACTOR_FILTERS (a superuser: every
    entry is visible, so the filter alone decides), timed; then the page's statement on the log under EXPLAIN
    (ANALYZE, BUFFERS)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    results, client, header = FilterResults(), Client(), bench_auditor_header()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE core_auditentry")
    progress(f"timing {args.proofs} calls of each actor filter")
    for _, query in ACTOR_FILTERS:
        path = f"/api/v1/audit/entries/?{query}"
        samples = results.samples.setdefault(query, [])
        for number in range(args.warmup + args.proofs):
            ms, response = timed_ms(lambda path=path: client.get(path, **header))
            if response.status_code != 200:
                raise BenchError(f"GET {path} answered {response.status_code}: {response.content[:300]!r}")
            if number >= args.warmup:
                samples.append(ms)
        results.rows[query] = [entry["seq"] for entry in response.json()["results"]]
        with CaptureQueriesContext(connection) as queries:
            client.get(path, **header)
        statements = [q["sql"] for q in queries.captured_queries if '"core_auditentry"' in q["sql"]]
        execution, buffers, plans = 0.0, 0, []
        for sql in statements:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                text = "\n".join(row[0] for row in cursor.fetchall())
            execution += float(text.rsplit("Execution Time: ", 1)[1].split(" ")[0])
            touched = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", text)  # the top node's: all of it
            buffers += sum(int(part or 0) for part in touched.groups()) if touched else 0
            plans.append(f"{sql}\n{text}")
        results.plans[query] = (execution, buffers, "\n\n".join(plans))
        if args.explain:
            print(f"-- {args.entries:,} entries, ?{query}\n{results.plans[query][2]}\n", file=sys.stderr)
    pages = [results.rows[query] for _, query in ACTOR_FILTERS]
    if pages[0] or pages[1] or pages[2] != pages[3] or not pages[4]:
        raise BenchError(
            "the actor filter answered wrongly: no entry expected for nobody-at-all and 987654, the same entries for "
            f"user0042 and its id 43, some for the system actor; got {[len(page) for page in pages]} rows"
        )
    return results


def filters_report(args: argparse.Namespace, results: FilterResults) -> list[str]:
    lines = [
        "### The actor filter at this size",
        "",
        f"The first page of `GET /api/v1/audit/entries/?actor=...` (a superuser's bearer token, Django's test client) "
        f"over {args.entries:,} entries, {args.proofs} calls each after {args.warmup} warm-up calls; then the page's "
        "statements on the log under EXPLAIN (ANALYZE, BUFFERS): execution time and shared buffers of the first "
        "plan node.",
        "",
        "| Filter | Query string | Rows | p50 ms | p95 ms | max ms | DB execution ms | Buffers |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, query in ACTOR_FILTERS:
        samples = results.samples[query]
        execution, buffers, _ = results.plans[query]
        lines.append(
            f"| {name} | `?{query}` | {len(results.rows[query])} | {fmt(statistics.median(samples))} | "
            f"{fmt(quantile(samples, 0.95))} | {fmt(max(samples))} | {execution:.2f} | {buffers:,} |"
        )
    return lines


def rss_mb() -> float:
    return memory_kb(os.getpid())["VmRSS"] / 1024


@dataclass
class ExportResults:
    entries: int = 0
    seconds: float = 0.0
    file_bytes: int = 0
    verifier: VerifierRun | None = None
    traced_seconds: float = 0.0
    checkpoints: list[tuple[int, float, float]] = field(default_factory=list)  # entries, traced peak MB, RSS MB


def run_export(args: argparse.Namespace, var_dir: str) -> ExportResults:
    """Stream the export of the loaded log to a file (timed), verify it, then stream it again under tracemalloc."""
    from core.audit.recorder import export_lines, tree_head_sign
    from core.models import SignedTreeHead

    head = SignedTreeHead.objects.filter(tree_size=args.entries).first() or tree_head_sign()
    results = ExportResults(entries=head.tree_size)
    path = Path(var_dir) / "database-export.jsonl"
    progress(f"exporting {head.tree_size:,} entries to a file")
    started = time.perf_counter()
    with path.open("wb") as handle:
        for line in export_lines(head):
            handle.write(line)
    results.seconds = time.perf_counter() - started
    results.file_bytes = path.stat().st_size
    progress(f"exported in {results.seconds:.1f} s; verifying it")
    results.verifier = run_verifier(path, public_key_file(var_dir))
    path.unlink()
    if results.verifier.status != 0:
        raise BenchError(f"the verifier rejected the database's export: {results.verifier.output}")
    progress("exporting again to /dev/null under tracemalloc")
    marks = {max(1, head.tree_size // 10), head.tree_size}
    tracemalloc.start()
    started = time.perf_counter()
    entries = 0
    with open(os.devnull, "wb") as sink:
        for line in export_lines(head):
            sink.write(line)
            if line.startswith(b'{"leaf_hash":'):
                entries += 1
                if entries in marks:
                    results.checkpoints.append((entries, tracemalloc.get_traced_memory()[1] / 1e6, rss_mb()))
    results.traced_seconds = time.perf_counter() - started
    tracemalloc.stop()
    return results


# ---------------------------------------------------------------------------------------------- report


def machine(databases: Databases) -> list[str]:
    settings = databases.settings()
    version = settings.pop("server_version")
    return [
        *machine_lines(("Django", "psycopg", "cryptography")),
        f"- PostgreSQL {version} on the same machine over TCP loopback "
        f"({', '.join(f'{name} {value}' for name, value in settings.items())}); DEBUG off",
    ]


def append_report(args: argparse.Namespace, results: AppendResults, misses: list[str]) -> list[str]:
    lines = [
        "### Append: what the audit entry adds to the write it records",
        "",
        f"Each writer in its own process and connection; {args.rounds} rounds of {args.seconds:g} s per row, the "
        "two variants alternating (which goes first swaps each round), after "
        f"{args.warmup} warm-up writes of each"
        + (f", synchronous_commit {args.synchronous_commit}" if args.synchronous_commit else "")
        + ". Two meanings of the write the entry records, measured side by side in the same run:",
        "",
        "- bare: a project's description saved with update_fields in a transaction, inside the request middleware; "
        "with the entry, `audit_record` is its last step (actor, request id, address and user agent from the "
        "request, changes {description: [before, after]}). The smallest write there is, so the highest share.",
        "- api: what a pipeline sends, `PATCH /api/v1/projects/<slug>/` with a JSON body changing the description "
        "and a maintainer's bearer token, through Django's whole stack in-process (test client: middleware, token "
        "authentication, permission check, serializer, `project_update`, JSON response; each answer checked to "
        "be 200). With the entry, `project_update` records `project.updated` itself; the baseline is the identical "
        "request with every module attribute `audit_record` replaced by a no-op in the writer processes only.",
        "",
        "After every run the entries it added are counted: one `project.updated` per write with the entry, none "
        "in a baseline.",
        "",
        "| Write | Writers | Baseline writes/s | With audit writes/s | Baseline p50 / p95 ms | With audit p50 / p95 ms "
        "| Cost added (time per write) | Target | Result |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    costs: dict[tuple[str, int], float] = {}
    for kind, label in WRITE_KINDS.items():
        for count in args.writers:
            base, audited = results.runs[(kind, count, False)], results.runs[(kind, count, True)]
            added = costs[(kind, count)] = base.per_second / audited.per_second - 1
            passed = added < APPEND_TARGET
            if not passed:
                misses.append(f"append, {kind} write, {count} writer(s): +{added:.0%} per write")
            row = [
                label,
                str(count),
                f"{base.per_second:,.0f}",
                f"{audited.per_second:,.0f}",
                f"{fmt(statistics.median(base.latencies))} / {fmt(quantile(base.latencies, 0.95))}",
                f"{fmt(statistics.median(audited.latencies))} / {fmt(quantile(audited.latencies, 0.95))}",
                f"{added:+.0%}",
                f"< +{APPEND_TARGET:.0%}",
                verdict(passed),
            ]
            lines.append("| " + " | ".join(row) + " |")
    lines += contention_note(args, results, costs)
    lines += ["", f"Sequence after each {max(args.writers)}-writer run with the entry:", ""]
    lines += ["| Run | Write | Writes reported | Entries added | Lowest seq | Highest seq | Head size | Result |"]
    lines += ["| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for number, check in enumerate(results.sequence_checks, 1):
        if not check.ok:
            misses.append(f"append: sequence check {number} ({check.kind}) failed")
        lines.append(
            f"| {number} | {check.kind} | {check.writes:,} | {check.count:,} | {check.low:,} | {check.high:,} | "
            f"{check.size:,} | {verdict(check.ok)} |"
        )
    count, low, high, size = results.whole_log
    whole_ok = count == high + 1 == size and low == 0
    if not whole_ok:
        misses.append("append: the whole log has a gap")
    lines += [
        "",
        f"The whole log afterwards: {count:,} entries, seq {low:,} to {high:,}, head size {size:,} "
        f"({'no gap, no duplicate' if whole_ok else 'GAP OR DUPLICATE'}); exported and checked by the standalone "
        f"verifier: `{results.verifier}`",
    ]
    return lines


def contention_note(args: argparse.Namespace, results: AppendResults, costs: dict[tuple[str, int], float]) -> list[str]:
    """A note on the head-row lock when the most writers pay clearly more for the entry than one writer does."""
    fewest, most = min(args.writers), max(args.writers)
    if fewest == most:
        return []

    def scaling(kind: str, audited: bool) -> float:
        return results.runs[(kind, most, audited)].per_second / results.runs[(kind, fewest, audited)].per_second

    shown = [kind for kind in WRITE_KINDS if costs[(kind, most)] - costs[(kind, fewest)] > CONTENTION_NOTE_POINTS]
    if not shown:
        costs_text = ", ".join(
            f"{kind} {costs[(kind, fewest)]:+.0%} then {costs[(kind, most)]:+.0%}" for kind in WRITE_KINDS
        )
        return [
            "",
            f"No sign of the head-row lock at {most} writers: the entry costs about as much as with {fewest} "
            f"({costs_text}).",
        ]
    facts = "; ".join(
        f"{kind}: {costs[(kind, fewest)]:+.0%} with {fewest} writer(s), {costs[(kind, most)]:+.0%} with {most}; "
        f"recorded writes/s {scaling(kind, True):.1f} times the {fewest}-writer rate, the baseline's "
        f"{scaling(kind, False):.1f} times"
        for kind in shown
    )
    return [
        "",
        f"The head-row lock shows at {most} writers ({facts}). Appends are serialised from the `audit_record` "
        "call to the commit: the `UPDATE` that takes the next seq from the log's single head row holds that row's "
        "lock until the transaction ends, its WAL flush included, so concurrent recorded writes queue there while "
        "the baseline's run side by side.",
    ]


def verify_report(results: VerifyResults, misses: list[str]) -> list[str]:
    seconds = [run.seconds for run in results.runs]
    best, median = min(seconds), statistics.median(seconds)
    passed = median < VERIFY_TARGET_S
    if not passed:
        misses.append(f"verify: {median:.1f} s for {results.entries:,} entries")
    return [
        "### Verification by the standalone verifier",
        "",
        f"A synthetic export of {results.entries:,} entries ({results.file_bytes / 1e6:,.0f} MB, "
        f"{results.file_bytes / results.entries:,.0f} bytes per line; tree heads every {TREE_HEAD_EVERY:,} "
        f"entries and at the end, {-(-results.entries // TREE_HEAD_EVERY)} in all), written in "
        f"{results.generate_seconds:.0f} s without the database; then `python tools/audit_verify.py FILE "
        "--public-key KEY` in a child process, its wall time and peak RSS (wait4).",
        "",
        "| Entries | Runs | Wall s (median) | Best s | Entries/s | Peak RSS MB | Target | Result |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        f"| {results.entries:,} | {len(seconds)} | {median:.2f} | {best:.2f} | {results.entries / median:,.0f} | "
        f"{max(run.peak_rss_mb for run in results.runs):,.0f} | < {VERIFY_TARGET_S:g} s | {verdict(passed)} |",
        "",
        f"Verifier output: `{results.runs[0].output.splitlines()[0]}`",
    ]


def proofs_report(args: argparse.Namespace, results: ProofResults, misses: list[str]) -> list[str]:
    load = (
        f"copied in with COPY in {results.load_seconds:.0f} s"
        if results.load_seconds is not None
        else "loaded by an earlier run and reused, --reuse"
    )
    lines = [
        "### Proofs at the full size",
        "",
        f"{args.entries:,} synthetic entries ({load}). `extend_kept_subtrees({args.entries:,})` from no kept "
        f"subtree, the one-off catch-up: {results.extend_seconds:.1f} s for {results.nodes:,} nodes; signing the "
        f"head: {results.sign_seconds * 1000:.0f} ms. Then {len(results.inclusion)} proofs of each kind at random "
        f"positions after {args.warmup} warm-up calls, each checked against the signed root (the check not timed).",
        "",
        "| Proof | Calls | Hashes (median) | p50 ms | p95 ms | max ms | Target | Result |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    rows = [
        (f"inclusion_proof(seq, {args.entries:,})", results.inclusion, results.inclusion_lengths),
        (f"consistency_proof(m, {args.entries:,})", results.consistency, results.consistency_lengths),
    ]
    if results.api:
        rows += [
            (
                f"GET /api/v1/audit/entries/{{seq}}/proof/?tree_size={args.entries}",
                results.api["inclusion"],
                results.inclusion_lengths,
            ),
            (
                f"GET /api/v1/audit/tree-heads/consistency/?first={{m}}&second={args.entries}",
                results.api["consistency"],
                results.consistency_lengths,
            ),
        ]
    for name, samples, lengths in rows:
        p95 = quantile(samples, 0.95)
        passed = p95 < PROOF_TARGET_MS
        if not passed:
            misses.append(f"{name}: p95 {p95:.1f} ms")
        lines.append(
            f"| {name} | {len(samples)} | {statistics.median(lengths):.0f} | {fmt(statistics.median(samples))} | "
            f"{fmt(p95)} | {fmt(max(samples))} | p95 < {PROOF_TARGET_MS:g} ms | {verdict(passed)} |"
        )
    if results.api_missing:
        lines += ["", f"Not timed through the API: {results.api_missing}."]
    return lines


def export_report(results: ExportResults) -> list[str]:
    lines = [
        "### Export memory",
        "",
        f"`export_lines` of the {results.entries:,} entries above streamed to a file in {results.seconds:.1f} s "
        f"({results.entries / results.seconds:,.0f} entries/s, {results.file_bytes / 1e6:,.0f} MB), which the "
        f"standalone verifier then checked in {results.verifier.seconds:.1f} s: "
        f"`{results.verifier.output.splitlines()[0]}`. Streamed again to /dev/null under tracemalloc "
        f"({results.traced_seconds:.1f} s): the peak of Python allocations since the export began, and the "
        "process's RSS, after N/10 and N entries.",
        "",
        "| Entries streamed | tracemalloc peak MB | RSS MB |",
        "| ---: | ---: | ---: |",
    ]
    lines += [f"| {entries:,} | {peak:.1f} | {rss:.0f} |" for entries, peak, rss in results.checkpoints]
    return lines


def report(
    args: argparse.Namespace, databases: Databases, sections: list[str], misses: list[str], **header: object
) -> str:
    lines = [*results_header(**header), *machine(databases), "", *sections]
    lines += ["", f"Targets missed: {len(misses)}" + "".join(f"\n- {miss}" for miss in misses)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main


def part_list(text: str) -> list[str]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or set(parts) - set(PARTS):
        raise argparse.ArgumentTypeError(f"a comma-separated list of {', '.join(PARTS)}")
    return [part for part in PARTS if part in parts]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=part_list, default=list(PARTS), help=f"default {','.join(PARTS)}")
    parser.add_argument("--entries", type=int, default=1_000_000, help="log size for verify, proofs and export")
    parser.add_argument(
        "--writers",
        type=lambda text: sorted({int(n) for n in text.split(",")}),
        default=[1, 8],
        help="numbers of concurrent writers, comma-separated (default 1,8)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each append run (default 10)")
    parser.add_argument("--rounds", type=int, default=4, help="append rounds, variants alternating (default 4)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed writes / proofs first (default 20)")
    parser.add_argument("--proofs", type=int, default=200, help="timed proofs of each kind (default 200)")
    parser.add_argument("--verify-runs", type=int, default=3, help="verifier runs on the synthetic export")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_URL,
        help=f"server and base name of the databases (default DATABASE_URL, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--synchronous-commit",
        choices=["on", "off"],
        help="set synchronous_commit on the append database (default: the server's); off shows how much of the "
        "append's cost is waiting for the commit's WAL flush while the log's head row is locked",
    )
    parser.add_argument("--reuse", action="store_true", help="use the loaded database a previous run kept, and keep it")
    parser.add_argument("--keep", action="store_true", help="keep the databases this run creates")
    parser.add_argument("--no-readme", action="store_true", help="print the results only")
    parser.add_argument("--explain", action="store_true", help="filters: print each filter's plan to stderr")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a quick check that every part runs: 2,000 entries, 1 and 2 writers for 1 s in 1 round, 10 proofs, "
        "1 verifier run, --no-readme; exits non-zero on any error or check that fails (entries missing, a gap in "
        "the numbering, an export or proof that does not verify)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.entries, args.writers, args.seconds, args.rounds = 2_000, [1, 2], 1.0, 1
        args.warmup, args.proofs, args.verify_runs, args.no_readme = 5, 10, 1, True
    if args.entries < 1_000 or args.rounds < 1 or args.seconds <= 0 or args.proofs < 1 or args.verify_runs < 1:
        parser.error("--entries at least 1,000; --rounds, --seconds, --proofs and --verify-runs positive")
    if min(args.writers) < 1:
        parser.error("--writers: positive numbers")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    command = command_line(__file__, argv)
    code = code_version()
    started_at = dt.datetime.now(dt.UTC)
    databases = Databases(args.database_url)
    var_dir = tempfile.mkdtemp(prefix="provenant-bench-audit-")
    configure_django(databases.url(databases.base), var_dir, secret_key=os.environ.get("PROVENANT_BENCH_SECRET"))
    sections: list[str] = []
    misses: list[str] = []
    try:
        if "append" in args.parts:
            sections += ["", *append_report(args, run_append(args, databases, var_dir), misses)]
        if "verify" in args.parts:
            sections += ["", *verify_report(run_verify(args, var_dir), misses)]
        if {"proofs", "export", "filters"} & set(args.parts):
            load_seconds = prepare_loaded(args, databases)
            if "proofs" in args.parts:
                proofs = run_proofs(args)
                proofs.load_seconds = load_seconds
                sections += ["", *proofs_report(args, proofs, misses)]
            if "export" in args.parts:
                sections += ["", *export_report(run_export(args, var_dir))]
            if "filters" in args.parts:
                sections += ["", *filters_report(args, run_filters(args))]
    except BenchError as error:
        return failed(error)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            databases.drop_created()
        shutil.rmtree(var_dir, ignore_errors=True)
    results = report(
        args, databases, sections, misses, started_at=started_at, seconds=elapsed(), command=command, code=code
    )
    show_results(results, start=RESULTS_START, end=RESULTS_END, write_readme=not args.no_readme)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
