"""The portal's pages over HTTP at scale: time per page and user against "under 200 ms", and the SQL queries per page
on the demo alone and at scale against "no N+1".

    .venv/bin/python benchmarks/portal.py [--versions 100000] [--entries 1000000] [--requests 30] [--reuse] [--keep]
    .venv/bin/python benchmarks/portal.py --smoke     # 2,000 versions and entries, 3 requests a page: that it runs

On PostgreSQL (--database-url, else DATABASE_URL, else postgres://postgres@127.0.0.1:5432/provenant_bench_portal),
in a database of the script's own (`<name>_<versions>_<entries>`, marked; --reuse takes one a previous run kept
complete, with its var folder). It is migrated, then seeded:

1. `--entries` synthetic audit entries COPYed into the empty log (audit_log.py's `load_entries`: realistic values,
   each with its leaf hash, the head set to their number), so everything recorded after them extends a valid log;
2. `manage.py load_demo` in a child process (DEBUG on, as the demo requires): the demo's team, project, runs,
   lineage, registry and access review, through the services, recording their audit entries after the synthetic
   ones; every page's query count is taken on this data first;
3. `--versions` artifact versions in set-based SQL (INSERT … SELECT generate_series) in the demo's project: 100
   per artifact, artifacts named `fraud-bench-<n>` (so the search finds them), each version with a blob of its own
   linked to the project, the newest of all, as a busy project's publishing would leave them;
4. the kept Merkle subtrees caught up and a tree head signed, as the app's periodic task would have done.

Then granian serves the app (one worker, DEBUG off, as the other benchmarks run it) on that database, and for the
reviewer sam, the auditor ada and the superuser admin, each signed in through the login form over HTTP (a session
cookie, a keep-alive connection of their own), every portal page is requested with `httpx`: warm-up requests
first, then the timed ones in rounds through all the pages, so drift on a shared machine reaches every page alike.
Every answer's status must be the one the page gave in-process (a 404 only where the user may not read the entry).
One more in-process request per page (django.test.Client, force_login) counts its statements at scale, and the
most times one statement shape ran. The results go between the portal markers of benchmarks/README.md unless
--no-readme.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from audit_log import load_entries  # benchmarks/ is the script's folder, first on sys.path
from harness import (
    BenchDatabases,
    BenchError,
    Child,
    app_settings,
    clean_environment,
    code_version,
    command_line,
    configure_django,
    elapsed,
    exit_on_sigterm,
    load_average,
    machine_lines,
    manage,
    progress,
    quantile,
    results_header,
    run_bench,
    serve_app,
    short,
    show_results,
)

RESULTS_START = "<!-- portal:start (written by benchmarks/portal.py) -->"
RESULTS_END = "<!-- portal:end -->"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/provenant_bench_portal"
#: The comment a database this script made carries: nothing else is ever dropped or reused.
MARKER = "provenant-bench-portal"
DATA_VERSION = 1
TARGET_MS = 200.0
USERS = ("sam", "ada", "admin")  # a reviewer, the auditor, the superuser (artifacts/demo.py, governance/portal/demo.py)
SEEDED_PREFIX = "fraud-bench-"
VERSIONS_PER_ARTIFACT = 100
HTTP_TIMEOUT = 120.0


@dataclass
class PageResult:
    user: str
    page: str
    url: str
    status: int
    kib: float = 0.0
    queries_demo: int | None = None
    queries: int = 0
    most_repeated: int = 0
    repeated_sql: str = ""
    samples: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return quantile(self.samples, 0.95)


# ---------------------------------------------------------------------------------------------- pages and queries

#: Literals in a captured statement, so statements that differ only in their values count as one shape.
_LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_LIST = re.compile(r"\((?:\s*%s\s*,)+\s*%s\s*\)|\((?:\s*\?\s*,)+\s*\?\s*\)")


def statement_shape(sql: str) -> str:
    return _LIST.sub("(?…)", _LITERAL.sub("?", sql))


def resolve_pages(user) -> list[tuple[str, str]]:
    """(label, URL) for every page, with the ids of the demo's objects: its model and two versions, the open
    promotion request (the one with a decision form), the artifact version with the most lineage, the newest audit
    entry the user may read (one the demo recorded: the synthetic ones come first), or the newest at all for a user
    who reads none (their 404 is measured too)."""
    from artifacts import selectors as artifact_selectors
    from artifacts.models import ArtifactVersion, DatasetVersion, Run
    from core.models import AuditEntry
    from governance.access.models import AccessReviewCampaign
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
    # The demo's own versions: the seeded ones have no lineage, and walking 100,000 graphs here would take minutes.
    versions = list(ArtifactVersion.objects.exclude(artifact__name__startswith=SEEDED_PREFIX).order_by("pk"))
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
    # The run, dataset and dataset version behind that version's lineage, its project, and the newest campaign.
    run = Run.objects.filter(pk=richest.run_id).first() or Run.objects.order_by("-pk").first()
    dataset_version = DatasetVersion.objects.order_by("-pk").first()
    campaign = AccessReviewCampaign.objects.order_by("-pk").first()
    if run is None or dataset_version is None or campaign is None:
        raise BenchError("the demo data has no run, dataset version or access review campaign")
    project = richest.artifact.project
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
        ("/access-reviews/<id>/", f"/access-reviews/{campaign.pk}/"),
        ("/runs/<id>/", f"/runs/{run.pk}/"),
        ("/datasets/<id>/", f"/datasets/{dataset_version.dataset_id}/"),
        ("/datasets/versions/<id>/", f"/datasets/versions/{dataset_version.pk}/"),
        ("/projects/<slug>/", f"/projects/{project.slug}/"),
        ("/projects/<slug>/lifecycle/", f"/projects/{project.slug}/lifecycle/"),
        ("/inbox/", "/inbox/"),
        ("/audit/actions/", "/audit/actions/"),
    ]


def count_queries(username: str, url: str) -> tuple[int, int, int, str]:
    """In-process, signed in with force_login: the page's status, the statements one request runs, the most times
    one statement shape ran, and that shape if it repeated."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    client.get(url)  # a first request, as the timed ones have warm-up
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    shapes = Counter(statement_shape(query["sql"]) for query in queries.captured_queries)
    shape, repeats = shapes.most_common(1)[0] if shapes else ("", 0)
    return response.status_code, len(queries.captured_queries), repeats, shape if repeats > 1 else ""


# ---------------------------------------------------------------------------------------------- seeding


def seed_versions(count: int) -> int:
    """`count` versions in the demo's project, in set-based SQL: VERSIONS_PER_ARTIFACT per new artifact, each with
    a blob of its own linked to the project, published by the demo's admin over the last `count` minutes (so they
    are the newest). Answers the number of new artifacts."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from artifacts.demo import ADMIN_USERNAME, PROJECT_SLUG
    from artifacts.models import Project

    project = Project.objects.get(slug=PROJECT_SLUG)
    admin = get_user_model().objects.get(username=ADMIN_USERNAME)
    artifacts = max(1, count // VERSIONS_PER_ARTIFACT)
    params = {"project": project.pk, "admin": admin.pk, "versions": count, "artifacts": artifacts,
              "prefix": SEEDED_PREFIX}  # fmt: skip
    statements = [
        "CREATE TEMP TABLE bench_base ON COMMIT DROP AS SELECT (SELECT COALESCE(max(id), 0) FROM artifacts_artifact)"
        " AS artifact, (SELECT COALESCE(max(id), 0) FROM artifacts_blob) AS blob",
        """INSERT INTO artifacts_artifact (id, project_id, name, kind, description, restricted, created_at)
           SELECT b.artifact + n, %(project)s, %(prefix)s || n, 'model', 'Seeded by the portal benchmark.', false,
                  now() - interval '2 years'
           FROM bench_base b, generate_series(1, %(artifacts)s) AS n""",
        # storage_class '' is the bucket's default class (artifacts/models/blobs.py): the column has no SQL default.
        """INSERT INTO artifacts_blob (id, digest, size, state, storage_class, created_at)
           SELECT b.blob + n, encode(sha256(convert_to('portal-bench-' || n, 'UTF8')), 'hex'), 1000 + n %% 100000,
                  'pending', '', now() - (%(versions)s - n) * interval '1 minute'
           FROM bench_base b, generate_series(1, %(versions)s) AS n""",
        """INSERT INTO artifacts_projectblob (project_id, blob_id, uploaded_by_id, created_at)
           SELECT %(project)s, b.blob + n, %(admin)s, now() - (%(versions)s - n) * interval '1 minute'
           FROM bench_base b, generate_series(1, %(versions)s) AS n""",
        """INSERT INTO artifacts_artifactversion (artifact_id, number, blob_id, media_type, metadata, created_by_id,
                                                   created_at, license)
           SELECT b.artifact + (n - 1) %% %(artifacts)s + 1, (n - 1) / %(artifacts)s + 1, b.blob + n,
                  'application/octet-stream', jsonb_build_object('framework', 'pytorch', 'step', n), %(admin)s,
                  now() - (%(versions)s - n) * interval '1 minute', ''
           FROM bench_base b, generate_series(1, %(versions)s) AS n ORDER BY n""",
    ] + [
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
        for table in ("artifacts_artifact", "artifacts_blob")
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, params)
    return artifacts


def catch_up_log() -> int:
    """What the app's periodic work leaves behind: the kept subtrees over the whole log, a signed tree head, and this
    hour's storage snapshots (the dashboard and lifecycle pages read them; without, they compute storage live)."""
    from core.audit import tree as audit_tree
    from core.audit.recorder import tree_head_sign
    from governance.lifecycle.services.snapshots import storage_snapshot_take

    size = audit_tree.log_size()
    audit_tree.extend_kept_subtrees(size)
    tree_head_sign()
    started = time.monotonic()
    storage_snapshot_take()  # every project, after the seeding (the demo took one before it)
    progress(f"  storage snapshots taken in {time.monotonic() - started:.2f} s")
    return size


# ---------------------------------------------------------------------------------------------- over HTTP


def signed_in(port: int, username: str):
    """An httpx client with a session of `username`'s, signed in through the login form as a browser would."""
    import httpx

    from artifacts.demo import ADMIN_PASSWORD

    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT)
    form = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    if form.status_code != 200 or token is None:
        raise BenchError(f"GET /accounts/login/ answered {form.status_code} without a CSRF token")
    answer = client.post(
        "/accounts/login/",
        data={"login": username, "password": ADMIN_PASSWORD, "csrfmiddlewaretoken": token.group(1)},
    )
    if answer.status_code != 302 or "sessionid" not in client.cookies:
        raise BenchError(f"signing in as {username} answered {answer.status_code}, no session: {answer.text[:300]!r}")
    return client


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.databases = BenchDatabases(args.database_url, default_base="provenant_bench_portal", marker=MARKER)
        self.name = f"{self.databases.base}_{short(args.versions)}_{short(args.entries)}"
        # A reused database comes with its var folder (the audit signing key, the demo's blobs).
        self.var_dir = Path(tempfile.gettempdir()) / f"provenant-bench-portal-{self.name}"
        self.workdir = Path(tempfile.mkdtemp(prefix="provenant-bench-portal-"))
        self.secret = secrets.token_urlsafe(50)
        self.results: dict[tuple[str, str], PageResult] = {}
        self.facts: dict[str, object] = {}
        self.server: Child | None = None

    def env(self, *, debug: bool) -> dict[str, str]:
        settings = app_settings(database_url=self.databases.url(self.name), var_dir=self.var_dir,
                                secret_key=self.secret, allowed_hosts="127.0.0.1,testserver", debug=debug)  # fmt: skip
        # The pages are measured, not the sign-in: the demo's people have no second factor, and with production's
        # PROVENANT_MFA_REQUIRED the reviewers and auditors among them would only ever reach the enrolment page.
        return clean_environment() | settings | {"PROVENANT_MFA_REQUIRED": "false"}

    def prepare(self) -> None:
        from django.db import connection

        from artifacts.models import ArtifactVersion
        from core.audit import tree as audit_tree

        args = self.args
        parameters = {"data": DATA_VERSION, "versions": args.versions, "entries": args.entries}
        reused = self.databases.migrated(self.name, parameters, reuse=args.reuse)
        if reused and not self.var_dir.is_dir():
            raise BenchError(f"{self.name} was kept without its var folder {self.var_dir}; run without --reuse")
        if not reused:
            shutil.rmtree(self.var_dir, ignore_errors=True)
            self.var_dir.mkdir()
            started = time.monotonic()
            progress(f"copying {args.entries:,} synthetic audit entries into {self.name}")
            load_entries(args.entries)
            self.facts["entries seconds"] = time.monotonic() - started
            progress(f"  {time.monotonic() - started:.1f} s; manage.py load_demo")
            connection.close()
            manage(self.env(debug=True), "load_demo")
            self.resolve()
            for (username, label), row in self.results.items():
                status, row.queries_demo, _, _ = count_queries(username, row.url)
                if status != row.status:
                    raise BenchError(f"{username}, {label}: {status} on the demo, {row.status} when resolved")
            started = time.monotonic()
            progress(f"seeding {args.versions:,} versions")
            self.facts["artifacts"] = seed_versions(args.versions)
            self.facts["versions seconds"] = time.monotonic() - started
            started = time.monotonic()
            progress(f"  {self.facts['versions seconds']:.1f} s; catching the audit log's kept subtrees up")
            catch_up_log()
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
            self.facts["catch-up seconds"] = time.monotonic() - started
            self.databases.mark_complete(self.name, parameters)
        else:
            self.resolve()
        self.facts["reused"] = reused
        self.facts["versions"] = ArtifactVersion.objects.count()
        self.facts["seeded versions"] = ArtifactVersion.objects.filter(artifact__name__startswith=SEEDED_PREFIX).count()
        self.facts["entries"] = audit_tree.log_size()
        if self.facts["seeded versions"] != args.versions or self.facts["entries"] < args.entries:
            held = f"{self.facts['seeded versions']:,} seeded versions and {self.facts['entries']:,} audit entries"
            raise BenchError(f"the database holds {held}, not {args.versions:,} and {args.entries:,}")
        progress(f"{self.facts['versions']:,} versions, {self.facts['entries']:,} audit entries; counting queries")
        for (username, label), row in self.results.items():
            status, row.queries, row.most_repeated, shape = count_queries(username, row.url)
            row.repeated_sql = shape[:300]
            if status != row.status:
                raise BenchError(f"{username}, {label}: {status} at scale, {row.status} on the demo")
        connection.close()
        self.server, self.port = serve_app(
            "granian",
            env=self.env(debug=False),
            log_path=self.workdir / "granian.log",
            answers=lambda port: _status(port, "/accounts/login/") == 200,
        )
        progress(f"granian serving the app on 127.0.0.1:{self.port}")

    def resolve(self) -> None:
        """Each user's pages and the status each gives, in-process (ids from the demo's data)."""
        from django.contrib.auth import get_user_model
        from django.test import Client

        for username in USERS:
            user = get_user_model().objects.get(username=username)
            client = Client()
            client.force_login(user)
            for label, url in resolve_pages(user):
                self.results[username, label] = PageResult(username, label, url, client.get(url).status_code)

    def run(self) -> None:
        args = self.args
        clients = {username: signed_in(self.port, username) for username in USERS}
        try:
            for row in self.results.values():
                for _ in range(args.warmup):
                    self.get(clients[row.user], row)
            rounds = max(1, min(args.rounds, args.requests))
            for number in range(rounds):
                progress(f"round {number + 1} of {rounds}")
                share = args.requests // rounds + (1 if number < args.requests % rounds else 0)
                for row in self.results.values():
                    for _ in range(share):
                        row.samples.append(self.get(clients[row.user], row))
        finally:
            for client in clients.values():
                client.close()
        self.server.check_running()

    def get(self, client, row: PageResult) -> float:
        """One GET of the row's page over HTTP, its milliseconds; the status must be the one it gave in-process."""
        started = time.perf_counter()
        response = client.get(row.url)
        seconds = time.perf_counter() - started
        if response.status_code != row.status or not response.content:
            raise BenchError(f"{row.user}, GET {row.url}: {response.status_code} over HTTP, {row.status} in-process;"
                             f" {response.text[:300]!r}")  # fmt: skip
        row.kib = len(response.content) / 1024
        return seconds * 1000

    def cleanup(self) -> None:
        from django.db import connections

        Child.stop_all()
        connections.close_all()
        if not (self.args.keep or self.args.reuse):
            self.databases.drop_created()
            shutil.rmtree(self.var_dir, ignore_errors=True)


def _status(port: int, path: str) -> int:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


# ---------------------------------------------------------------------------------------------- report


def report(bench: Bench, *, command: str, code: str, started_at: dt.datetime, load: tuple[str, str]) -> str:
    args, facts = bench.args, bench.facts
    lines = results_header(started_at=started_at, seconds=elapsed(), command=command, code=code)
    lines += [
        *machine_lines(("Django", "granian", "django-guardian", "psycopg", "httpx")),
        f"- PostgreSQL {bench.databases.settings(['server_version'])['server_version']} on 127.0.0.1; granian, one "
        "worker, DEBUG off, persistent connections (CONN_MAX_AGE 60)",
        f"- Load average {load[0]} at the start, {load[1]} at the end (1, 5, 15 min; the machine is shared: other"
        " sessions' work may run meanwhile)",
        f"- Data: {facts['versions']:,} artifact versions ({facts['seeded versions']:,} seeded in "
        f"{facts.get('artifacts', '?')} artifacts `{SEEDED_PREFIX}<n>`, the rest the demo's), {facts['entries']:,}"
        f" audit entries ({args.entries:,} synthetic first, then the demo's)"
        + (
            "; the database kept by an earlier run (--reuse)"
            if facts["reused"]
            else f"; seeded in {facts['entries seconds']:.0f} s (audit COPY), {facts['versions seconds']:.0f} s"
            f" (versions), {facts['catch-up seconds']:.0f} s (kept subtrees, tree head, VACUUM ANALYZE)"
        ),
        "",
        f"Over HTTP with httpx, each user signed in through the login form, one keep-alive connection each. Per page "
        f"and user: {args.warmup} warm-up requests, then {args.requests} timed in {args.rounds} rounds through all the"
        " pages; milliseconds (request sent to body read), nearest-rank p95. Queries: one in-process request under"
        " CaptureQueriesContext (session and user lookups included), on the demo alone and at scale;"
        ' "same shape" is the most times one statement ran with only its literals differing (1: none repeated).',
        "",
        "| User | Page | Status | KiB | Queries, demo | Queries, at scale | Same shape | p50 ms | p95 ms | max ms"
        f" | p95 < {TARGET_MS:.0f} ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    slow, growing, repeated = [], [], []
    for row in bench.results.values():
        ok = row.p95 < TARGET_MS
        slow += [] if ok else [row]
        growing += [row] if row.queries_demo is not None and row.queries_demo != row.queries else []
        repeated += [row] if row.most_repeated > 1 else []
        demo = "—" if row.queries_demo is None else str(row.queries_demo)
        lines.append(
            f"| {row.user} | `{row.page}` | {row.status} | {row.kib:.1f} | {demo} | {row.queries} | "
            f"{row.most_repeated} | {row.p50:.1f} | {row.p95:.1f} | {max(row.samples):.1f} | "
            f"{'pass' if ok else '**MISS**'} |"
        )
    lines += ["", "The URLs requested (ids read from the database after load_demo):", ""]
    for username in USERS:
        urls = [row.url for (user, _), row in bench.results.items() if user == username]
        lines.append(f"- {username}: " + ", ".join(f"`{url}`" for url in urls))
    lines += ["", f"Pages over {TARGET_MS:.0f} ms at p95: {len(slow)}"]
    lines += [f"- {row.user}, `{row.page}`: p95 {row.p95:.1f} ms" for row in slow]
    lines += [f"Pages whose query count changed from the demo to the scale: {len(growing)}"]
    lines += [f"- {row.user}, `{row.page}`: {row.queries_demo} → {row.queries}" for row in growing]
    lines += [f"Pages running one statement shape more than once: {len(repeated)}"]
    lines += [f"- {row.user}, `{row.page}`: {row.most_repeated}x `{row.repeated_sql[:160]}…`" for row in repeated]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=100_000, help="artifact versions seeded (default 100,000)")
    parser.add_argument("--entries", type=int, default=1_000_000, help="synthetic audit entries (default 1,000,000)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page and user (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page and user first (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds the timed requests are split into (default 3)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_URL,
        help=f"server and base name of the database (default DATABASE_URL, else {DEFAULT_URL})",
    )
    parser.add_argument("--reuse", action="store_true", help="use the database a previous run kept, and keep it")
    parser.add_argument("--keep", action="store_true", help="keep the database and var folder this run makes")
    parser.add_argument("--no-readme", action="store_true", help="print the results only")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a quick check that it runs: 2,000 versions and audit entries, 1 warm-up and 3 timed requests a page, "
        "--no-readme; exits non-zero on any error or a page that answers otherwise over HTTP than in-process",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.versions, args.entries, args.requests, args.warmup, args.rounds = 2_000, 2_000, 3, 1, 1
        args.no_readme, args.reuse, args.keep = True, False, False
    if args.versions < 1 or args.entries < 1 or args.requests < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--versions, --entries, --requests and --rounds must be positive, --warmup not negative")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    command = command_line(__file__, argv)
    code = code_version()
    started_at = dt.datetime.now(dt.UTC)
    load_start = load_average()
    exit_on_sigterm()
    bench = Bench(args)
    os.environ["PROVENANT_MFA_REQUIRED"] = "false"  # in this process too (the in-process pages): see Bench.env
    configure_django(bench.databases.url(bench.databases.base), str(bench.var_dir), secret_key=bench.secret)
    if (status := run_bench(bench, bench.workdir)) is not None:
        return status
    results = report(bench, command=command, code=code, started_at=started_at, load=(load_start, load_average()))
    show_results(results, start=RESULTS_START, end=RESULTS_END, write_readme=not args.no_readme)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
