"""Liveness and readiness probes for a load balancer or orchestrator: public, outside /api/ and the OpenAPI schema.

/health/live answers from the process alone (no I/O): the worker runs. /health/ready says whether this worker can
serve: the database answers, the broker answers (or is not used: the default, in-process tasks), the blob storage
answers, and no migration is left unapplied. Each check is one round trip; the migrations check reads the whole
migration graph, so once it passes this process remembers it (applied migrations do not become unapplied under a
running process; a failing result is checked again on the next poll). 200 when all pass, 503 naming what failed.

Why not django-health-check (4.8): its storage check saves and deletes a file on every run (at one poll a second,
86,400 PUTs and DELETEs a day per web process on S3, and DELETE rights the app otherwise needs only for the
garbage collector), and its Celery check waits for a worker to answer, while a web process can serve without any
worker up. What is left, a SELECT 1, a broker connection and a HEAD, is the few lines below.
"""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from artifacts.storage import blob_storage

logger = logging.getLogger(__name__)

#: A name in the blob storage that is never written: asking whether it exists is the cheapest round trip there.
STORAGE_PROBE_NAME = "health/probe"

_migrations_applied = False

#: The database check's one round trip.
PROBE_SQL = "SELECT 1"


def check_database() -> str:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(PROBE_SQL)
        cursor.fetchone()
    return "ok"


def check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "not used: tasks run in-process"
    from config.celery import app

    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=settings.PROVENANT_HEALTH_BROKER_TIMEOUT_SECONDS)
    return "ok"


def check_storage() -> str:
    blob_storage().exists(STORAGE_PROBE_NAME)
    return "ok"


def check_migrations() -> str:
    global _migrations_applied
    if _migrations_applied:
        return "ok"
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in plan[:5])
        raise RuntimeError(f"{len(plan)} unapplied: {names}{', …' if len(plan) > 5 else ''}")
    _migrations_applied = True
    return "ok"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
    "migrations": check_migrations,
}


@never_cache
@require_safe
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    results: dict[str, dict] = {}
    healthy = True
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            results[name] = {"status": "ok", "detail": check()}
        except Exception as error:  # a probe reports every failure, whatever raised it
            healthy = False
            results[name] = {"status": "failing", "detail": f"{type(error).__name__}: {error}"[:300]}
            logger.warning("Readiness check %s failed: %s", name, error)
        results[name]["seconds"] = round(time.perf_counter() - started, 4)
    return JsonResponse({"status": "ok" if healthy else "failing", "checks": results}, status=200 if healthy else 503)
