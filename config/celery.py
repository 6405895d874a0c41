"""The Celery app. Workers: `celery -A config worker`; beat: `celery -A config beat`."""

import os
from typing import Any

from celery import Celery, Task, signals

from core import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("provenant")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The request's log context (request id, user, token, project) travels with each task it queues (core/logs.py).
signals.before_task_publish.connect(logs.task_publishing, weak=False)
signals.task_prerun.connect(logs.task_starting, weak=False)
signals.task_postrun.connect(logs.task_ended, weak=False)


@signals.setup_logging.connect
def use_django_logging(**kwargs: Any) -> None:
    """A worker logs as the web processes do, through settings.LOGGING (JSON lines in production).

    Connecting this signal stops Celery from replacing the root logger's handlers with its own plain-text ones.
    """
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_old_database_connections(sender: Task | None = None, **kwargs: Any) -> None:
    """Before and after each task, close the database connections Django would close after a request: older than
    CONN_MAX_AGE, broken, failing their health check, or left mid-transaction by an error.

    Why: Celery's Django fixup closes every connection before and after each task unless CELERY_DB_REUSE_MAX is set
    (config/settings/celery.py sets it), so each task used to open a PostgreSQL connection of its own. That was most
    of a webhook delivery's time in a worker (a new server process, and its first queries on cold caches). With the
    fixup held back, this keeps the worker's connections as healthy as the web processes' are. A task run eagerly (no
    broker) runs inside its caller's transaction, whose connection must stay open.
    """
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
