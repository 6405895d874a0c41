"""Lifecycle (issue 19): planning a project of 1,000,000 versions, applying a plan that deletes 100,000 blobs, and
what the garbage collector's safety adds to an upload, each next to the machine's ceiling measured in the same run.

(One file of about 1,130 lines on purpose: the data set's SQL, the three phases and the report that reads their
figures belong together. What every benchmark needs around its measurements is in benchmarks/harness.py.)

    .venv/bin/python benchmarks/lifecycle.py [--versions 100000,1000000] [--apply-versions 100000]
        [--uploads 300] [--rounds 2] [--no-readme] [--smoke]

Everything runs on 127.0.0.1 and is started and stopped here: a fresh PostgreSQL database of the script's own
(`provenant_bench_<pid>_lifecycle`, migrated, dropped at the end), moto's S3 server on a free port (the blob store of
every phase), and the first empty Redis database of 13, 12, ..., 8 (the broker, on which tasks are only queued;
emptied at the end). The data set is written by SQL (`INSERT ... SELECT`
over `generate_series`, final values only: the version tables' triggers refuse any UPDATE), never row by row
through the ORM; the small parts a planner protects (registered models with production and staging versions and
aliases, a legal hold, lineage) go through the models. Planning and applying each run in a child process of their
own (`json_child`), so that its wall time and peak resident set (VmHWM) are the planner's or the applier's alone;
what they queue stays on Redis (no worker runs). `LIFECYCLE_BENCH_TRACE=1` prints each generator statement's time,
`LIFECYCLE_BENCH_PROFILE=PATH` writes cProfile statistics of each child's call to PATH.<action>.<slug>.pstats. What
each figure means and the targets are in benchmarks/README.md, whose lifecycle results this
script rewrites.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import secrets
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (  # benchmarks/ is the script's folder, first on sys.path
    LOCAL_POSTGRES,
    REPO,
    BenchDatabases,
    BenchError,
    Child,
    app_settings,
    bench_main,
    children_of,
    claim_redis_db,
    clean_environment,
    django_setup,
    free_port,
    in_turn,
    json_child,
    listening,
    load_average,
    machine_lines,
    memory_kb,
    progress,
    quantile,
    results_header,
    short,
    use_database,
    verdict,
)

RESULTS_START = "<!-- results:start (written by benchmarks/lifecycle.py) -->"
RESULTS_END = "<!-- results:end -->"
#: The comment the script's database carries: nothing else is ever dropped.
MARKER = "provenant-bench-lifecycle"
BUCKET = "provenant-bench-lifecycle"

# Targets from issue 19: a plan over 1,000,000 versions in under 60 s with memory flat. "Flat" is taken as: the
# planner's peak resident set at the largest size within PEAK_RATIO_TARGET of its peak at the smallest (10 times
# fewer versions in the default run).
PLAN_SECONDS_TARGET = 60.0
PLAN_TARGET_VERSIONS = 1_000_000
PEAK_RATIO_TARGET = 1.25

#: Versions per artifact, and per run (consecutive versions of an artifact share the run that produced them).
VERSIONS_PER_ARTIFACT = 100
VERSIONS_PER_RUN = 10
#: A project's versions are spread over two years, up to yesterday (the apply project's, up to 60 days ago).
HISTORY_DAYS = 730
DATASET_VERSIONS = 20
REGISTERED_MODELS = 5

#: The rules the planning projects run: most versions are selected, and some of those are protected (production
#: and staging versions, aliased ones, the newest of each artifact, a held artifact, inputs of later runs).
PLAN_RULES = [
    {
        "name": "old-checkpoints",
        "action": "delete",
        "kinds": ["checkpoint"],
        "older_than_days": 90,
        "keep_last_versions": 5,
    },
    {"name": "failed-runs", "action": "delete", "run_statuses": ["failed", "cancelled"], "older_than_days": 30},
    {
        "name": "archive-old-models",
        "action": "archive",
        "kinds": ["model", "evaluation_report"],
        "older_than_days": 365,
        "keep_last_versions": 3,
    },
]
#: The apply project's one rule: every version (all checkpoints, all older than a year) is deleted.
APPLY_RULES = [{"name": "purge-checkpoints", "action": "delete", "kinds": ["checkpoint"], "older_than_days": 30}]

UPLOAD_SIZE = 1024
DELETE_BATCH = 1000  # the most S3's DeleteObjects takes in one request
PUT_THREADS = 16


# ---------------------------------------------------------------------------------------------- the data set


@dataclass
class Generated:
    """One generated project: its id and slug, how many versions, and the time its SQL took."""

    slug: str
    project_id: int
    versions: int
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)


def content_of(slug: str, ordinal: int) -> bytes:
    """The bytes of a generated version (also the SQL's: sha256(convert_to(slug || '/' || g, 'UTF8')))."""
    return f"{slug}/{ordinal}".encode()


GENERATE_SQL = [
    # Every version's place: artifact a, number n, run r, time t, digest. Artifact a starts a % 365 days into the
    # two years and publishes its versions evenly until yesterday.
    """
    CREATE TEMP TABLE gen_version ON COMMIT DROP AS
    SELECT g, a, n, (g - 1) / %(per_run)s + 1 AS r,
           %(t0)s::timestamptz + make_interval(days => a %% 365)
             + ((n - 1) * (%(days)s - 1 - a %% 365)::float8 / %(per_artifact)s) * interval '1 day' AS t,
           encode(sha256(convert_to(%(slug)s || '/' || g, 'UTF8')), 'hex') AS digest,
           CASE WHEN %(real_sizes)s::boolean THEN octet_length(convert_to(%(slug)s || '/' || g, 'UTF8'))
                ELSE 1048576 + (g::bigint * 7919) %% 268435456 END AS size
    FROM (SELECT g, (g - 1) / %(per_artifact)s + 1 AS a, (g - 1) %% %(per_artifact)s + 1 AS n
          FROM generate_series(1, %(versions)s) AS g) AS places
    """,
    "ANALYZE gen_version",
    # A tenth of the artifacts are models, three tenths evaluation reports, the rest checkpoints (or all one kind).
    """
    INSERT INTO artifacts_artifact (project_id, name, kind, description, restricted, created_at)
    SELECT %(project)s, 'artifact-' || lpad(a::text, 6, '0'),
           CASE WHEN %(one_kind)s::text <> '' THEN %(one_kind)s::text
                WHEN a %% 10 = 0 THEN 'model' WHEN a %% 10 IN (1, 2, 3) THEN 'evaluation_report'
                ELSE 'checkpoint' END,
           '', false, %(t0)s::timestamptz + make_interval(days => a %% 365)
    FROM generate_series(1, %(artifacts)s) AS a
    """,
    """
    CREATE TEMP TABLE gen_artifact ON COMMIT DROP AS
    SELECT id, kind, substr(name, 10)::int AS a FROM artifacts_artifact WHERE project_id = %(project)s
    """,
    "ANALYZE gen_artifact",
    # Runs: 70 % completed, 20 % failed (with a reason), 10 % cancelled; each ended an hour before its first version.
    """
    INSERT INTO artifacts_run (project_id, external_id, name, status, code_repository, code_commit, entry_point,
                               parameters, metrics, environment, failure_reason, started_at, ended_at,
                               created_by_id, created_at)
    SELECT %(project)s, 'run-' || r, '',
           CASE WHEN r %% 10 < 7 THEN 'completed' WHEN r %% 10 < 9 THEN 'failed' ELSE 'cancelled' END,
           'https://git.example.com/ml/train', substr(md5(r::text), 1, 12), 'train.py', '{}', '{}', '{}',
           CASE WHEN r %% 10 BETWEEN 7 AND 8 THEN 'exit status 1' ELSE '' END,
           t - interval '2 hours', t - interval '1 hour', %(user)s, t - interval '2 hours'
    FROM gen_version WHERE (g - 1) %% %(per_run)s = 0
    """,
    """
    CREATE TEMP TABLE gen_run ON COMMIT DROP AS
    SELECT id, substr(external_id, 5)::int AS r, status FROM artifacts_run WHERE project_id = %(project)s
    """,
    "ANALYZE gen_run",
    """
    INSERT INTO artifacts_blob (digest, size, state, verified_at, created_at, storage_class, archived_at,
                                restore_requested_at, collected_at)
    SELECT digest, size, 'verified', t, t, '', NULL, NULL, NULL FROM gen_version ORDER BY g
    """,
    """
    INSERT INTO artifacts_projectblob (project_id, blob_id, uploaded_by_id, created_at)
    SELECT %(project)s, b.id, %(user)s, b.created_at FROM gen_version v JOIN artifacts_blob b USING (digest)
    """,
    """
    INSERT INTO artifacts_artifactversion (artifact_id, number, blob_id, run_id, media_type, metadata,
                                           created_by_id, created_at, license)
    SELECT ga.id, v.n, b.id, gr.id, 'application/octet-stream', '{}', %(user)s, v.t, ''
    FROM gen_version v JOIN gen_artifact ga ON ga.a = v.a JOIN artifacts_blob b ON b.digest = v.digest
         JOIN gen_run gr ON gr.r = v.r
    ORDER BY v.g
    """,
    # Datasets kept elsewhere (pinned by a manifest digest, no blob), one of whose versions every run read.
    """
    INSERT INTO artifacts_dataset (project_id, name, description, created_at)
    VALUES (%(project)s, 'training-data', '', %(t0)s::timestamptz)
    """,
    """
    INSERT INTO artifacts_datasetversion (dataset_id, number, blob_id, uri, manifest_digest, run_id, row_count,
                                          schema, description, created_by_id, created_at)
    SELECT d.id, k, NULL, 's3://lake/training-data/' || k, encode(sha256(convert_to(%(slug)s || '/data/' || k,
           'UTF8')), 'hex'), NULL, 1000000 * k, '{}', '', %(user)s, %(t0)s::timestamptz + make_interval(days => k)
    FROM artifacts_dataset d, generate_series(1, %(dataset_versions)s) AS k WHERE d.project_id = %(project)s
    """,
    """
    INSERT INTO artifacts_rundatasetinput (run_id, dataset_version_id)
    SELECT gr.id, dv.id FROM gen_run gr JOIN artifacts_dataset d ON d.project_id = %(project)s
         JOIN artifacts_datasetversion dv ON dv.dataset_id = d.id AND dv.number = gr.r %% %(dataset_versions)s + 1
    """,
    # Lineage between artifacts: the run of each evaluation report's versions read the model version it evaluated
    # (artifact a - a % 10, a model, same number), so a model version some later run used has work to protect it.
    """
    INSERT INTO artifacts_runartifactinput (run_id, artifact_version_id)
    SELECT DISTINCT ON (gr.id) gr.id, mv.id
    FROM gen_version v JOIN gen_artifact ga ON ga.a = v.a AND ga.kind = 'evaluation_report'
         JOIN gen_run gr ON gr.r = v.r
         JOIN gen_artifact gm ON gm.a = v.a - v.a %% 10 AND gm.kind = 'model'
         JOIN artifacts_artifactversion mv ON mv.artifact_id = gm.id AND mv.number = v.n
    ORDER BY gr.id, v.g
    """,
]

ROW_COUNTS = {
    "artifacts": "SELECT count(*) FROM artifacts_artifact WHERE project_id = %(project)s",
    "runs": "SELECT count(*) FROM artifacts_run WHERE project_id = %(project)s",
    "artifact versions": """SELECT count(*) FROM artifacts_artifactversion v JOIN artifacts_artifact a
                            ON a.id = v.artifact_id WHERE a.project_id = %(project)s""",
    "artifact inputs": """SELECT count(*) FROM artifacts_runartifactinput i JOIN artifacts_run r ON r.id = i.run_id
                          WHERE r.project_id = %(project)s""",
    "dataset inputs": """SELECT count(*) FROM artifacts_rundatasetinput i JOIN artifacts_run r ON r.id = i.run_id
                         WHERE r.project_id = %(project)s""",
}


def generate(connection: Any, *, project_id: int, slug: str, user_id: int, versions: int, one_kind: str = "",
             real_sizes: bool = False, ends_days_ago: int = 1) -> Generated:  # fmt: skip
    """Write a project's artifacts, runs, blobs, claims, versions, datasets and lineage in one transaction."""
    started = time.perf_counter()
    parameters = {
        "project": project_id,
        "slug": slug,
        "user": user_id,
        "versions": versions,
        "artifacts": -(-versions // VERSIONS_PER_ARTIFACT),
        "per_artifact": VERSIONS_PER_ARTIFACT,
        "per_run": VERSIONS_PER_RUN,
        "days": HISTORY_DAYS,
        "t0": datetime.now(UTC) - timedelta(days=HISTORY_DAYS + ends_days_ago - 1),
        "one_kind": one_kind,
        "real_sizes": real_sizes,
        "dataset_versions": DATASET_VERSIONS,
    }
    with connection.transaction(), connection.cursor() as cursor:
        for statement in GENERATE_SQL:
            started_statement = time.perf_counter()
            cursor.execute(statement, parameters)
            if os.environ.get("LIFECYCLE_BENCH_TRACE"):
                progress(f"  {time.perf_counter() - started_statement:6.2f} s {' '.join(statement.split())[:70]}")
        rows = {name: cursor.execute(query, parameters).fetchone()[0] for name, query in ROW_COUNTS.items()}
    with connection.cursor() as cursor:
        for table in ("artifacts_blob", "artifacts_artifactversion", "artifacts_run", "artifacts_projectblob",
                      "artifacts_runartifactinput", "artifacts_rundatasetinput", "artifacts_artifact"):  # fmt: skip
            cursor.execute(f"ANALYZE {table}")
    if rows["artifact versions"] != versions:
        raise BenchError(f"{slug}: {rows['artifact versions']} versions generated, not {versions}")
    return Generated(slug, project_id, versions, time.perf_counter() - started, rows)


def protect(project: Any, user: Any) -> dict[str, int]:
    """What a planner must protect, through the models (a few rows): registered models whose production, staging
    and aliased versions are old enough for a rule, and a legal hold on one checkpoint artifact."""
    from django.utils import timezone

    from artifacts.models import Artifact, ArtifactVersion
    from governance.lifecycle.models import LegalHold
    from governance.registry.models import ModelAlias, ModelVersion, RegisteredModel, Stage

    now = timezone.now()
    models = list(Artifact.objects.filter(project=project, kind=Artifact.Kind.MODEL).order_by("name"))
    counts = {"registered models": 0, "model versions": 0, "aliases": 0, "legal holds": 0}
    last = VERSIONS_PER_ARTIFACT
    for artifact in models[:REGISTERED_MODELS]:
        registered = RegisteredModel.objects.create(project=project, name=f"model-{artifact.name}", created_by=user)
        stages = {1: Stage.NONE, last // 2: Stage.ARCHIVED, last - 2: Stage.NONE, last - 1: Stage.STAGING,
                  last: Stage.PRODUCTION}  # fmt: skip
        versions = {v.number: v for v in ArtifactVersion.objects.filter(artifact=artifact, number__in=stages)}
        registered_versions = {}
        for number, (artifact_number, stage) in enumerate(sorted(stages.items()), start=1):
            registered_versions[artifact_number] = ModelVersion.objects.create(
                registered_model=registered,
                number=number,
                artifact_version=versions[artifact_number],
                stage=stage,
                stage_changed_at=None if stage == Stage.NONE else now,
                created_by=user,
            )
        for name, artifact_number in (("champion", last), ("candidate", last - 1), ("baseline", 1)):
            ModelAlias.objects.create(
                registered_model=registered,
                name=name,
                model_version=registered_versions[artifact_number],
                set_by=user,
                set_at=now,
            )
        counts["registered models"] += 1
        counts["model versions"] += len(stages)
        counts["aliases"] += 3
    held = Artifact.objects.filter(project=project, kind=Artifact.Kind.CHECKPOINT).order_by("name").first()
    if held is not None:
        LegalHold.objects.create(project=project, artifact=held, reason="Litigation hold: benchmark data set.",
                                 placed_by=user, placed_at=now)  # fmt: skip
        counts["legal holds"] += 1
    return counts


def set_rules(project: Any, user: Any, rules: list[dict]) -> None:
    """The project's retention rules, through the policies service (which checks their shape)."""
    from governance.lifecycle.services.policies import retention_policy_set

    retention_policy_set(project=project, changed_by=user, rules=rules, auto_apply=False, note="benchmark")


# ---------------------------------------------------------------------------------------------- child processes

#: Plans (or applies the newest plan of) a project in a process of its own; answers the wall time, the resident set
#: before and at peak, and what the plan holds.
PLANNER = r"""
import json, resource, sys, time
from pathlib import Path
request = json.loads(sys.argv[1])
sys.path[:0] = [request["repo"], request["benchmarks"]]
from harness import django_setup, memory_kb
django_setup(Path(request["repo"]))
from django.contrib.auth import get_user_model
from django.db.models import Count
from artifacts.models import Project
from governance.lifecycle.models import RetentionPlan
from governance.lifecycle.services.plans import retention_plan_apply, retention_plan_create
project = Project.objects.get(slug=request["slug"])
user = get_user_model().objects.get(username=request["user"])
RetentionPlan.objects.filter(project=project).count()  # the connection open, the ORM warm
before = memory_kb(__import__("os").getpid())
profile = request.get("profile") and __import__("cProfile").Profile()
started = time.perf_counter()
if profile:
    profile.enable()
if request["action"] == "plan":
    plan = retention_plan_create(project=project, created_by=user, trigger=RetentionPlan.Trigger.MANUAL)
else:
    plan = retention_plan_apply(plan=RetentionPlan.objects.get(pk=request["plan"]), applied_by=user)
seconds = time.perf_counter() - started
if profile:
    profile.disable()
    profile.dump_stats(f"{request['profile']}.{request['action']}.{project.slug}.pstats")
after = memory_kb(__import__("os").getpid())
items = dict(plan.items.values_list("action").annotate(n=Count("id")).values_list("action", "n"))
states = dict(plan.items.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
print(json.dumps({"seconds": seconds, "rss_before_kb": before["VmRSS"], "peak_kb": after["VmHWM"],
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "plan": plan.pk,
                  "state": plan.state, "items": items, "states": states}))
"""


# ---------------------------------------------------------------------------------------------- the floors

#: The bare SQL pass a planner cannot beat: the project's versions with the same joins (artifact, run, blob) and
#: each version's rank in its artifact, newest first.
FLOOR_SELECT = """
SELECT v.id, v.artifact_id, v.number, v.blob_id, b.size, a.kind, r.status, v.created_at,
       row_number() OVER (PARTITION BY v.artifact_id ORDER BY v.number DESC) AS newest_rank
FROM artifacts_artifactversion v JOIN artifacts_artifact a ON a.id = v.artifact_id
     JOIN artifacts_blob b ON b.id = v.blob_id LEFT JOIN artifacts_run r ON r.id = v.run_id
WHERE a.project_id = %(project)s
"""
#: The writing floor: as many item rows as the plan wrote, by one INSERT ... SELECT (rolled back).
FLOOR_INSERT = (
    """
INSERT INTO lifecycle_retentionplanitem (plan_id, artifact_version_id, dataset_version_id, blob_id, size, action,
                                         rule, protected_by, state, outcome, done_at)
SELECT %(plan)s, id, NULL, blob_id, size, 'delete', 'old-checkpoints', '', 'pending', '', NULL
FROM ("""
    + FLOOR_SELECT
    + """) AS selected LIMIT %(items)s
"""
)


def floor_count(connection: Any, project_id: int) -> float:
    started = time.perf_counter()
    query = f"SELECT count(*) FROM ({FLOOR_SELECT}) AS selected"  # noqa: S608 (a constant)
    connection.execute(query, {"project": project_id}).fetchone()
    return time.perf_counter() - started


def floor_stream(connection: Any, project_id: int) -> tuple[float, int]:
    """Every row of the pass read into this process through a server-side cursor, 10,000 at a time."""
    started = time.perf_counter()
    rows = 0
    with connection.transaction(), connection.cursor(name="floor") as cursor:
        cursor.itersize = 10_000
        cursor.execute(FLOOR_SELECT, {"project": project_id})
        for _ in cursor:
            rows += 1
    return time.perf_counter() - started, rows


def floor_insert(connection: Any, project_id: int, plan_id: int, items: int) -> float:
    started = time.perf_counter()
    with contextlib.suppress(Rollback), connection.transaction():
        connection.execute(FLOOR_INSERT, {"project": project_id, "plan": plan_id, "items": items})
        seconds = time.perf_counter() - started
        raise Rollback
    return seconds


class Rollback(Exception):
    """Leaves a `connection.transaction()` block by rolling back what a floor wrote."""


# ---------------------------------------------------------------------------------------------- results


@dataclass
class PlanRound:
    versions: int
    planner: dict[str, Any]
    count_s: float
    stream_s: float
    stream_rows: int
    insert_s: float


@dataclass
class ApplyResult:
    versions: int
    plan_s: float = 0.0
    apply: dict[str, Any] = field(default_factory=dict)
    put_s: float = 0.0
    raw_batch_s: float = 0.0
    raw_single_s: float = 0.0
    raw_single_count: int = 0
    raw_tombstones_s: float = 0.0
    tombstones: int = 0
    collected: int = 0
    objects_left: int = -1
    queued: int = 0


@dataclass
class UploadCost:
    """Per side ("safe", "bare"): (blob_store ms, artifact_version_publish ms) per upload; the safety's steps alone."""

    times: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: {"safe": [], "bare": []})
    lock: list[float] = field(default_factory=list)
    head: list[float] = field(default_factory=list)

    def whole(self, side: str) -> list[float]:
        return [store + publish for store, publish in self.times[side]]

    def publish(self, side: str) -> list[float]:
        return [publish for _, publish in self.times[side]]


# ---------------------------------------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.databases = BenchDatabases(args.database_url, default_base="postgres", marker=MARKER)
        self.database = f"provenant_bench_{os.getpid()}_lifecycle"
        self.moto: Child | None = None
        self.moto_port = 0
        self.redis_url = ""
        self.redis: Any = None
        self.env: dict[str, str] = {}
        self.child_env: dict[str, str] = {}
        self.user: Any = None
        self.generated: list[Generated] = []
        self.protections: dict[str, int] = {}
        self.rounds: list[PlanRound] = []
        self.applied: ApplyResult | None = None
        self.upload = UploadCost()
        self.db_settings: dict[str, str] = {}
        self.load_at_start = load_average()
        self.load_at_end = "?"
        self.moto_peak_kb = 0
        self._s3: Any = None

    # Set-up ---------------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        self.start_moto()
        self.redis_url, self.redis = claim_redis_db()
        progress(f"broker {self.redis_url}; creating and migrating {self.database}")
        self.databases.create(self.database)
        self.db_settings = self.databases.settings(
            ["server_version", "shared_buffers", "work_mem", "synchronous_commit", "fsync"]
        )
        s3 = {
            "PROVENANT_S3_BUCKET": BUCKET,
            "PROVENANT_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.moto_port}",
            "PROVENANT_S3_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_CONFIG_FILE": str(self.workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.workdir / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        settings = app_settings(
            database_url=self.databases.url(self.database),
            var_dir=self.workdir / "var",
            secret_key=secrets.token_urlsafe(50),
        )
        self.env = clean_environment("AWS_") | settings | s3 | {"PYTHONUNBUFFERED": "1"}
        # As deployed: what the children queue (each deletion's collect_blob) waits on Redis for a worker that never
        # runs here; the apply collects each blob itself right after deleting its version.
        self.env |= {"CELERY_BROKER_URL": self.redis_url}
        self.child_env = self.env
        os.environ.clear()
        os.environ.update(self.env)
        django_setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        self.databases.set_comment(self.database, f"{MARKER}: complete")
        self.s3().create_bucket(Bucket=BUCKET)
        # A superuser reads every project's bytes, which publishing requires, without role grants to set up.
        self.user = get_user_model().objects.create_user(
            username="bench-lifecycle", password=None, is_superuser=True, is_staff=True
        )

    def start_moto(self) -> None:
        self.moto_port = free_port()
        self.moto = Child(
            "moto S3 server",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.moto_port)],
            env={**clean_environment("AWS_"), "PYTHONUNBUFFERED": "1"},
            log_path=self.workdir / "moto.log",
        )
        self.moto.wait_until(lambda: listening(self.moto_port), f"listening on 127.0.0.1:{self.moto_port}")
        progress(f"moto S3 server on 127.0.0.1:{self.moto_port}")

    def s3(self) -> Any:
        if self._s3 is None:
            import boto3
            from botocore.config import Config

            self._s3 = boto3.session.Session(
                aws_access_key_id="bench",
                aws_secret_access_key="bench",  # noqa: S106 (what moto accepts)
                region_name="us-east-1",
            ).client(
                "s3",
                endpoint_url=f"http://127.0.0.1:{self.moto_port}",
                config=Config(max_pool_connections=PUT_THREADS * 2, retries={"max_attempts": 5, "mode": "standard"}),
            )
        return self._s3

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.databases.url(self.database), autocommit=True)

    def project(self, slug: str, versions: int, **options: Any) -> Any:
        from artifacts.services.catalog import project_create

        project = project_create(slug=slug, name=slug.replace("-", " ").title(), created_by=self.user)
        progress(f"{slug}: generating {versions:,} versions by SQL")
        with self.connect() as connection:
            generated = generate(connection, project_id=project.pk, slug=slug, user_id=self.user.pk,
                                 versions=versions, **options)  # fmt: skip
        self.generated.append(generated)
        progress(f"{slug}: {generated.seconds:.1f} s for " + ", ".join(f"{n:,} {w}" for w, n in generated.rows.items()))
        return project

    def child(self, request: dict[str, Any], what: str) -> dict[str, Any]:
        request = {"repo": str(REPO), "benchmarks": str(REPO / "benchmarks"), "user": self.user.username} | request
        request["profile"] = os.environ.get("LIFECYCLE_BENCH_PROFILE", "")
        return json_child(PLANNER, request, what=what, cwd=REPO, env=self.child_env, timeout=3600)

    # Phase 1: planning ----------------------------------------------------------------------------------------

    def measure_planning(self) -> None:
        projects = []
        for versions in self.args.versions:
            project = self.project(f"plan-{short(versions)}", versions)
            self.protections = protect(project, self.user)
            set_rules(project, self.user, PLAN_RULES)
            projects.append((versions, project))
        with self.connect() as connection:
            for number in range(1, self.args.rounds + 1):
                for versions, project in projects:
                    self.rounds.append(self.plan_round(connection, number, versions, project))

    def plan_round(self, connection: Any, number: int, versions: int, project: Any) -> PlanRound:
        figures: dict[str, Any] = {}

        def planner() -> None:
            figures["planner"] = self.planner_within(project, self.args.plan_timeout)

        def floors() -> None:
            figures["count"] = floor_count(connection, project.pk)
            figures["stream"] = floor_stream(connection, project.pk)

        for side in in_turn(number, planner, floors):
            side()
        plan = figures["planner"]
        written = sum(plan["items"].values())
        insert_s = floor_insert(connection, project.pk, plan["plan"], written) if plan["plan"] else 0.0
        progress(
            f"round {number}, {versions:,} versions: plan {plan['seconds']:.1f} s "
            f"{'(STOPPED, unfinished' if plan.get('stopped') else f'({written:,} items'}, peak "
            f"{plan['peak_kb'] / 1024:.0f} MiB); floors: count {figures['count']:.1f} s, stream "
            f"{figures['stream'][0]:.1f} s, insert {insert_s:.1f} s"
        )
        return PlanRound(versions, plan, figures["count"], *figures["stream"], insert_s)

    def planner_within(self, project: Any, timeout: float) -> dict[str, Any]:
        """The planner's answer; or, when it has not finished within `timeout` s, what it was doing then, after
        stopping it (its database session ended, so its transaction rolls back and it exits): its peak resident set
        so far and the statement it was in, answered as a plan of no items, `stopped`."""
        stopped: dict[str, Any] = {}

        def stop() -> None:
            for pid in children_of(os.getpid()):
                with contextlib.suppress(OSError):
                    if PLANNER.strip()[:40] in Path(f"/proc/{pid}/cmdline").read_text():
                        stopped["peak_kb"] = memory_kb(pid)["VmHWM"]
            with self.connect() as connection:
                row = connection.execute(
                    """SELECT pid, extract(epoch FROM now() - query_start), query FROM pg_stat_activity
                       WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
                       ORDER BY query_start LIMIT 1"""
                ).fetchone()
                if row is not None:
                    stopped["statement"] = f"{' '.join(row[2].split())[:300]} (running for {row[1]:.0f} s)"
                    connection.execute("SELECT pg_terminate_backend(%s)", [row[0]])
            if "statement" in stopped:
                progress(
                    f"{project.slug}: the planner still ran after {timeout:.0f} s; stopped in {stopped['statement']}"
                )

        timer = threading.Timer(timeout, stop)
        timer.start()
        try:
            return self.child({"action": "plan", "slug": project.slug}, f"planning {project.slug}")
        except BenchError:
            timer.join()
            if "statement" not in stopped:
                raise
            return {"seconds": timeout, "peak_kb": stopped.get("peak_kb", 0), "rss_before_kb": 0, "plan": None,
                    "items": {}, "states": {}, "stopped": stopped["statement"]}  # fmt: skip
        finally:
            timer.cancel()

    # Phase 2: applying ----------------------------------------------------------------------------------------

    def measure_apply(self) -> None:
        count = self.args.apply_versions
        result = self.applied = ApplyResult(count)
        slug = f"apply-{short(count)}"
        # Its history ends 60 days ago: every version is older than the rule's 30 days.
        project = self.project(slug, count, one_kind="checkpoint", real_sizes=True, ends_days_ago=60)
        progress(f"{slug}: putting {count:,} blobs and {count:,} raw objects into moto")
        result.put_s = self.put_objects(
            [(f"sha256/{d[:2]}/{d[2:4]}/{d}", body) for d, body in self.bodies(slug, count)]
        )
        raw_keys = [f"raw/{number:08d}" for number in range(count)]
        self.put_objects([(key, b"x" * 32) for key in raw_keys])
        set_rules(project, self.user, APPLY_RULES)
        with self.connect() as connection:
            result.raw_tombstones_s = self.raw_tombstones(connection, project.pk)
        # The same server's own delete rates, before the apply: in batches of 1,000, then one at a time.
        single = raw_keys[: self.args.single_deletes]
        result.raw_batch_s = self.delete_batches(raw_keys[len(single) :])
        started = time.perf_counter()
        for key in single:
            self.s3().delete_object(Bucket=BUCKET, Key=key)
        result.raw_single_s, result.raw_single_count = time.perf_counter() - started, len(single)
        planned = self.child({"action": "plan", "slug": slug}, f"planning {slug}")
        result.plan_s = planned["seconds"]
        if planned["items"].get("delete", 0) != count:
            raise BenchError(f"{slug}: the plan deletes {planned['items']} rather than all {count:,} versions")
        progress(f"{slug}: planned in {result.plan_s:.1f} s; applying")
        self.redis.flushdb()
        result.apply = self.child({"action": "apply", "slug": slug, "plan": planned["plan"]}, f"applying {slug}")
        result.queued = self.redis.llen("default")
        self.redis.flushdb()
        self.check_apply(project, result)
        progress(
            f"{slug}: applied in {result.apply['seconds']:.1f} s ({count / result.apply['seconds']:,.0f} versions/s); "
            f"raw deletes: batches {(count - len(single)) / result.raw_batch_s:,.0f}/s, one by one "
            f"{len(single) / max(result.raw_single_s, 1e-9):,.0f}/s"
        )

    @staticmethod
    def bodies(slug: str, count: int) -> list[tuple[str, bytes]]:
        return [(hashlib.sha256(body).hexdigest(), body) for body in (content_of(slug, g) for g in range(1, count + 1))]

    def put_objects(self, objects: list[tuple[str, bytes]]) -> float:
        client = self.s3()
        started = time.perf_counter()
        with ThreadPoolExecutor(PUT_THREADS) as pool:
            # list(): the map's results are awaited, so a failed PUT raises here.
            list(pool.map(lambda item: client.put_object(Bucket=BUCKET, Key=item[0], Body=item[1]), objects))
        return time.perf_counter() - started

    def delete_batches(self, keys: list[str]) -> float:
        client = self.s3()
        started = time.perf_counter()
        for first in range(0, len(keys), DELETE_BATCH):
            answer = client.delete_objects(
                Bucket=BUCKET,
                Delete={"Objects": [{"Key": k} for k in keys[first : first + DELETE_BATCH]], "Quiet": True},
            )
            if answer.get("Errors"):
                raise BenchError(f"raw DeleteObjects failed: {answer['Errors'][:3]}")
        return time.perf_counter() - started

    @staticmethod
    def raw_tombstones(connection: Any, project_id: int) -> float:
        """One tombstone per version of the project by one INSERT ... SELECT, rolled back: the database's rate."""
        started = time.perf_counter()
        with contextlib.suppress(Rollback), connection.transaction():
            connection.execute(
                """
                INSERT INTO artifacts_versiontombstone (project_id, artifact_version_id, dataset_version_id,
                                                        deleted_by_id, deleted_at, reason, rule, plan_id)
                SELECT a.project_id, v.id, NULL, NULL, now(), 'Deleted by the retention rule purge-checkpoints.',
                       'purge-checkpoints', NULL
                FROM artifacts_artifactversion v JOIN artifacts_artifact a ON a.id = v.artifact_id
                WHERE a.project_id = %(project)s
                """,
                {"project": project_id},
            )
            seconds = time.perf_counter() - started
            raise Rollback
        return seconds

    def check_apply(self, project: Any, result: ApplyResult) -> None:
        from artifacts.models import Blob, VersionTombstone

        result.tombstones = VersionTombstone.objects.filter(project=project).count()
        result.collected = Blob.objects.filter(project_links__project=project, collected_at__isnull=False).count()
        # At most the first page: any at all is a failure.
        answer = self.s3().list_objects_v2(Bucket=BUCKET, Prefix="sha256/", MaxKeys=1000)
        result.objects_left = answer.get("KeyCount", 0)

    # Phase 3: the upload's extra cost ---------------------------------------------------------------------------

    def measure_upload_cost(self) -> None:
        """Uploads of new bytes (blob_store, then artifact_version_publish) with the collector's safety and without
        it, in turns, each side in a project of its own; then, on the safe side's blobs, the safety's steps alone."""
        from django.db import transaction

        from artifacts.models import Artifact, Blob
        from artifacts.services.catalog import artifact_create, project_create
        from artifacts.storage import blob_storage

        sides = {}
        for side in ("safe", "bare"):
            project = project_create(slug=f"uploads-{side}", name=f"Uploads {side}", created_by=self.user)
            artifact = artifact_create(project=project, name="model", kind=Artifact.Kind.MODEL, created_by=self.user)
            sides[side] = (project, artifact)
        cost = self.upload
        digests = []
        for number in range(1, self.args.upload_warmup + self.args.uploads + 1):
            timed = number > self.args.upload_warmup
            for side in in_turn(number, "safe", "bare"):
                store_ms, publish_ms, digest = self.upload_once(*sides[side], safety=side == "safe")
                if timed:
                    cost.times[side].append((store_ms, publish_ms))
                    if side == "safe":
                        digests.append(digest)
        storage = blob_storage()
        for number, digest in enumerate(digests, start=1):
            blob = Blob.objects.get(digest=digest)

            def lock(blob: Blob = blob) -> None:
                with transaction.atomic():
                    started = time.perf_counter()
                    Blob.objects.select_for_update(no_key=True).get(pk=blob.pk)
                    cost.lock.append((time.perf_counter() - started) * 1000)

            def head(blob: Blob = blob) -> None:
                started = time.perf_counter()
                if not storage.exists(blob.storage_key):
                    raise BenchError(f"{blob} is not in the bucket")
                cost.head.append((time.perf_counter() - started) * 1000)

            for step in in_turn(number, lock, head):
                step()
        self.redis.flushdb()  # the uploads' verification tasks, never run: nothing here measures them
        progress(
            f"uploads: p50 {statistics.median(cost.whole('safe')):.2f} ms with the safety, "
            f"{statistics.median(cost.whole('bare')):.2f} ms without; lock query p50 "
            f"{statistics.median(cost.lock):.2f} ms, HEAD p50 {statistics.median(cost.head):.2f} ms"
        )

    def upload_once(self, project: Any, artifact: Any, *, safety: bool) -> tuple[float, float, str]:
        """One upload of new random bytes: the milliseconds of blob_store and of artifact_version_publish, and the
        digest. Without `safety`, the publish skips the blob's locked re-read and collected check
        (`blob_locked_stored`), in this process only."""
        from artifacts.services import catalog
        from artifacts.services.blobs import blob_store

        content = os.urandom(UPLOAD_SIZE)
        digest = hashlib.sha256(content).hexdigest()
        started = time.perf_counter()
        blob_store(project=project, stream=io.BytesIO(content), expected_digest=digest, uploaded_by=self.user,
                   declared_length=len(content))  # fmt: skip
        stored = time.perf_counter()
        real = catalog.blob_locked_stored
        if not safety:
            catalog.blob_locked_stored = lambda blob, *, project=None: blob
        try:
            catalog.artifact_version_publish(artifact=artifact, digest=f"sha256:{digest}", created_by=self.user)
        finally:
            catalog.blob_locked_stored = real
        published = time.perf_counter()
        return (stored - started) * 1000, (published - stored) * 1000, digest

    # The run --------------------------------------------------------------------------------------------------

    def use_second_database(self) -> None:
        """The apply and upload phases in a database of their own: what they measure (deleting, uploading) must not
        pay for the planning projects' million rows, as a store that big would make a small plan pay today (the
        README's analysis says why)."""
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        self.database = f"{self.database}_apply"
        progress(f"creating and migrating {self.database}")
        self.databases.create(self.database)
        self.env["DATABASE_URL"] = os.environ["DATABASE_URL"] = self.databases.url(self.database)
        self.child_env = self.env
        use_database(self.database)
        call_command("migrate", verbosity=0, interactive=False)
        self.databases.set_comment(self.database, f"{MARKER}: complete")
        self.user = get_user_model().objects.create_user(
            username="bench-lifecycle", password=None, is_superuser=True, is_staff=True
        )

    def run(self) -> None:
        self.measure_planning()
        self.use_second_database()
        self.measure_apply()
        self.measure_upload_cost()
        self.load_at_end = load_average()
        if self.args.smoke:
            self.check_smoke()

    def check_smoke(self) -> None:
        """--smoke: a run whose plan is empty or whose apply left a version, a blob or an object behind fails."""
        problems = [f"the plan of {r.versions:,} versions holds no item" for r in self.rounds if not r.planner["items"]]
        applied = self.applied
        assert applied is not None
        if applied.apply.get("state") != "applied" or applied.apply.get("states", {}).get("done") != applied.versions:
            problems.append(f"the apply ended {applied.apply.get('state')} with items {applied.apply.get('states')}")
        if applied.tombstones != applied.versions or applied.collected != applied.versions or applied.objects_left:
            problems.append(f"{applied.tombstones} tombstones, {applied.collected} blobs collected and "
                            f"{applied.objects_left} objects left, for {applied.versions} versions")  # fmt: skip
        if problems:
            raise BenchError("the smoke run did not do what it measures:\n- " + "\n- ".join(problems))
        progress("smoke checks: every plan holds items; every version deleted, every blob collected, no object left")

    def cleanup(self) -> None:
        from django.db import connections

        if self.moto is not None and self.moto.process.poll() is None:
            with contextlib.suppress(OSError):
                self.moto_peak_kb = memory_kb(self.moto.pid)["VmHWM"]
        Child.stop_all()
        connections.close_all()
        with contextlib.suppress(Exception):
            self.databases.drop_created()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                self.redis.flushdb()


# ---------------------------------------------------------------------------------------------- report


def machine(bench: Bench) -> list[str]:
    settings = bench.db_settings
    load = (
        f"; load average {bench.load_at_start} at the start, {bench.load_at_end} at the end (1, 5, 15 min; the "
        "machine is shared: other sessions' tests may run meanwhile)"
    )
    return [
        *machine_lines(("Django", "psycopg", "boto3", "moto"), note=load),
        f"- PostgreSQL {settings.get('server_version', '?')} (shared_buffers {settings.get('shared_buffers', '?')}, "
        f"work_mem {settings.get('work_mem', '?')}, synchronous_commit {settings.get('synchronous_commit', '?')}, "
        f"fsync {settings.get('fsync', '?')}); moto's S3 server; all on 127.0.0.1; DEBUG off",
    ]


def data_report(bench: Bench) -> list[str]:
    lines = [
        "### The data set",
        "",
        f"Written by SQL per project (`GENERATE_SQL`): artifacts of {VERSIONS_PER_ARTIFACT} versions each (a tenth "
        "models, three tenths evaluation reports, the rest checkpoints), one unique blob per version, a run per "
        f"{VERSIONS_PER_RUN} consecutive versions (70 % completed, 20 % failed, 10 % cancelled), versions spread over "
        f"{HISTORY_DAYS} days up to yesterday, every run reading one of {DATASET_VERSIONS} external dataset versions "
        "and each evaluation report's run reading the model version it evaluated. Each planning project also has "
        f"{bench.protections.get('registered models', 0)} registered models with "
        f"{bench.protections.get('model versions', 0)} versions (production, staging, archived, none) and "
        f"{bench.protections.get('aliases', 0)} aliases, and a legal hold on one checkpoint artifact. Rules: "
        f"`{json.dumps(PLAN_RULES)}`.",
        "",
        "| Project | Versions | Artifacts | Runs | Artifact inputs | Dataset inputs | Written in s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for generated in bench.generated:
        rows = generated.rows
        lines.append(
            f"| {generated.slug} | {generated.versions:,} | {rows['artifacts']:,} | {rows['runs']:,} | "
            f"{rows['artifact inputs']:,} | {rows['dataset inputs']:,} | {generated.seconds:.1f} |"
        )
    return lines


def planning_report(bench: Bench, misses: list[str]) -> list[str]:
    lines = [
        "### Planning",
        "",
        "`retention_plan_create` in a fresh process per round (wall time of the call; peak resident set VmHWM of the "
        "process, and its growth over the resident set just before the call), next to the bare SQL pass over the "
        "same versions with the same joins and each version's rank in its artifact (`FLOOR_SELECT`): counted on the "
        "server, and every row streamed into Python; the two sides in turns. Then, as the writing floor, one "
        "`INSERT ... SELECT` of as many item rows as the plan wrote (rolled back). Medians over "
        f"{bench.args.rounds} round(s).",
        "",
        "| Versions | Items written (delete / archive / keep) | Plan s | Plan / count floor | Count floor s | "
        "Stream floor s | Insert floor s | Peak RSS MiB | Growth MiB | Target | Result |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    peaks = {}
    stops = []
    for versions in bench.args.versions:
        rounds = [r for r in bench.rounds if r.versions == versions]
        stops += [f"{versions:,} versions: {r.planner['stopped']}" for r in rounds if r.planner.get("stopped")]
        plan_s = statistics.median(r.planner["seconds"] for r in rounds)
        unfinished = any(r.planner.get("stopped") for r in rounds)
        count_s = statistics.median(r.count_s for r in rounds)
        items = rounds[-1].planner["items"]
        peak = max(r.planner["peak_kb"] for r in rounds) / 1024
        finished = [r.planner["peak_kb"] - r.planner["rss_before_kb"] for r in rounds if not r.planner.get("stopped")]
        growth = f"{max(finished) / 1024:.0f}" if finished else "?"
        peaks[versions] = peak
        targeted = versions >= PLAN_TARGET_VERSIONS
        passed = plan_s < PLAN_SECONDS_TARGET and not unfinished if targeted else None
        if passed is False:
            misses.append(f"planning {versions:,} versions: {'not finished in ' if unfinished else ''}{plan_s:.1f} s")
        target = f"< {PLAN_SECONDS_TARGET:.0f} s" if targeted else ""
        lines.append(
            f"| {versions:,} | {sum(items.values()):,} ({items.get('delete', 0):,} / {items.get('archive', 0):,} / "
            f"{items.get('keep', 0):,}) | **{'> ' if unfinished else ''}{plan_s:.1f}** | {plan_s / count_s:.1f}x | "
            f"{count_s:.2f} | "
            f"{statistics.median(r.stream_s for r in rounds):.2f} | "
            f"{statistics.median(r.insert_s for r in rounds):.2f} | {peak:.0f} | {growth} | "
            f"{target} | {verdict(passed) if targeted else ''} |"
        )
    if stops:
        lines += ["", "Stopped unfinished after `--plan-timeout` (their peak is the one reached by then):"]
        lines += [f"- {stop}" for stop in stops]
    smallest, largest = min(peaks), max(peaks)
    if smallest != largest:
        ratio = peaks[largest] / peaks[smallest]
        passed = ratio <= PEAK_RATIO_TARGET
        if not passed:
            misses.append(f"planner memory: peak {peaks[largest]:.0f} MiB at {largest:,} versions, "
                          f"{peaks[smallest]:.0f} MiB at {smallest:,}")  # fmt: skip
        lines += [
            "",
            f"Memory flat: peak {peaks[largest]:.0f} MiB at {largest:,} versions against {peaks[smallest]:.0f} MiB at "
            f"{smallest:,} ({largest // smallest}x the versions): x{ratio:.2f} (target: at most "
            f"x{PEAK_RATIO_TARGET}): {verdict(passed)}.",
        ]
    return lines


def apply_report(bench: Bench, misses: list[str]) -> list[str]:
    result = bench.applied
    assert result is not None
    count = result.versions
    apply_s = result.apply["seconds"]
    batch_count = count - result.raw_single_count
    batch_rate = batch_count / result.raw_batch_s if result.raw_batch_s else 0.0
    single_rate = result.raw_single_count / result.raw_single_s if result.raw_single_s else 0.0
    ok = result.tombstones == count and result.collected == count and result.objects_left == 0
    if not ok:
        misses.append(f"apply: {result.tombstones:,} tombstones, {result.collected:,} blobs collected, "
                      f"{result.objects_left} objects left of {count:,}")  # fmt: skip
    return [
        "### Applying a plan that deletes every version of a project",
        "",
        f"A project of {count:,} checkpoint versions, each with a blob of its own whose bytes are in moto's bucket "
        f"(put by {PUT_THREADS} threads in {result.put_s:.0f} s); its one rule deletes them all. "
        "`retention_plan_apply` in a fresh process, which deletes each version (`version_delete`: tombstone, audit "
        "entry, event) and, after each batch of 200 commits, collects the batch's blobs (`blobs_collect_batch`: their "
        "rows locked, one `DeleteObjects`, `collected_at` in one UPDATE); the "
        f"`collect_blob` task each deletion also queues stays on Redis ({result.queued:,} queued; a worker would "
        "find each blob collected already). Next to it, on the same moto server before the apply: boto3 deleting "
        f"other objects of the same kind in `DeleteObjects` batches of {DELETE_BATCH:,}, and one `DeleteObject` at a "
        "time; and the database writing one tombstone per version by a single `INSERT ... SELECT` (rolled back).",
        "",
        "| Side | Count | s | Per second | Peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| Plan (`retention_plan_create`) | {count:,} | {result.plan_s:.1f} | {count / result.plan_s:,.0f} | |",
        f"| **Apply** (`retention_plan_apply`): versions deleted, blobs collected | {count:,} | {apply_s:.1f} | "
        f"**{count / apply_s:,.0f}** | {result.apply['peak_kb'] / 1024:.0f} |",
        f"| boto3 `DeleteObjects`, {DELETE_BATCH:,} a request | {batch_count:,} | {result.raw_batch_s:.1f} | "
        f"{batch_rate:,.0f} | |",
        f"| boto3 `DeleteObject`, one at a time | {result.raw_single_count:,} | {result.raw_single_s:.1f} | "
        f"{single_rate:,.0f} | |",
        f"| SQL `INSERT ... SELECT` of tombstones | {count:,} | {result.raw_tombstones_s:.2f} | "
        f"{count / result.raw_tombstones_s:,.0f} | |",
        "",
        f"Apply against one `DeleteObject` at a time: {(count / apply_s) / single_rate:.2f}x its rate. "
        f"Checks: {result.tombstones:,} tombstones, {result.collected:,} blobs marked collected, "
        f"{result.objects_left} blob objects left in the bucket: {'as expected' if ok else 'NOT AS EXPECTED'}.",
    ]


def upload_report(bench: Bench) -> list[str]:
    cost = bench.upload
    whole = {side: statistics.median(cost.whole(side)) for side in ("safe", "bare")}
    publish = {side: statistics.median(cost.publish(side)) for side in ("safe", "bare")}
    lock, head = statistics.median(cost.lock), statistics.median(cost.head)
    added = whole["safe"] - whole["bare"]
    return [
        "### What the collector's safety adds to an upload",
        "",
        f"{len(cost.times['safe'])} uploads on each side of {UPLOAD_SIZE:,} new random bytes to S3 (moto) through "
        "`blob_store` then `artifact_version_publish` (each its own transaction), in this process, the two sides in "
        f"turns, each in a project of its own, after {bench.args.upload_warmup} warm-up uploads each. With the "
        "safety: the code as it is. Without: `artifact_version_publish` with `blob_locked_stored` (the blob row "
        "re-read under `SELECT ... FOR NO KEY UPDATE` and refused if collected) replaced by a no-op in this process "
        "only. New bytes take no other extra step: `blob_store` already locked the blob row it creates, and its "
        "HEAD of a collected blob's object runs only when collected bytes are uploaded again. Then, on the safe "
        "side's blobs and in turns, each step alone: the locking query inside an open transaction, and the HEAD.",
        "",
        "| Upload | p50 ms | p95 ms | publish p50 ms |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {'with the safety' if side == 'safe' else 'without it'} | {whole[side]:.2f} | "
            f"{quantile(cost.whole(side), 0.95):.2f} | {publish[side]:.2f} |"
            for side in ("safe", "bare")
        ),
        "",
        f"Added to an upload's p50: {added:+.2f} ms ({added / whole['bare']:+.1%}; the sides' p50s differ by the "
        f"noise of a shared machine as much as by the step). The step alone: the locking query p50 {lock:.2f} ms "
        f"(p95 {quantile(cost.lock, 0.95):.2f}), {lock / whole['bare']:.1%} of an upload without the safety; the "
        f"HEAD of the rare re-upload of collected bytes p50 {head:.2f} ms (p95 {quantile(cost.head, 0.95):.2f}).",
    ]


def report(bench: Bench, **header: Any) -> str:
    misses: list[str] = []
    lines = [*results_header(**header), *machine(bench), ""]
    lines += data_report(bench)
    lines += ["", *planning_report(bench, misses)]
    lines += ["", *apply_report(bench, misses)]
    lines += ["", *upload_report(bench)]
    lines += ["", f"Targets missed: {len(misses)}" + "".join(f"\n- {miss}" for miss in misses)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main


def sizes(text: str) -> list[int]:
    values = sorted({int(value.replace("_", "")) for value in text.split(",") if value.strip()})
    if not values or min(values) < VERSIONS_PER_ARTIFACT:
        raise argparse.ArgumentTypeError(f"give sizes of at least {VERSIONS_PER_ARTIFACT} versions")
    return values


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=sizes, default=[100_000, 1_000_000],
                        help="versions of each planning project, comma-separated (default 100000,1000000)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2, help="plans of each project, with the floors (default 2)")
    parser.add_argument(
        "--plan-timeout", type=float, default=1200.0, help="seconds before a plan still running is stopped (1200)"
    )
    parser.add_argument("--apply-versions", type=int, default=100_000, help="versions the apply deletes")
    parser.add_argument("--single-deletes", type=int, help="raw objects deleted one at a time (default a tenth)")
    parser.add_argument("--uploads", type=int, default=300, help="timed uploads of the upload phase (default 300)")
    parser.add_argument("--upload-warmup", type=int, default=10, help="untimed uploads first (default 10)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or LOCAL_POSTGRES,
        help="the PostgreSQL server to make the benchmark's database on (default DATABASE_URL)",
    )
    parser.add_argument("--no-readme", action="store_true", help="print the results only")
    parser.add_argument("--keep-logs", action="store_true", help="keep moto's log in the work folder")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a quick check that everything runs: 1,000 and 10,000 versions planned once, 100 applied, 20 uploads, "
        "--no-readme; exits non-zero on an empty plan or an apply that leaves a version, blob or object behind",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.versions, args.rounds, args.apply_versions = [1_000, 10_000], 1, 100
        args.uploads, args.upload_warmup, args.no_readme = 20, 2, True
    args.single_deletes = args.single_deletes or max(1, args.apply_versions // 10)
    if min(args.rounds, args.apply_versions, args.uploads) < 1 or args.single_deletes >= args.apply_versions:
        parser.error("rounds, versions and uploads must be positive, single deletes fewer than the versions")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    return bench_main(__file__, argv, args, Bench, report, markers=(RESULTS_START, RESULTS_END))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
