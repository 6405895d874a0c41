"""The portal's pages on the demo data: time and SQL queries per page, per user, against "under 200 ms, no N+1".

    .venv/bin/python benchmarks/portal.py [--requests 30] [--warmup 5] [--database-url postgres://…/<new name>]

For each database (SQLite always; PostgreSQL too when --database-url names a database that does not exist yet, which
the script creates, marks and drops), a throwaway PROVENANT_VAR_DIR gets `manage.py migrate` and `manage.py
load_demo` in child processes with a clean environment (as tests/e2e/conftest.py runs them), never the developer's
var/. A second child, with DEBUG off, sets Django up in-process and, with django.test.Client and force_login as the
reviewer sam, the auditor ada and the superuser admin, requests every portal page with ids read from the database:
warm-up requests first, then the timed ones in rounds that go through all the pages in turn, so drift on a shared
machine reaches every page alike. One more request per page runs under CaptureQueriesContext: the number of
statements, and the most times one statement shape (literals replaced) ran, which is how an N+1 shows on data this
small. The results are a Markdown table, written into benchmarks/README.md between the portal markers unless
--no-readme.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import (  # benchmarks/ is the script's folder, first on sys.path
    REPO,
    BenchDatabases,
    BenchError,
    app_settings,
    clean_environment,
    code_version,
    command_line,
    django_setup,
    elapsed,
    failed,
    load_average,
    machine_lines,
    manage,
    progress,
    progress_on_stderr,
    results_header,
    show_results,
)

RESULTS_START = "<!-- portal:start (written by benchmarks/portal.py) -->"
RESULTS_END = "<!-- portal:end -->"
#: The comment a database this script made carries: nothing else is ever dropped.
MARKER = "provenant-bench-portal"
TARGET_MS = 200.0
USERS = ("sam", "ada", "admin")  # a reviewer, the auditor, the superuser (artifacts/demo.py, governance/portal/demo.py)


@dataclass
class PageResult:
    backend: str
    user: str
    page: str
    status: int
    kib: float
    queries: int
    queries_grown: int | None
    kib_grown: float | None
    most_repeated: int
    repeated_sql: str
    p50: float
    p95: float
    max: float


# The worker: Django in this process, on the prepared database -------------------------------------------------------


#: Literals in a captured statement, so statements that differ only in their values count as one shape.
_LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_LIST = re.compile(r"\((?:\s*\?\s*,)+\s*\?\s*\)")


def statement_shape(sql: str) -> str:
    return _LIST.sub("(?…)", _LITERAL.sub("?", sql))


def resolve_pages(user) -> list[tuple[str, str]]:
    """(label, URL) for every page, with the ids of the demo's objects: its model and two versions, the open
    promotion request (the one with a decision form), the artifact version with the most lineage, the newest audit
    entry the user may read (or the newest at all, for a user who reads none: their 404 is measured too)."""
    from artifacts import selectors as artifact_selectors
    from artifacts.models import ArtifactVersion
    from core.models import AuditEntry
    from governance.audit.selectors import audit_entries_for
    from governance.registry.models import ModelVersion, PromotionRequest, RegisteredModel

    model = RegisteredModel.objects.order_by("pk").first()
    numbers = list(
        ModelVersion.objects.filter(registered_model=model).order_by("number").values_list("number", flat=True)
    )
    if model is None or len(numbers) < 2:
        raise BenchError("the demo data has no registered model with two versions")
    promotion = (
        PromotionRequest.objects.filter(state=PromotionRequest.State.OPEN).order_by("-pk").first()
        or PromotionRequest.objects.order_by("-pk").first()
    )
    if promotion is None:
        raise BenchError("the demo data has no promotion request")
    versions = list(ArtifactVersion.objects.order_by("pk"))
    # The most nodes; among equals, one registered in the model registry (its "registered as" list grows with
    # --grow), one with a run (the run's inputs on the page), the newest.
    registered = set(ModelVersion.objects.values_list("artifact_version_id", flat=True))
    richest = max(
        versions,
        key=lambda version: (
            len(artifact_selectors.bounded_lineage(version, user).graph.nodes),
            version.pk in registered,
            version.run_id is not None,
            version.pk,
        ),
    )
    entry = audit_entries_for(user).first() or AuditEntry.objects.order_by("-seq").first()
    return [
        ("/", "/"),
        ("/models/", "/models/"),
        ("/models/<id>/", f"/models/{model.pk}/"),
        ("/models/<id>/compare/", f"/models/{model.pk}/compare/?a={numbers[0]}&b={numbers[-1]}"),
        ("/promotions/", "/promotions/"),
        ("/promotions/<id>/", f"/promotions/{promotion.pk}/"),
        ("/versions/<id>/", f"/versions/{richest.pk}/"),
        ("/versions/<id>/lineage.svg", f"/versions/{richest.pk}/lineage.svg"),
        ("/search/?q=fraud", "/search/?q=fraud"),
        ("/audit/", "/audit/"),
        ("/audit/<seq>/", f"/audit/{entry.seq}/"),
        ("/access-reviews/", "/access-reviews/"),
    ]


def grow(models: int) -> str:
    """More rows behind the list pages, written through the services as the demo writes them: `models` more
    registered models in the demo's project (names containing "fraud", so search finds them), each with the demo's two
    model artifact versions registered and an open request to staging for the newer. The model list, the promotion
    list, search, the dashboard's worklist, the version page's "registered as" and the audit log all get longer."""
    from django.contrib.auth import get_user_model

    from artifacts.models import Artifact
    from governance.registry.models import RegisteredModel
    from governance.registry.services.promotions import promotion_request_create
    from governance.registry.services.registry import model_version_register, registered_model_create

    dana = get_user_model().objects.get(username="dana")
    demo_model = RegisteredModel.objects.order_by("pk").first()
    artifact = Artifact.objects.get(project=demo_model.project, name="model")
    for index in range(1, models + 1):
        model = registered_model_create(
            project=demo_model.project,
            name=f"fraud-scorer-bench-{index}",
            created_by=dana,
            description="A copy of the demo's model for the portal benchmark.",
            model_card=demo_model.model_card,
            owners=[dana],
        )
        registered = [
            model_version_register(registered_model=model, artifact_version=version, created_by=dana)[0]
            for version in artifact.versions.order_by("number")
        ]
        promotion_request_create(
            model_version=registered[-1],
            target_stage="staging",
            requested_by=dana,
            justification="Benchmark: one more request on the worklist.",
        )
    return (
        f"{models} more registered models (2 versions each, the demo model's artifact versions) and {models} more"
        " open promotion requests to staging, through the services"
    )


def count_queries(client, url: str) -> tuple[int, int, str, int]:
    """Statements one request runs, the most times one statement shape ran, that shape if it repeated, and the
    response's size."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    shapes = Counter(statement_shape(query["sql"]) for query in queries.captured_queries)
    shape, repeats = shapes.most_common(1)[0] if shapes else ("", 0)
    return len(queries.captured_queries), repeats, shape if repeats > 1 else "", len(response.content)


def worker_main(args: argparse.Namespace) -> int:
    django_setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    assert not settings.DEBUG, "the pages are measured with DEBUG off"
    backend = args.worker
    results: list[PageResult] = []
    facts = {"database": connection.vendor, "urls": {}, "grown": ""}
    clients: dict[str, tuple] = {}
    for username in USERS:
        user = get_user_model().objects.get(username=username)
        client = Client()
        client.force_login(user)
        pages = resolve_pages(user)
        clients[username] = (client, pages)
        facts["urls"][username] = dict(pages)
        statuses: dict[str, int] = {}
        sizes: dict[str, int] = {}
        for label, url in pages:
            for _ in range(args.warmup):
                response = client.get(url)
            statuses[label], sizes[label] = response.status_code, len(response.content)
        captured = {label: count_queries(client, url) for label, url in pages}
        timings: dict[str, list[float]] = {label: [] for label, _ in pages}
        rounds = max(1, min(args.rounds, args.requests))
        for round_ in range(rounds):
            share = args.requests // rounds + (1 if round_ < args.requests % rounds else 0)
            for label, url in pages:
                for _ in range(share):
                    started = time.perf_counter()
                    client.get(url)
                    timings[label].append((time.perf_counter() - started) * 1000)
        for label, _ in pages:
            samples = sorted(timings[label])
            queries_run, repeats, shape, _ = captured[label]
            results.append(
                PageResult(
                    backend=backend,
                    user=username,
                    page=label,
                    status=statuses[label],
                    kib=sizes[label] / 1024,
                    queries=queries_run,
                    queries_grown=None,
                    kib_grown=None,
                    most_repeated=repeats,
                    repeated_sql=shape[:300],
                    p50=statistics.median(samples),
                    p95=percentile(samples, 95),
                    max=samples[-1],
                )
            )
        progress(f"{backend}: {username} done")
    if args.grow:
        facts["grown"] = grow(args.grow)
        for row in results:
            client, pages = clients[row.user]
            url = dict(pages)[row.page]
            client.get(url)  # a first request after the growth, as the timed ones had warm-up
            queries_run, _, _, size = count_queries(client, url)
            row.queries_grown, row.kib_grown = queries_run, size / 1024
        progress(f"{backend}: queries counted again after the growth")
    json.dump({"facts": facts, "results": [asdict(result) for result in results]}, sys.stdout)
    return 0


def percentile(sorted_samples: list[float], pct: float) -> float:
    """Nearest-rank percentile: with 30 samples, p95 is the 29th."""
    rank = max(1, -(-len(sorted_samples) * pct // 100))
    return sorted_samples[int(rank) - 1]


# The driver: prepare each database, run a worker on it, report ----------------------------------------------------


def environment(var_dir: Path, *, debug: bool, database_url: str | None, secret: str) -> dict[str, str]:
    """A child's environment: the developer's without the app's variables (as tests/e2e/conftest.py has it)."""
    settings = app_settings(database_url=database_url, var_dir=var_dir, secret_key=secret, debug=debug)
    return clean_environment() | settings


def run_backend(backend: str, args: argparse.Namespace, database_url: str | None) -> dict:
    var_dir = Path(tempfile.mkdtemp(prefix=f"provenant-bench-portal-{backend}-"))
    secret = secrets.token_urlsafe(50)
    try:
        progress(f"{backend}: migrate and load_demo in {var_dir}")
        # load_demo creates a superuser with a published password, so it runs only with DEBUG on.
        demo_env = environment(var_dir, debug=True, database_url=database_url, secret=secret)
        manage(demo_env, "migrate", "--noinput")
        manage(demo_env, "load_demo")
        progress(f"{backend}: measuring, DEBUG off")
        worker = subprocess.run(  # noqa: S603
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                backend,
                "--requests",
                str(args.requests),
                "--warmup",
                str(args.warmup),
                "--rounds",
                str(args.rounds),
                "--grow",
                str(args.grow),
            ],
            cwd=REPO,
            env=environment(var_dir, debug=False, database_url=database_url, secret=secret),
            stdout=subprocess.PIPE,
            text=True,
            timeout=3600,
        )
        if worker.returncode != 0:
            raise BenchError(f"the {backend} worker failed (exit {worker.returncode}); its output is above")
        return json.loads(worker.stdout)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def machine_facts(postgres_version: str | None) -> list[str]:
    return [
        *machine_lines(("Django", "django-guardian", "psycopg")),
        f"- SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL, a new connection per request"
        " as the settings have it)"
        + (
            f"; PostgreSQL {postgres_version} on 127.0.0.1 (persistent connections, CONN_MAX_AGE 60)"
            if postgres_version
            else ""
        ),
    ]


def report(
    runs: dict[str, dict],
    *,
    args: argparse.Namespace,
    command: str,
    code: str,
    started_at,
    load: tuple[str, str],
    postgres_version: str | None,
) -> str:
    lines = results_header(started_at=started_at, seconds=elapsed(), command=command, code=code)
    lines += machine_facts(postgres_version)
    lines += [
        f"- Load average {load[0]} at the start, {load[1]} at the end (1, 5, 15 min; the machine is shared: other"
        " sessions' work may run meanwhile)",
        "",
        "In-process `django.test.Client` (middleware, sessions in the database, templates; no HTTP server), DEBUG off,"
        " signed in with `force_login`. Per page and user: "
        f"{args.warmup} warm-up requests, then {args.requests} timed in {args.rounds} rounds through all the pages;"
        " milliseconds, nearest-rank p95. Queries: one more request under CaptureQueriesContext (the session and user"
        ' lookups included); "same shape" is the most times one statement ran with only its literals differing'
        " (1: no statement repeated).",
        "",
        "| Database | User | Page | Status | KiB | Queries | Same shape | KiB, grown | Queries, grown | p50 ms | p95 ms"
        " | max ms | p95 < 200 ms |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    slow, repeated, growing = [], [], []
    for backend, run in runs.items():
        for row in run["results"]:
            ok = row["p95"] < TARGET_MS
            if not ok:
                slow.append(row)
            if row["most_repeated"] > 1:
                repeated.append(row)
            grown = row["queries_grown"]
            if grown is not None and grown != row["queries"]:
                growing.append(row)
            lines.append(
                f"| {backend} | {row['user']} | `{row['page']}` | {row['status']} | {row['kib']:.1f} | {row['queries']}"
                f" | {row['most_repeated']} | {'' if grown is None else format(row['kib_grown'], '.1f')}"
                f" | {'' if grown is None else grown} | {row['p50']:.1f} | {row['p95']:.1f} | {row['max']:.1f}"
                f" | {'pass' if ok else '**MISS**'} |"
            )
    lines += ["", "The URLs requested (ids read from the database after load_demo):", ""]
    for backend, run in runs.items():
        for username, urls in run["facts"]["urls"].items():
            lines.append(f"- {backend}, {username}: " + ", ".join(f"`{url}`" for url in urls.values()))
    for backend, run in runs.items():
        if run["facts"]["grown"]:
            lines += [
                "",
                f"Queries, grown ({backend}): after the timing, {run['facts']['grown']}; then each page once"
                " more (after one untimed request) under CaptureQueriesContext.",
            ]
    lines += ["", f"Pages over 200 ms at p95: {len(slow)}"]
    lines += [f"- {row['backend']}, {row['user']}, `{row['page']}`: p95 {row['p95']:.1f} ms" for row in slow]
    lines += [f"Pages whose query count changed when the data grew: {len(growing)}"]
    lines += [
        f"- {row['backend']}, {row['user']}, `{row['page']}`: {row['queries']} → {row['queries_grown']}"
        for row in growing
    ]
    lines += [f"Pages running one statement shape more than once: {len(repeated)}"]
    lines += [
        f"- {row['backend']}, {row['user']}, `{row['page']}`: {row['most_repeated']}x `{row['repeated_sql'][:160]}…`"
        for row in repeated
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page and user (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page and user first (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds the timed requests are split into (default 3)")
    parser.add_argument(
        "--grow",
        type=int,
        default=10,
        help="after timing, add this many models and promotion requests and count the queries again (default 10)",
    )
    parser.add_argument(
        "--database-url",
        help="also measure on PostgreSQL: postgres://user@host:port/<a database that does not exist yet>, created,"
        " loaded and dropped by this script",
    )
    parser.add_argument("--no-readme", action="store_true", help="print the results only")
    parser.add_argument("--worker", choices=["sqlite", "postgresql"], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.worker:
        progress_on_stderr()  # the worker's stdout carries its answers to the driver
        return worker_main(args)
    command = command_line(__file__, argv)
    code = code_version()
    started_at = dt.datetime.now(dt.UTC)
    load_start = load_average()
    runs: dict[str, dict] = {}
    postgres_version = None
    try:
        runs["SQLite"] = run_backend("sqlite", args, None)
        if args.database_url:
            databases = BenchDatabases(args.database_url, default_base="", marker=MARKER)
            name = databases.base
            if not name or name == "postgres":
                raise BenchError("--database-url must name a new database, e.g. …/provenant_bench_portal")
            if databases.comment(name) is not None:
                raise BenchError(f"database {name} exists already; name a new one")
            databases.create(name)
            try:
                postgres_version = databases.settings(["server_version"])["server_version"]
                runs["PostgreSQL"] = run_backend("postgresql", args, databases.url(name))
            finally:
                databases.drop_created()
    except BenchError as error:
        return failed(error)
    load_end = load_average()
    results = report(
        runs,
        args=args,
        command=command,
        code=code,
        started_at=started_at,
        load=(load_start, load_end),
        postgres_version=postgres_version,
    )
    show_results(results, start=RESULTS_START, end=RESULTS_END, write_readme=not args.no_readme)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
