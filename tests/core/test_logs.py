"""Structured logs: a request's lines are JSON carrying its id, user, token and project, and a task it queues logs
under the same request id with its own task id and name (eagerly here; tests/integration/test_logs.py proves it
across processes with a real worker)."""

import io
import json
import logging
import os
from collections.abc import Iterator

import pytest
import structlog
from celery import current_app

from artifacts.models import Blob
from core import logs
from governance.access.models import ApiToken
from tests.artifacts.factories import ProjectFactory, sha256


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the root logger writes through the JSON formatter PROVENANT_LOG_FORMAT=json installs."""
    config = logs.logging_config(log_format="json", level="INFO", quiet_loggers={})["formatters"]["structured"]
    factory = config.pop("()")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(factory(**config))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict]:
    """Every line must be a JSON object: a plain-text line fails the test here."""
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.django_db
def test_an_upload_logs_json_lines_with_its_request_id_user_token_and_project(
    api, user, json_lines, django_capture_on_commit_callbacks
):
    project = ProjectFactory()
    data = os.urandom(2048)
    # The verification is queued (and, eager, run) when the test's transaction commits, after the request ended:
    # the context it was queued in goes with it all the same.
    with django_capture_on_commit_callbacks(execute=True):
        response = api.put(
            f"/api/v1/projects/{project.slug}/blobs/{sha256(data)}",
            data,
            content_type="application/octet-stream",
            HTTP_X_REQUEST_ID="upload-trace-42",
        )
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == "upload-trace-42"
    lines = parsed(json_lines)

    token = ApiToken.objects.get(user=user)
    (request_line,) = [line for line in lines if line["logger"] == "provenant.request"]
    assert request_line | {"timestamp": None, "duration_ms": None} == {
        "event": "request",
        "level": "info",
        "logger": "provenant.request",
        "request_id": "upload-trace-42",
        "method": "PUT",
        "path": f"/api/v1/projects/{project.slug}/blobs/{sha256(data)}",
        "user": user.get_username(),
        "user_id": user.pk,
        "token_id": token.pk,
        "project": project.slug,
        "project_id": project.pk,
        "status": 201,
        "timestamp": None,
        "duration_ms": None,
    }
    # The verification task the upload queued ran (eagerly, in this process) under the same request id.
    (verified,) = [line for line in lines if line["event"].startswith(f"Blob {sha256(data)} verified")]
    assert verified["request_id"] == "upload-trace-42"
    assert verified["task_name"] == "artifacts.tasks.verify_blob"
    assert verified["task_id"]
    assert verified["project"] == project.slug
    assert verified["token_id"] == token.pk
    assert Blob.objects.get(digest=sha256(data)[7:]).state == Blob.State.VERIFIED


@pytest.mark.django_db
def test_a_request_without_an_id_gets_one_and_a_hostile_id_is_replaced(api, json_lines):
    api.get("/api/v1/projects/", HTTP_X_REQUEST_ID='"}{"injected": true')
    api.get("/api/v1/projects/")
    first, second = [line for line in parsed(json_lines) if line["logger"] == "provenant.request"]
    assert len(first["request_id"]) == 32
    assert "injected" not in first
    assert second["request_id"] != first["request_id"]
    assert first["status"] == second["status"] == 200


@pytest.mark.django_db
def test_nothing_of_a_request_lingers_in_the_next_lines(api, json_lines):
    api.get("/api/v1/projects/", HTTP_X_REQUEST_ID="gone-after")
    logging.getLogger("provenant.test").info("after the request")
    after = parsed(json_lines)[-1]
    assert after["event"] == "after the request"
    assert not {"request_id", "user", "token_id", "path"} & after.keys()


def test_the_request_context_travels_in_the_task_message_and_is_bound_in_the_worker():
    """The publishing side puts the context in the message's headers; the running side binds it with the task's
    id and name, and forgets it when the task ends."""
    headers: dict = {}
    logs.bind(request_id="abc", user="ana", token_id=7, path="/not/carried")
    try:
        logs.task_publishing(headers=headers)
    finally:
        structlog.contextvars.clear_contextvars()
    assert headers == {logs.TASK_HEADER: {"request_id": "abc", "user": "ana", "token_id": 7}}

    task = current_app.tasks["artifacts.tasks.verify_blob"]
    task.push_request(id="t-1", is_eager=False, **headers)
    try:
        logs.task_starting(task=task, task_id="t-1")
        assert structlog.contextvars.get_contextvars() == {
            "request_id": "abc",
            "user": "ana",
            "token_id": 7,
            "task_id": "t-1",
            "task_name": "artifacts.tasks.verify_blob",
        }
        logs.task_ended(task=task)
        assert structlog.contextvars.get_contextvars() == {}
    finally:
        task.pop_request()


@pytest.mark.django_db
def test_a_portal_sessions_user_is_named_without_a_token_id(client, user, json_lines):
    client.force_login(user)
    client.get("/", HTTP_X_REQUEST_ID="portal-1")
    (line,) = [line for line in parsed(json_lines) if line["logger"] == "provenant.request"]
    assert line["request_id"] == "portal-1"
    assert line["user"] == user.get_username()
    assert "token_id" not in line


@pytest.mark.django_db
def test_a_chunked_uploads_lines_name_its_project_and_session(api, json_lines):
    project = ProjectFactory()
    data = os.urandom(1024)
    started = api.post(f"/api/v1/projects/{project.slug}/uploads/", {"size": len(data)}, format="json")
    assert started.status_code == 201, started.content
    session = started.json()["id"]
    api.get(f"/api/v1/uploads/{session}/", HTTP_X_REQUEST_ID="chunk-status")
    (line,) = [line for line in parsed(json_lines) if line.get("request_id") == "chunk-status"]
    assert line["project"] == project.slug
    assert line["upload_session"] == session
