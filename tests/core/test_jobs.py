"""Queuing work by the task's name (core/jobs.py): every name an app declares is a task, work is queued once the
transaction commits and runs in this process in eager mode, and a process that imported no tasks module yet (a web
process) still finds the task."""

import os
import subprocess
import sys
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path

import pytest
from celery import shared_task
from django.apps import apps

from artifacts.jobs import VERIFY_BLOB, VERIFY_DIRECT_UPLOAD
from core.jobs import enqueue, enqueue_on_commit, task_named
from governance.webhooks.jobs import DELIVER_WEBHOOK

ROOT = Path(__file__).resolve().parents[2]
RECORD = "tests.core.test_jobs.record"
recorded: list[tuple] = []


@shared_task(name=RECORD)
def record(*args: object) -> None:
    recorded.append(args)


def declared_job_names() -> set[str]:
    """The task names every installed app's jobs.py declares (its upper-case string constants)."""
    names = set()
    for config in apps.get_app_configs():
        if find_spec(f"{config.name}.jobs") is None:
            continue
        module = import_module(f"{config.name}.jobs")
        names |= {value for name, value in vars(module).items() if name.isupper() and isinstance(value, str)}
    return names


def test_every_job_name_an_app_declares_is_a_registered_task():
    declared = declared_job_names()

    assert declared >= {VERIFY_BLOB, VERIFY_DIRECT_UPLOAD, DELIVER_WEBHOOK}
    assert {task_named(name).name for name in declared} == declared


@pytest.mark.django_db
def test_work_queued_on_commit_waits_for_the_commit_and_runs_in_process_when_eager(
    django_capture_on_commit_callbacks,
):
    recorded.clear()
    with django_capture_on_commit_callbacks() as callbacks:
        enqueue_on_commit(RECORD, 1, "one")
        assert recorded == []
    for callback in callbacks:
        callback()

    assert recorded == [(1, "one")]


def test_work_queued_now_runs_at_once_when_eager():
    recorded.clear()

    enqueue(RECORD, 2)

    assert recorded == [(2,)]


def test_a_process_that_imported_no_tasks_module_finds_the_task_by_its_name():
    code = (
        "import sys, django; django.setup(); from core.jobs import task_named; "
        "print('artifacts.tasks' in sys.modules, task_named('artifacts.tasks.verify_blob').name)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.stdout.split() == ["False", VERIFY_BLOB], result.stderr


def test_threads_of_a_web_process_asking_for_tasks_at_once_all_find_them():
    """A threaded web worker's first requests can queue work at the same moment: Celery's autodiscovery returns at
    once, having imported nothing, in every thread but the one running it, and those threads found no task
    (NotRegistered, the upload's verification never queued: seen by benchmarks/topology.py)."""
    code = (
        "import sys, threading, django; django.setup(); from core.jobs import task_named\n"
        "names = sys.argv[1:]; barrier = threading.Barrier(len(names)); found = []\n"
        "def ask(name):\n"
        "    barrier.wait()\n"
        "    try:\n"
        "        found.append(task_named(name).name)\n"
        "    except Exception as error:\n"
        "        found.append(type(error).__name__)\n"
        "threads = [threading.Thread(target=ask, args=(name,)) for name in names]\n"
        "[thread.start() for thread in threads]; [thread.join() for thread in threads]\n"
        "print(' '.join(sorted(found)))"
    )
    names = [VERIFY_BLOB, VERIFY_DIRECT_UPLOAD, DELIVER_WEBHOOK] * 3
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code, *names], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip

    assert result.stdout.split() == sorted(names), result.stderr
