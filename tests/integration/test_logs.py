"""One upload followed by its request id from the web process to the worker that verified it: the test process
serves the upload (as a web process would) and writes JSON lines; the session's Celery worker, a separate process
consuming the real broker, writes its own to its log file. Both must name the caller's X-Request-ID."""

import io
import json
import logging
import os
import time
from collections.abc import Iterator

import pytest
from structlog.stdlib import ProcessorFormatter

from artifacts.models import Blob
from tests.artifacts.factories import sha256
from tests.integration.test_artifact_store import created

pytestmark = pytest.mark.integration


def json_lines(text: str) -> list[dict]:
    """The JSON lines in a process's output (a worker's banner, printed before logging starts, is plain text)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


@pytest.fixture
def web_output() -> Iterator[io.StringIO]:
    """A copy of what this process's log handler writes, through the formatter settings.LOGGING gave it (its own
    stream is pytest's capture, which no fixture reads)."""
    (configured,) = [
        handler for handler in logging.getLogger().handlers if isinstance(handler.formatter, ProcessorFormatter)
    ]
    stream = io.StringIO()
    copy = logging.StreamHandler(stream)
    copy.setFormatter(configured.formatter)
    logging.getLogger().addHandler(copy)
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(copy)


@pytest.mark.django_db(transaction=True)
def test_one_uploads_request_id_is_in_the_web_line_and_in_the_worker_line_that_verified_it(
    api, user, celery_worker, wait_for_blob_state, web_output
):
    created(api, "/api/v1/projects/", {"slug": "traced", "name": "Traced"})
    data = os.urandom(4096)
    response = api.put(
        f"/api/v1/projects/traced/blobs/{sha256(data)}",
        data,
        content_type="application/octet-stream",
        HTTP_X_REQUEST_ID="it-upload-7f3a",
    )
    assert response.status_code == 201, response.content
    wait_for_blob_state(sha256(data), Blob.State.VERIFIED)

    web = [line for line in json_lines(web_output.getvalue()) if line.get("request_id") == "it-upload-7f3a"]
    (request_line,) = [line for line in web if line["logger"] == "provenant.request"]
    assert request_line["status"] == 201
    assert request_line["user"] == user.get_username()
    assert request_line["project"] == "traced"

    # The worker writes the line once the blob's state is committed: give its handler a moment to flush.
    deadline = time.monotonic() + 10
    while True:
        worker = [
            line
            for line in json_lines(celery_worker.log_path.read_text(errors="replace"))
            if line.get("request_id") == "it-upload-7f3a"
        ]
        verified = [line for line in worker if line["event"].startswith(f"Blob {sha256(data)} verified")]
        if verified or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert verified, f"No worker line names the request. The worker's log ends:\n{celery_worker.log_tail()}"
    (line,) = verified
    assert line["task_name"] == "artifacts.tasks.verify_blob"
    assert line["task_id"]
    assert line["user"] == user.get_username()
    assert line["project"] == "traced"
    # Celery's own line for the task (its trace logger) is a JSON line of the same request too.
    assert any(entry["logger"] == "celery.app.trace" and entry["task_id"] == line["task_id"] for entry in worker)
