"""Queuing background work by the task's name.

A task imports the service it runs, so a service that imported its task to queue it would close a cycle. Services
name the task instead (each area declares the names it queues in its `jobs.py`, e.g. artifacts/jobs.py), and this
module finds it in the Celery app when the work is queued. Finding the task itself, rather than sending a message
by name, keeps eager mode working: with CELERY_TASK_ALWAYS_EAGER (no broker; the unit tests) `apply_async` runs it
in this process, where `send_task` would only publish a message.
"""

import threading
from typing import Any

import structlog
from celery import Task, current_app
from django.db import transaction

from core import logs

_discovering = threading.Lock()


def task_named(name: str) -> Task:
    """The task registered as `name`. A worker imports every installed app's tasks.py when it starts; a web process
    imports them here the first time it needs one, as no module below them may. (Forced autodiscovery imports just
    those modules; the worker's start-up path, `loader.import_default_modules`, would also run Django's checks.)"""
    app = current_app
    if name not in app.tasks:
        # Celery's autodiscovery returns at once, having imported nothing, in any thread but the one running it (a
        # module-wide flag); the lock makes a threaded web worker's other first requests wait for its imports.
        with _discovering:
            if name not in app.tasks:
                app.autodiscover_tasks(force=True)
    return app.tasks[name]


def enqueue(task_name: str, *args: Any, **options: Any) -> None:
    """Queue task `task_name` with positional `args` now. `options` are `apply_async`'s (e.g. `retry=False` to
    hear at once that the broker refuses). Raises what the broker raises."""
    task_named(task_name).apply_async(args, **options)


def enqueue_on_commit(task_name: str, *args: Any, robust: bool = False, **options: Any) -> None:
    """Queue task `task_name` with `args` once the current transaction commits (at once outside one), so the worker
    finds what the transaction wrote. `robust`: a broker that refuses is logged, not raised, for work that may be
    queued again later."""

    # The log context of whoever queues it (the request's id, user, project) goes with the task even when the commit
    # comes later, outside the request (core/logs.py).
    context = logs.carried_context()

    def queue() -> None:
        with structlog.contextvars.bound_contextvars(**context):
            enqueue(task_name, *args, **options)

    # Django names the callback in the error it logs when a robust one fails: name the task.
    queue.__qualname__ = f"queue of {task_name}"
    transaction.on_commit(queue, robust=robust)
