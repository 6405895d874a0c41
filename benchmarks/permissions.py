"""Permission-filtered reads at scale: the artifact-version list and single permission checks, on PostgreSQL.

(One file of about 1,050 lines on purpose: the data set's SQL, the measurements, the baseline worker that repeats
them with older code, and the report are one experiment, read together. What every benchmark needs around its
measurements is in benchmarks/harness.py.)

    .venv/bin/python benchmarks/permissions.py [--versions 10000,1000000] [--baseline COMMIT] [--reuse] [--keep]
    .venv/bin/python benchmarks/permissions.py --smoke     # 2,000 versions, 5 calls a measurement: that it runs

One database per scale (`<name>_10k_2k`, `<name>_1m_100k`, … for versions and artifacts, from --database-url or
DATABASE_URL), migrated with the app's migrations and loaded with set-based SQL: 1,000 users, 100 groups, 100
projects, and artifacts, versions and guardian object-permission rows (each with the RoleGrant row it stands for)
that all grow together: one artifact per 10 versions (at least 2,000) and 20 permission rows per artifact, so
10k → 1M versions is 2k → 100k artifacts and 40k → 2M rows (`scale_for`; --fixed-catalog keeps --artifacts and
--grants the same at every scale, the data set before issue 18). Then, in rounds that alternate between the
databases so drift on a noisy machine hits every scale alike, it times through Django's test client and the real
URL stack with bearer tokens:

- GET /api/v1/artifact-versions/ (the first page), the same filtered by the quietest project, and
- artifacts.access.rule.can(user, "view", artifact) and can(user, "contribute", project),

for a superuser, a user with many grants, users with few, a user with none and one with grants across projects (a
role on 10 projects and on one artifact in each of the other 90), and counts the queries of each.
Each call's statements run again under EXPLAIN (ANALYZE, BUFFERS) (`--explain` prints the plans). With --baseline,
a second process does the same with the code of an earlier commit (or a checkout folder), in turns. What the data
set looks like and the targets are in benchmarks/README.md, whose permissions results this script rewrites.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import (  # benchmarks/ is the script's folder, first on sys.path
    REPO,
    BenchDatabases,
    BenchError,
    code_version,
    command_line,
    command_output,
    configure_django,
    elapsed,
    failed,
    fmt,
    in_turn,
    machine_lines,
    progress,
    progress_on_stderr,
    quantile,
    results_header,
    short,
    show_results,
    use_database,
)

RESULTS_START = "<!-- permissions:start (written by benchmarks/permissions.py) -->"
RESULTS_END = "<!-- permissions:end -->"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/provenant_bench_perm"
#: The comment a database this script made carries: nothing else is ever dropped or reused.
MARKER = "provenant-bench-permissions"
DATA_VERSION = 3  # 3: the cross-project user

USERS = 1_000
GROUPS = 100
PROJECTS = 100
GROUPS_PER_USER = 3
PROJECT_GRANTS_PER_USER = 2
PROJECT_GRANTS_PER_GROUP = 3
RESTRICTED_EVERY = 20  # every 20th artifact is restricted (5 %)
#: Each project publishes during a window of this share of the timeline; windows start evenly across the rest, so
#: the first project is long quiet and the last one is the busiest now.
PROJECT_WINDOW = 0.2
LIST_TARGET_MS = 50.0
SCALE_TOLERANCE = 0.2


# ---------------------------------------------------------------------------------------------- data set


@dataclass(frozen=True)
class Scale:
    """One data set: `versions` versions spread evenly over `artifacts` artifacts in 100 projects, and
    `grant_rows` object-permission rows."""

    versions: int
    artifacts: int
    grant_rows: int

    @property
    def per_artifact(self) -> int:
        return self.versions // self.artifacts

    @property
    def label(self) -> str:
        return short(self.versions)

    @property
    def database_suffix(self) -> str:
        return f"{short(self.versions)}_{short(self.artifacts)}"

    @property
    def many_artifact_grants(self) -> int:
        """The artifact grants of the user with many: half of all artifacts (5,000 at 1M versions)."""
        return self.artifacts // 2

    def parameters(self) -> dict:
        return {
            "data": DATA_VERSION,
            "versions": self.versions,
            "artifacts": self.artifacts,
            "grant_rows": self.grant_rows,
            "users": USERS,
            "groups": GROUPS,
            "projects": PROJECTS,
        }


@dataclass(frozen=True)
class Profile:
    """A user whose requests are measured, and the objects its permission checks ask about."""

    key: str
    username: str
    label: str
    view_artifact: Callable[[Scale], int]
    contribute_project: int


QUIET_PROJECT = 1  # publishing window at the start of the timeline: its versions have the lowest ids
ACTIVE_PROJECT = PROJECTS  # window at the end: the newest versions
MIDDLE_PROJECT = PROJECTS // 2


def artifact_in(project: int, index: int, scale: Scale) -> int:
    """The id of the `index`-th artifact of `project` (artifacts are numbered project by project)."""
    return (project - 1) * (scale.artifacts // PROJECTS) + index + 1


def few_artifact_grants(scale: Scale) -> list[int]:
    """Two artifacts in the middle project: its first, and its first restricted one."""
    first = artifact_in(MIDDLE_PROJECT, 0, scale)
    restricted = -(-first // RESTRICTED_EVERY) * RESTRICTED_EVERY
    assert restricted < first + scale.artifacts // PROJECTS
    return [first, restricted]


MANY_GROUPS = range(1, 6)
MANY_PROJECTS = range(3, PROJECTS + 1, 5)  # 20 projects, spread over the timeline
CROSS_PROJECTS = range(5, PROJECTS + 1, 10)  # 10 projects, spread over the timeline

PROFILES = [
    Profile("super", "bench-admin", "superuser", lambda scale: 1, 1),
    Profile(
        "many",
        "bench-many",
        "many grants: 5 groups, contributor on 20 projects, artifact grants on half the artifacts",
        lambda scale: artifact_in(MANY_PROJECTS[0], 0, scale),
        MANY_PROJECTS[0],
    ),
    Profile(
        "few",
        "bench-few",
        "few grants: viewer on the busiest project + 2 artifacts",
        lambda scale: artifact_in(ACTIVE_PROJECT, 0, scale),
        ACTIVE_PROJECT,
    ),
    Profile(
        "few-quiet",
        "bench-few-quiet",
        "few grants: viewer on the quietest project + 2 artifacts",
        lambda scale: artifact_in(QUIET_PROJECT, 0, scale),
        QUIET_PROJECT,
    ),
    Profile(
        "few-artifacts",
        "bench-few-artifacts",
        "few grants: viewer on 2 artifacts, no project",
        lambda scale: few_artifact_grants(scale)[0],
        MIDDLE_PROJECT,
    ),
    Profile("none", "bench-none", "no grants", lambda scale: 1, 1),
    Profile(
        "cross",
        "bench-cross",
        "across projects: viewer on 10 projects, and on 1 artifact in each of the other 90",
        lambda scale: cross_artifact(QUIET_PROJECT, scale),
        MIDDLE_PROJECT,
    ),
]
CROSS_USER = len(PROFILES)  # its user id: the profiles' users are numbered in order


def cross_artifact(project: int, scale: Scale) -> int:
    """The artifact the cross-project user views in `project` (one without a project grant of theirs)."""
    return artifact_in(project, 1 + project % 7, scale)


SPECIAL_USERS = len(PROFILES)


def role_rows() -> list[tuple[str, str, str]]:
    """(role, object kind, permission codename) for every permission each role stands for, as role_grant writes
    them (artifacts.access.roles.role_codenames)."""
    from artifacts.access.roles import Role, role_codenames

    return [
        (role, kind, name)
        for role in Role.values
        for kind in ("project", "artifact")
        for name in sorted(role_codenames({role}, kind))
    ]


def load_statements(scale: Scale) -> list[tuple[str, dict]]:
    """The SQL that fills a freshly migrated database, in order (one transaction)."""
    artifacts_per_project = scale.artifacts // PROJECTS
    first_generic = SPECIAL_USERS + 1
    generic_users = USERS - SPECIAL_USERS
    params = {
        "users": USERS,
        "groups": GROUPS,
        "projects": PROJECTS,
        "artifacts": scale.artifacts,
        "per_project": artifacts_per_project,
        "per_artifact": scale.per_artifact,
        "versions": scale.versions,
        "restricted_every": RESTRICTED_EVERY,
        "window": PROJECT_WINDOW,
        "first_generic": first_generic,
        "generic_users": generic_users,
        "group_artifacts": artifacts_per_project,  # each group: a role on 1 % of the artifacts
        "many_artifacts": scale.many_artifact_grants,
        "grant_rows": scale.grant_rows,
        "role_rows": json.dumps([dict(zip(("role", "kind", "codename"), row, strict=True)) for row in role_rows()]),
        "usernames": json.dumps([profile.username for profile in PROFILES]),
        "many_groups": list(MANY_GROUPS),
        "many_projects": list(MANY_PROJECTS),
        "few_artifacts": few_artifact_grants(scale),
        "active_project": ACTIVE_PROJECT,
        "quiet_project": QUIET_PROJECT,
        "cross_user": CROSS_USER,
        "cross_projects": list(CROSS_PROJECTS),
        "salt": f"bench-{scale.label}-",
    }
    sql = [
        # The roles of generated grants, from a number: mostly viewers, as in a real store.
        """CREATE FUNCTION pg_temp.bench_role(n bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
           SELECT CASE WHEN n %% 20 < 12 THEN 'viewer' WHEN n %% 20 < 16 THEN 'contributor'
                       WHEN n %% 20 < 18 THEN 'reviewer' WHEN n %% 20 < 19 THEN 'maintainer' ELSE 'auditor' END $$""",
        # Roles and the permissions each stands for, straight from artifacts.access.roles.
        """CREATE TEMP TABLE bench_role_permission ON COMMIT DROP AS
           SELECT r.role, r.kind, p.id AS permission_id
           FROM jsonb_to_recordset(%(role_rows)s::jsonb) AS r(role text, kind text, codename text)
           JOIN auth_permission p ON p.codename = r.codename""",
        """INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff,
                                  is_active, date_joined)
           SELECT n, '!', n = 1, COALESCE(%(usernames)s::jsonb ->> (n - 1), 'bench-user-' || n), '', '', '', n = 1,
                  true, now()
           FROM generate_series(1, %(users)s) AS n""",
        "INSERT INTO auth_group (id, name) SELECT n, 'bench-group-' || n FROM generate_series(1, %(groups)s) AS n",
        # Every generic user is in three groups; the user with many grants in five; the others in none.
        """INSERT INTO auth_user_groups (user_id, group_id)
           SELECT DISTINCT u, g FROM generate_series(%(first_generic)s, %(users)s) AS u,
                LATERAL (VALUES (u * 7 %% %(groups)s + 1), ((u * 13 + 5) %% %(groups)s + 1),
                                ((u * 31 + 11) %% %(groups)s + 1)) AS t(g)
           UNION ALL SELECT 2, g FROM unnest(%(many_groups)s::int[]) AS g""",
        """INSERT INTO artifacts_project (id, slug, name, description, created_at)
           SELECT n, 'bench-' || n, 'Bench project ' || n, '', now() FROM generate_series(1, %(projects)s) AS n""",
        """INSERT INTO artifacts_artifact (id, project_id, name, kind, description, restricted, created_at)
           SELECT n, (n - 1) / %(per_project)s + 1, 'artifact-' || n,
                  (ARRAY['model', 'checkpoint', 'preprocessor', 'evaluation_report', 'config', 'other'])[n %% 6 + 1],
                  '', n %% %(restricted_every)s = 0, now()
           FROM generate_series(1, %(artifacts)s) AS n""",
        # One blob per version: ids 1..versions, each with its own digest.
        """INSERT INTO artifacts_blob (id, digest, size, state, storage_class, created_at)
           SELECT n, encode(sha256(convert_to(%(salt)s || n, 'UTF8')), 'hex'), 1000 + n %% 100000, 'pending', '',
                  now()
           FROM generate_series(1, %(versions)s) AS n""",
        # Versions are numbered in publishing order: each project publishes during its window of the timeline,
        # its artifacts' versions interleaved in it (a per-artifact offset), so ids follow time as they would.
        """INSERT INTO artifacts_artifactversion (id, artifact_id, number, blob_id, media_type, metadata,
                                                   created_by_id, created_at, license)
           SELECT row_number() OVER (ORDER BY t, a, number), a, number,
                  row_number() OVER (ORDER BY t, a, number), 'application/octet-stream',
                  jsonb_build_object('framework', 'pytorch', 'step', number),
                  %(first_generic)s + a %% %(generic_users)s,
                  timestamptz '2026-01-01' + t * interval '365 days', ''
           FROM (SELECT a, number,
                        ((a - 1) / %(per_project)s)::float8 / %(projects)s * (1 - %(window)s)
                        + %(window)s * (number - 1 + (a * 2654435761 %% 1000003)::float8 / 1000003)
                          / %(per_artifact)s AS t
                 FROM generate_series(1, %(artifacts)s) AS a, generate_series(1, %(per_artifact)s) AS number) AS v""",
        # Grants, as RoleGrant rows would list them: (user or group, project or artifact, role).
        """CREATE TEMP TABLE bench_grant (user_id int, group_id int, project_id bigint, artifact_id bigint,
                                          role text) ON COMMIT DROP""",
        # Generic users: a role on two projects each.
        """INSERT INTO bench_grant (user_id, project_id, role)
           SELECT DISTINCT ON (u, p) u, p, pg_temp.bench_role((u + p))
           FROM generate_series(%(first_generic)s, %(users)s) AS u,
                LATERAL (VALUES (u * 17 %% %(projects)s + 1), ((u * 29 + 3) %% %(projects)s + 1)) AS t(p)""",
        # Groups: a role on three projects and on 1 % of the artifacts each.
        """INSERT INTO bench_grant (group_id, project_id, role)
           SELECT g, (g * 3 + k) %% %(projects)s + 1, pg_temp.bench_role((g + k))
           FROM generate_series(1, %(groups)s) AS g, generate_series(0, 2) AS k""",
        """INSERT INTO bench_grant (group_id, artifact_id, role)
           SELECT g, (g * 7919 + j * 104729) %% %(artifacts)s + 1, pg_temp.bench_role((g + j))
           FROM generate_series(1, %(groups)s) AS g, generate_series(0, %(group_artifacts)s - 1) AS j""",
        # The measured users: many grants (contributor on 20 projects, artifact grants on half the artifacts,
        # and its groups' grants); few (viewer on one project and two artifacts, or on the two artifacts alone);
        # none.
        """INSERT INTO bench_grant (user_id, project_id, role)
           SELECT 2, p, 'contributor' FROM unnest(%(many_projects)s::int[]) AS p
           UNION ALL VALUES (3, %(active_project)s, 'viewer'), (4, %(quiet_project)s, 'viewer')""",
        """INSERT INTO bench_grant (user_id, artifact_id, role)
           SELECT 2, (j * 7919) %% %(artifacts)s + 1, pg_temp.bench_role(j)
           FROM generate_series(0, %(many_artifacts)s - 1) AS j
           UNION ALL
           SELECT u, a, 'viewer' FROM unnest(ARRAY[3, 4, 5]) AS u, unnest(%(few_artifacts)s::bigint[]) AS a""",
        # The cross-project user: viewer on 10 projects spread over the timeline, and on one artifact in each of the
        # other 90 (the one `cross_artifact` names), so its visible versions come from every project.
        """INSERT INTO bench_grant (user_id, project_id, role)
           SELECT %(cross_user)s, p, 'viewer' FROM unnest(%(cross_projects)s::int[]) AS p""",
        """INSERT INTO bench_grant (user_id, artifact_id, role)
           SELECT %(cross_user)s, (p - 1) * %(per_project)s + 1 + p %% 7 + 1, 'viewer'
           FROM generate_series(1, %(projects)s) AS p WHERE p <> ALL(%(cross_projects)s::int[])""",
        # Generic users' artifact grants fill up to the number of permission rows asked for: candidate k goes to
        # user k mod n, on an artifact that differs for every k of that user; the last ones are viewers, so the
        # total comes out exact.
        """WITH so_far AS (
                SELECT count(*) AS rows FROM bench_grant g
                JOIN bench_role_permission r ON r.role = g.role
                 AND r.kind = CASE WHEN g.artifact_id IS NULL THEN 'project' ELSE 'artifact' END),
            candidate AS (
                SELECT k, %(first_generic)s + k %% %(generic_users)s AS u,
                       (k / %(generic_users)s * 7919 + k %% %(generic_users)s * 104729) %% %(artifacts)s + 1 AS a,
                       pg_temp.bench_role((k * 7 + 3)) AS role
                FROM generate_series(0, %(grant_rows)s) AS k),
            size AS (
                SELECT role, count(*) AS rows FROM bench_role_permission WHERE kind = 'artifact' GROUP BY role),
            counted AS (
                SELECT c.*, sum(size.rows) OVER (ORDER BY k) AS cumulative
                FROM candidate c JOIN size USING (role)),
            kept AS (
                SELECT u, a, role, cumulative FROM counted, so_far
                WHERE cumulative <= %(grant_rows)s - so_far.rows - 3),
            missing AS (
                SELECT %(grant_rows)s - so_far.rows - COALESCE(max(cumulative), 0) AS rows
                FROM so_far LEFT JOIN kept ON true GROUP BY so_far.rows)
           INSERT INTO bench_grant (user_id, artifact_id, role)
           SELECT u, a, role FROM kept
           UNION ALL
           SELECT c.u, c.a, 'viewer' FROM counted c, missing
           WHERE c.k >= (SELECT count(*) FROM kept) AND c.k < (SELECT count(*) FROM kept) + missing.rows""",
        """UPDATE bench_grant g SET project_id = a.project_id FROM artifacts_artifact a
           WHERE g.artifact_id = a.id""",
        """INSERT INTO artifacts_rolegrant (project_id, artifact_id, user_id, group_id, role, granted_by_id,
                                            granted_at)
           SELECT project_id, artifact_id, user_id, group_id, role, 1, now() FROM bench_grant""",
    ]
    for kind, grantee in (("project", "user"), ("project", "group"), ("artifact", "user"), ("artifact", "group")):
        scope = "g.artifact_id IS NULL" if kind == "project" else "g.artifact_id IS NOT NULL"
        sql.append(
            f"""INSERT INTO artifacts_{kind}{grantee}objectpermission ({grantee}_id, permission_id, content_object_id)
               SELECT g.{grantee}_id, r.permission_id, g.{kind}_id
               FROM bench_grant g JOIN bench_role_permission r ON r.role = g.role AND r.kind = '{kind}'
               WHERE g.{grantee}_id IS NOT NULL AND {scope}"""  # noqa: S608 (names from constants)
        )
    sql += [
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
        for table in SEQUENCED_TABLES
    ]
    return [(statement, params) for statement in sql]


SEQUENCED_TABLES = ["auth_user", "auth_group", "artifacts_project", "artifacts_artifact", "artifacts_blob"]
SEQUENCED_TABLES += ["artifacts_artifactversion"]


GRANT_TABLES = [
    f"artifacts_{kind}{grantee}objectpermission" for kind in ("project", "artifact") for grantee in ("user", "group")
]


def load(scale: Scale) -> dict[str, int]:
    """Fill the current database (freshly migrated) with the data set; answer the row counts."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for number, (statement, params) in enumerate(load_statements(scale), start=1):
            started = time.monotonic()
            cursor.execute(statement, params)
            if time.monotonic() - started > 5:
                progress(f"  statement {number}: {time.monotonic() - started:.0f} s")
        check_grants(cursor)
    return counts()


def check_grants(cursor) -> None:
    """Every permission row stands for a RoleGrant and every RoleGrant has its role's permissions, and the role
    mapping used here is the one artifacts.access.services.role_grant applies (checked on a scratch project,
    undone)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from artifacts.access.roles import Role
    from artifacts.access.services import role_grant
    from artifacts.models import Project, ProjectUserObjectPermission

    cursor.execute(
        """WITH expected AS (
               SELECT g.user_id, g.group_id, COALESCE(g.artifact_id, g.project_id) AS object_id,
                      r.kind, r.permission_id
               FROM artifacts_rolegrant g JOIN bench_role_permission r ON r.role = g.role
                AND r.kind = CASE WHEN g.artifact_id IS NULL THEN 'project' ELSE 'artifact' END),
           held AS (
               SELECT user_id, NULL::int AS group_id, content_object_id, 'project' AS kind, permission_id
               FROM artifacts_projectuserobjectpermission
               UNION ALL SELECT NULL, group_id, content_object_id, 'project', permission_id
               FROM artifacts_projectgroupobjectpermission
               UNION ALL SELECT user_id, NULL, content_object_id, 'artifact', permission_id
               FROM artifacts_artifactuserobjectpermission
               UNION ALL SELECT NULL, group_id, content_object_id, 'artifact', permission_id
               FROM artifacts_artifactgroupobjectpermission)
           SELECT (SELECT count(*) FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM held) AS missing),
                  (SELECT count(*) FROM (SELECT * FROM held EXCEPT ALL SELECT * FROM expected) AS extra)"""
    )
    missing, extra = cursor.fetchone()
    if missing or extra:
        raise BenchError(f"permission rows disagree with the role grants: {missing} missing, {extra} extra")
    cursor.execute(
        "SELECT role, array_agg(permission_id ORDER BY permission_id) FROM bench_role_permission "
        "WHERE kind = 'project' GROUP BY role"
    )
    mapping = dict(cursor.fetchall())
    users = get_user_model().objects.filter(is_superuser=False).order_by("pk")[: len(Role.values)]
    with transaction.atomic():
        project = Project.objects.create(slug="bench-scratch", name="scratch")
        for user, role in zip(users, Role.values, strict=True):
            role_grant(obj=project, role=role, user=user, granted_by=None)
            written = ProjectUserObjectPermission.objects.filter(user=user, content_object=project)
            if sorted(written.values_list("permission_id", flat=True)) != mapping[role]:
                raise BenchError(f"role_grant writes other permissions for {role} than the data set does")
        transaction.set_rollback(True)


def counts() -> dict[str, int]:
    from django.db import connection

    tables = ["auth_user", "auth_group", "auth_user_groups", "artifacts_project", "artifacts_artifact"]
    tables += ["artifacts_artifactversion", "artifacts_rolegrant", *GRANT_TABLES]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(f"SELECT '{table}', count(*) FROM {table}" for table in tables))  # noqa: S608
        result = dict(cursor.fetchall())
        cursor.execute("SELECT count(*) FROM artifacts_artifact WHERE restricted")
        result["restricted artifacts"] = cursor.fetchone()[0]
    result["object permissions"] = sum(result[table] for table in GRANT_TABLES)
    return result


# ---------------------------------------------------------------------------------------------- databases


class Databases(BenchDatabases):
    """The benchmark's own databases, one per scale, on the server of the given URL."""

    def __init__(self, url: str) -> None:
        super().__init__(url, default_base="provenant_bench_perm", marker=MARKER)

    def name(self, scale: Scale) -> str:
        return f"{self.base}_{scale.database_suffix}"

    def version(self) -> str:
        return super().settings(["server_version"])["server_version"]

    def settings(self) -> dict[str, str]:
        return super().settings(["shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit"])


def prepare(databases: Databases, scale: Scale, *, reuse: bool) -> dict[str, int]:
    """Make the scale's database ready: reused when asked and complete, else created, migrated and loaded."""
    from django.db import connection

    name = databases.name(scale)
    if databases.migrated(name, scale.parameters(), reuse=reuse):
        return counts()
    progress(f"loading {scale.versions:,} versions, {scale.grant_rows:,} permission rows into {name}")
    started = time.monotonic()
    result = load(scale)
    progress(f"loaded in {time.monotonic() - started:.0f} s; VACUUM ANALYZE")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    databases.mark_complete(name, scale.parameters())
    progress(f"ready in {time.monotonic() - started:.0f} s")
    return result


# ---------------------------------------------------------------------------------------------- measurement


@dataclass
class Series:
    """Timings (ms) of one measurement at one scale, and what one request of it did."""

    samples: list[float] = field(default_factory=list)
    queries: int | None = None
    answer: str = ""

    def quantile(self, share: float) -> float:
        return quantile(self.samples, share)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)


@dataclass
class Plan:
    """What one call's statements did under EXPLAIN (ANALYZE, BUFFERS), summed (the token lookup left out)."""

    text: str = ""
    statements: int = 0
    planning_ms: float = 0.0
    execution_ms: float = 0.0
    buffers: int = 0


MEASUREMENTS = [
    ("list", "GET /api/v1/artifact-versions/ (first page)"),
    ("quiet", f"GET /api/v1/artifact-versions/?project=bench-{QUIET_PROJECT} (first page)"),
    ("view", 'can(user, "view", artifact)'),
    ("contribute", 'can(user, "contribute", project)'),
]


class Bench:
    def __init__(self, args: argparse.Namespace, scales: list[Scale], databases: Databases) -> None:
        self.args = args
        self.scales = scales
        self.databases = databases
        self.series: dict[tuple[str, str, str], Series] = {}
        self.plans: dict[tuple[str, str], Plan] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self.visible: dict[tuple[str, str], int] = {}
        self.tokens: dict[tuple[str, str], str] = {}

    def setup_scale(self, scale: Scale) -> None:
        """Tokens for the measured users (through the service, as any client gets one)."""
        from django.contrib.auth import get_user_model

        from artifacts.models import ArtifactVersion
        from governance.access.services import api_token_issue

        for profile in PROFILES:
            user = get_user_model().objects.get(username=profile.username)
            _, plaintext = api_token_issue(user=user, name="permissions benchmark", lifetime=dt.timedelta(hours=12))
            self.tokens[scale.label, profile.key] = plaintext
            self.visible[scale.label, profile.key] = ArtifactVersion.objects.visible_to(user).count()
            self.check_page(scale, profile)

    def actions(self, scale: Scale) -> dict[tuple[str, str], Callable[[], str]]:
        """For each (profile, measurement), a call doing it once and answering what it got."""
        from django.contrib.auth import get_user_model
        from django.test import Client

        from artifacts.access.rule import can
        from artifacts.models import Artifact, Project

        client = Client()
        actions = {}
        for profile in PROFILES:
            user = get_user_model().objects.get(username=profile.username)
            artifact = Artifact.objects.get(pk=profile.view_artifact(scale))
            project = Project.objects.get(pk=profile.contribute_project)
            header = f"Bearer {self.tokens[scale.label, profile.key]}"

            def list_page(header: str = header, query: str = "") -> str:
                response = client.get(f"/api/v1/artifact-versions/{query}", HTTP_AUTHORIZATION=header)
                if response.status_code != 200:
                    raise BenchError(f"the list answered {response.status_code}: {response.content[:300]!r}")
                return f"{len(response.json()['results'])} rows"

            actions[profile.key, "list"] = list_page
            actions[profile.key, "quiet"] = lambda header=header: list_page(header, f"?project=bench-{QUIET_PROJECT}")
            actions[profile.key, "view"] = lambda user=user, artifact=artifact: str(can(user, "view", artifact))
            actions[profile.key, "contribute"] = lambda user=user, project=project: str(
                can(user, "contribute", project)
            )
        return actions

    def measure_round(self, scale: Scale, number: int) -> dict[str, list[float]]:
        """One round of every measurement at `scale`; the first also counts and explains each call's queries.
        Answers the new samples, by series key."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        use_database(self.databases.name(scale))
        per_round = max(1, self.args.repeat // self.args.rounds)
        new: dict[str, list[float]] = {}
        for (profile, measurement), action in self.actions(scale).items():
            series = self.series.setdefault((scale.label, profile, measurement), Series())
            for _ in range(self.args.warmup if number == 1 else 1):
                action()
            if number == 1:
                with CaptureQueriesContext(connection) as captured:
                    series.answer = action()
                series.queries = len(captured.captured_queries)
                self.explain(scale, profile, measurement, captured.captured_queries)
            samples = new.setdefault(key_text((scale.label, profile, measurement)), [])
            for _ in range(per_round):
                started = time.perf_counter()
                action()
                samples.append((time.perf_counter() - started) * 1000)
            series.samples += samples
        return new

    def explain(self, scale: Scale, profile: str, measurement: str, queries: list[dict]) -> None:
        """Run each statement of one call again under EXPLAIN (ANALYZE, BUFFERS) and keep the plans."""
        from django.db import connection

        plan = self.plans.setdefault((scale.label, profile, measurement), Plan())
        for query in queries:
            sql = query["sql"]
            if '"access_apitoken"' in sql:
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                text = "\n".join(row[0] for row in cursor.fetchall())
            buffers = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", text)
            plan.statements += 1
            plan.planning_ms += float(re.search(r"Planning Time: ([\d.]+) ms", text).group(1))
            plan.execution_ms += float(re.search(r"Execution Time: ([\d.]+) ms", text).group(1))
            plan.buffers += sum(int(part or 0) for part in buffers.groups()) if buffers else 0
            plan.text += f"\n-- {scale.label}, {profile}, {measurement}, statement {plan.statements}\n{sql}\n\n{text}\n"

    def check_page(self, scale: Scale, profile: Profile) -> None:
        """The first page holds the user's 50 newest visible versions, as the access rule alone selects them."""
        from django.contrib.auth import get_user_model
        from django.test import Client

        from artifacts.models import ArtifactVersion

        user = get_user_model().objects.get(username=profile.username)
        expected = list(ArtifactVersion.objects.visible_to(user).order_by("-id").values_list("id", flat=True)[:50])
        header = f"Bearer {self.tokens[scale.label, profile.key]}"
        response = Client().get("/api/v1/artifact-versions/", HTTP_AUTHORIZATION=header)
        if [row["id"] for row in response.json()["results"]] != expected:
            raise BenchError(f"{profile.key} at {scale.label}: the first page is not the 50 newest visible versions")


def key_text(key: tuple[str, ...]) -> str:
    return "|".join(key)


def key_tuple(text: str) -> tuple[str, ...]:
    return tuple(text.split("|"))


class Baseline:
    """The same measurements with the code of an earlier commit, in a process of its own on the same databases,
    taking rounds in turn with this one (so both see the machine in the same state)."""

    def __init__(self, args: argparse.Namespace, argv: list[str], workdir: Path) -> None:
        if Path(args.baseline).is_dir():
            # A checkout of its own (say, an uncommitted variant), used as it is.
            self.root = Path(args.baseline).resolve()
            self.label = f"the checkout in {self.root}"
        else:
            commit = command_output(
                "git", "-C", str(REPO), "rev-parse", "--short", f"{args.baseline}^{{commit}}"
            ).strip()
            if not commit:
                raise BenchError(f"--baseline {args.baseline}: no such commit or folder")
            self.label = f"commit {commit}"
            self.root = workdir / f"baseline-{commit}"
            self.root.mkdir()
            archive = subprocess.run(  # noqa: S603 (git, with a commit it has just resolved)
                ["git", "-C", str(REPO), "archive", "--format=tar", commit],  # noqa: S607
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(self.root)], input=archive, check=True)  # noqa: S603, S607
        self.series: dict[tuple[str, str, str], Series] = {}
        self.plans: dict[tuple[str, str, str], Plan] = {}
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter and script)
            # The database URL explicitly: DATABASE_URL in this process's environment now names one scale's.
            [sys.executable, __file__, *argv, "--database-url", args.database_url, "--worker-code", str(self.root)],
            # In the old code's folder: Celery's app puts the working directory first on sys.path.
            cwd=self.root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.ask("ready")

    def ask(self, command: str) -> dict:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        line = self.process.stdout.readline()
        if not line:
            raise BenchError(f"the baseline worker ({self.label}) stopped; see its output above")
        return json.loads(line)

    def measure_round(self, scale: Scale, number: int) -> None:
        for key, samples in self.ask(f"round {number} {scale.label}").items():
            self.series.setdefault(key_tuple(key), Series()).samples += samples

    def finish(self) -> None:
        answer = self.ask("finish")
        for key, (queries, text) in answer["series"].items():
            series = self.series.setdefault(key_tuple(key), Series())
            series.queries, series.answer = queries, text
        for key, fields in answer["plans"].items():
            self.plans[key_tuple(key)] = Plan(**fields)
        self.process.wait(timeout=60)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def worker_main(args: argparse.Namespace, scales: list[Scale], databases: Databases) -> int:
    """The baseline's side: measure rounds as the driver asks, answering JSON lines on stdout."""
    bench = Bench(args, scales, databases)
    for scale in scales:
        use_database(databases.name(scale))
        bench.setup_scale(scale)
    by_label = {scale.label: scale for scale in scales}
    for line in sys.stdin:
        command = line.split()
        if command[0] == "ready":
            answer: dict = {}
        elif command[0] == "round":
            answer = bench.measure_round(by_label[command[2]], int(command[1]))
        else:
            answer = {
                "series": {key_text(k): [v.queries, v.answer] for k, v in bench.series.items()},
                "plans": {key_text(k): vars(v) for k, v in bench.plans.items()},
            }
        print(json.dumps(answer), flush=True)
        if command[0] == "finish":
            break
    return 0


def run(bench: Bench, baseline: Baseline | None) -> None:
    """Rounds alternating between the scales and, with a baseline, between the two codes (in turns that swap
    which goes first)."""
    for number in range(1, bench.args.rounds + 1):
        for scale in bench.scales:
            progress(f"round {number}/{bench.args.rounds}, {scale.label}")
            sides = [bench.measure_round] + ([baseline.measure_round] if baseline else [])
            for measure in in_turn(number, *sides):
                measure(scale, number)
    if baseline:
        baseline.finish()


# ---------------------------------------------------------------------------------------------- report


def machine(databases: Databases) -> list[str]:
    settings = ", ".join(f"{name} {value}" for name, value in databases.settings().items())
    return [
        *machine_lines(("Django", "djangorestframework", "django-guardian", "psycopg")),
        f"- PostgreSQL {databases.version()} on the same machine over TCP loopback ({settings}); "
        "DEBUG off, persistent connections",
    ]


def results_table(bench: Bench) -> tuple[str, list[str]]:
    first, last = bench.scales[0], bench.scales[-1]
    head = ["User", "Measured", "Queries", "Answer"]
    for scale in bench.scales:
        head += [f"{scale.label} p50", f"{scale.label} p95", f"{scale.label} max"]
    head += [f"p50 {last.label} / {first.label}", "Target", "Result"]
    aligns = ["---"] * 4 + ["---:"] * (len(head) - 6) + ["---"] * 2
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(aligns) + " |"]
    misses = []
    for profile in PROFILES:
        for key, label in MEASUREMENTS:
            all_series = [bench.series[scale.label, profile.key, key] for scale in bench.scales]
            queries = sorted({series.queries for series in all_series})
            answers = sorted({series.answer for series in all_series})
            row = [profile.key, label, "/".join(str(q) for q in queries), "/".join(answers)]
            for series in all_series:
                row += [fmt(series.p50), fmt(series.quantile(0.95)), fmt(max(series.samples))]
            ratio = all_series[-1].p50 / all_series[0].p50
            row.append(f"{ratio:.2f}")
            if key == "list" and len(answers) > 1:
                row += [f"same page at every scale: here {' and '.join(answers)}", "n/a"]
            elif key == "list":
                slow = [
                    s.label
                    for s, series in zip(bench.scales, all_series, strict=True)
                    if series.quantile(0.95) >= LIST_TARGET_MS
                ]
                scaled = abs(ratio - 1) <= SCALE_TOLERANCE
                constant = len(queries) == 1
                passed = not slow and scaled and constant
                row.append(f"p95 < {LIST_TARGET_MS:.0f} ms, ratio 1 ± {SCALE_TOLERANCE}, same queries")
                row.append("**pass**" if passed else "**miss**")
                if not passed:
                    reasons = [f"p95 ≥ {LIST_TARGET_MS:.0f} ms at {', '.join(slow)}"] if slow else []
                    reasons += [] if scaled else [f"p50 ratio {ratio:.2f}"]
                    reasons += [] if constant else [f"queries {queries}"]
                    misses.append(f"{profile.key}, list: {'; '.join(reasons)}")
            else:
                row += ["", "—"]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines), misses


def plan_table(scales: list[Scale], plans: dict[tuple[str, str, str], Plan], measurements=MEASUREMENTS) -> str:
    head = ["User", "Measured"]
    for scale in scales:
        head += [f"{scale.label} statements", f"{scale.label} planning ms", f"{scale.label} execution ms"]
        head.append(f"{scale.label} buffers")
    lines = ["| " + " | ".join(head) + " |", "| --- | --- |" + " ---: |" * (len(head) - 2)]
    for profile in PROFILES:
        for key, label in measurements:
            row = [profile.key, label]
            for scale in scales:
                plan = plans[scale.label, profile.key, key]
                row += [str(plan.statements), fmt(plan.planning_ms), fmt(plan.execution_ms), f"{plan.buffers:,}"]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def comparison_table(bench: Bench, baseline: Baseline) -> str:
    head = ["User", "Measured", "Queries before → after"]
    for scale in bench.scales:
        head += [f"{scale.label} p50 before", f"{scale.label} p50 after", f"{scale.label} p95 before"]
        head.append(f"{scale.label} p95 after")
    lines = ["| " + " | ".join(head) + " |", "| --- | --- | --- |" + " ---: |" * (len(head) - 3)]
    for profile in PROFILES:
        for key, label in MEASUREMENTS:
            before = [baseline.series[scale.label, profile.key, key] for scale in bench.scales]
            after = [bench.series[scale.label, profile.key, key] for scale in bench.scales]
            counts = [sorted({series.queries for series in sides}) for sides in (before, after)]
            row = [profile.key, label, " → ".join("/".join(map(str, count)) for count in counts)]
            for old, new in zip(before, after, strict=True):
                row += [fmt(old.p50), fmt(new.p50), fmt(old.quantile(0.95)), fmt(new.quantile(0.95))]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def visible_table(bench: Bench) -> str:
    lines = ["| User | " + " | ".join(f"{scale.label} visible versions" for scale in bench.scales) + " |"]
    lines.append("| --- |" + " ---: |" * len(bench.scales))
    for profile in PROFILES:
        counts = [f"{bench.visible[scale.label, profile.key]:,}" for scale in bench.scales]
        lines.append(f"| {profile.key}: {profile.label} | " + " | ".join(counts) + " |")
    return "\n".join(lines)


def report(
    bench: Bench, baseline: Baseline | None, *, started_at: dt.datetime, seconds: float, command: str, code: str
) -> str:
    table, misses = results_table(bench)
    data = []
    for scale in bench.scales:
        c = bench.counts[scale.label]
        data.append(
            f"- {scale.label}: {c['auth_user']:,} users, {c['auth_group']:,} groups ({c['auth_user_groups']:,} "
            f"memberships), {c['artifacts_project']:,} projects, {c['artifacts_artifact']:,} artifacts "
            f"({c['restricted artifacts']:,} restricted), {c['artifacts_artifactversion']:,} versions; "
            f"{c['object permissions']:,} object-permission rows (project user {c[GRANT_TABLES[0]]:,}, project group "
            f"{c[GRANT_TABLES[1]]:,}, artifact user {c[GRANT_TABLES[2]]:,}, artifact group {c[GRANT_TABLES[3]]:,}) "
            f"for {c['artifacts_rolegrant']:,} role grants"
        )
    lines = [
        *results_header(started_at=started_at, seconds=seconds, command=command, code=code),
        *machine(bench.databases),
        *data,
        "",
        "The measured users, and how many versions each may see (the first page of each was checked against the "
        "access rule alone: the 50 newest of these):",
        "",
        visible_table(bench),
        "",
        f"Milliseconds over {len(bench.series[bench.scales[0].label, 'few', 'list'].samples)} repetitions per row and "
        f"scale, in {bench.args.rounds} rounds alternating between the databases, after "
        f"{bench.args.warmup} warm-up calls. Queries: those one call ran (CaptureQueriesContext), the bearer-token "
        "lookup included.",
        "",
        table,
        "",
        "Each call's statements (the token lookup left out) run once more under EXPLAIN (ANALYZE, BUFFERS): their "
        "planning and execution time in the database, and the shared buffers (8 KiB pages) they touched.",
        "",
        plan_table(bench.scales, bench.plans),
        "",
        f"Targets missed: {len(misses)}" + "".join(f"\n- {miss}" for miss in misses),
    ]
    if baseline:
        lines += [
            "",
            f"### Before and after: {baseline.label} against the code above",
            "",
            f"The same measurements with the code of {baseline.label}, run in a second process on the same "
            "databases, in rounds taken in turn with the code above, so both met the machine in the same state. "
            "Milliseconds, as above.",
            "",
            comparison_table(bench, baseline),
            "",
            f"The lists' statements under EXPLAIN (ANALYZE, BUFFERS) with the code of {baseline.label}:",
            "",
            plan_table(bench.scales, baseline.plans, MEASUREMENTS[:2]),
        ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main


def scale_list(text: str) -> list[int]:
    values = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not values or any(value < 1_000 or value % 1_000 for value in values):
        raise argparse.ArgumentTypeError("a comma-separated list of version counts, multiples of 1,000")
    return values


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=scale_list, default=[10_000, 1_000_000], help="default 10000,1000000")
    parser.add_argument(
        "--fixed-catalog",
        action="store_true",
        help="the data set before issue 18: --artifacts and --grants the same at every scale, only the versions grow "
        "(by default all three grow: see scale_for)",
    )
    parser.add_argument("--artifacts", type=int, default=10_000, help="with --fixed-catalog (default 10,000)")
    parser.add_argument(
        "--grants", type=int, default=1_000_000, help="with --fixed-catalog: object-permission rows (default 1,000,000)"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_URL,
        help=f"server and base name of the databases (default DATABASE_URL, else {DEFAULT_URL}); "
        "each scale gets <name>_<scale>",
    )
    parser.add_argument("--reuse", action="store_true", help="use databases a previous run kept, and keep them")
    parser.add_argument("--keep", action="store_true", help="keep the databases this run creates")
    parser.add_argument("--repeat", type=int, default=100, help="timed calls per measurement and scale (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds the repetitions are split into (default 5)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls first (default 5)")
    parser.add_argument("--explain", action="store_true", help="print each list query's EXPLAIN (ANALYZE, BUFFERS)")
    parser.add_argument("--no-readme", action="store_true", help="print the results only")
    parser.add_argument(
        "--baseline",
        metavar="COMMIT|FOLDER",
        help="also measure the code of COMMIT (git archive of it) or of a checkout folder, in a second process, "
        "in alternating rounds",
    )
    parser.add_argument("--worker-code", help=argparse.SUPPRESS)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a quick check that it runs: 2,000 versions (one scale), 5 calls a measurement, --no-readme; exits "
        "non-zero on any error or a first page that is not the user's 50 newest visible versions",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.versions, args.repeat, args.rounds, args.warmup = [2_000], 5, 1, 1
        args.no_readme, args.reuse, args.keep, args.baseline = True, False, False, None
    if args.repeat < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--repeat and --rounds must be positive, --warmup not negative")
    for versions in args.versions:
        scale = scale_for(versions, args)
        per_artifact = scale.grant_rows / scale.artifacts
        if scale.artifacts % PROJECTS or versions % scale.artifacts or not 20 <= per_artifact < 900:
            parser.error(
                f"{versions:,} versions: the artifacts ({scale.artifacts:,}) must be a multiple of {PROJECTS} "
                "dividing the versions, with 20 to 900 permission rows per artifact"
            )
    return args


def scale_for(versions: int, args: argparse.Namespace) -> Scale:
    """By default artifacts and grants grow with the versions: one artifact per 10 versions (at least 2,000, 20 a
    project) and 20 object-permission rows per artifact, so 10k → 1M versions is 2k → 100k artifacts and 40k → 2M
    permission rows (the generated users' artifact grants grow; the measured users' grants on half or 1 % of the
    artifacts grow with them). With --fixed-catalog, the given numbers at every scale."""
    if args.fixed_catalog:
        return Scale(versions, args.artifacts, args.grants)
    artifacts = max(2_000, versions // 10)
    return Scale(versions, artifacts, 20 * artifacts)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    command = command_line(__file__, argv)
    code = code_version()
    started_at = dt.datetime.now(dt.UTC)
    scales = [scale_for(versions, args) for versions in args.versions]
    databases = Databases(args.database_url)
    var_dir = tempfile.mkdtemp(prefix="provenant-bench-perm-")
    if args.worker_code:
        progress_on_stderr()  # a baseline worker's stdout carries its answers to the driver
        configure_django(databases.url(databases.name(scales[0])), var_dir, code=Path(args.worker_code))
        try:
            return worker_main(args, scales, databases)
        finally:
            shutil.rmtree(var_dir, ignore_errors=True)
    configure_django(databases.url(databases.name(scales[0])), var_dir)
    bench = Bench(args, scales, databases)
    baseline = None
    try:
        for scale in scales:
            bench.counts[scale.label] = prepare(databases, scale, reuse=args.reuse)
            bench.setup_scale(scale)
        if args.baseline:
            progress(f"starting the baseline worker with the code of {args.baseline}")
            baseline = Baseline(args, argv, Path(var_dir))
        run(bench, baseline)
    except BenchError as error:
        return failed(error)
    finally:
        from django.db import connections

        if baseline:
            baseline.stop()
        connections.close_all()
        if not args.keep:
            databases.drop_created()
        shutil.rmtree(var_dir, ignore_errors=True)
    if args.explain:
        for plans in [bench.plans] + ([baseline.plans] if baseline else []):
            for plan in plans.values():
                print(plan.text)
    results = report(bench, baseline, started_at=started_at, seconds=elapsed(), command=command, code=code)
    show_results(results, start=RESULTS_START, end=RESULTS_END, write_readme=not args.no_readme)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
