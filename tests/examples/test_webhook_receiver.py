"""The example webhook receiver (examples/webhook_receiver.py): it handles what the server sends, once per
`webhook-id` however often it arrives, refuses what was not signed with its secret, and runs as a script from the
checkout in a Python where importing Django fails."""

import ipaddress
import json
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from core.crypto.webhook_signatures import new_secret
from examples.webhook_receiver import SECRET_VARIABLE, Receiver
from governance.webhooks.models import WebhookDelivery
from governance.webhooks.services import webhook_delivery_resend, webhook_endpoint_test
from tests.artifacts.factories import ProjectFactory
from tests.governance.factories import WebhookEndpointFactory
from tests.standalone import ROOT, without_django

EXAMPLE = ROOT / "examples" / "webhook_receiver.py"


@contextmanager
def serving(receiver: Receiver) -> Iterator[str]:
    """`receiver` answering in a thread until the block ends; its URL."""
    thread = threading.Thread(target=receiver.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        host, port = receiver.server_address[:2]
        yield f"http://{host}:{port}/provenant"
    finally:
        receiver.shutdown()
        receiver.server_close()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST `body` to `url`; the status and the answer's text, whatever the status."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (http to loopback)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def signed_by_the_reference_library(secret: str, msg_id: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for `body`, signed now by the reference library (not by our module)."""
    now = datetime.now(tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
        "Content-Type": "application/json",
    }


@pytest.mark.django_db
def test_a_delivery_from_the_server_is_handled_once_however_often_it_is_sent(
    settings, django_capture_on_commit_callbacks
):
    settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.1/32")]
    events: list[dict] = []
    receiver = Receiver(("127.0.0.1", 0), secret=new_secret(), on_event=events.append)

    with serving(receiver) as url:
        endpoint = WebhookEndpointFactory(project=ProjectFactory(), url=url)
        receiver.secret = endpoint.secret  # shown once, when the endpoint is registered: the receiver gets it then
        with django_capture_on_commit_callbacks(execute=True):
            delivery = webhook_endpoint_test(endpoint=endpoint, sent_by=None)
        with django_capture_on_commit_callbacks(execute=True):
            webhook_delivery_resend(delivery=delivery, resent_by=None)  # the same webhook-id and body, again

    assert [(event["id"], event["type"]) for event in events] == [(delivery.event.public_id, "webhook.test")]
    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.SUCCEEDED
    assert list(delivery.attempts.order_by("number").values_list("status_code", "response_excerpt")) == [
        (204, ""),
        (200, "Already handled."),
    ]


def test_as_a_script_it_handles_signed_deliveries_and_refuses_the_rest():
    secret = new_secret()
    event = {"id": "msg_1", "type": "webhook.test", "timestamp": "2026-03-01T12:00:00Z", "project": {"slug": "churn"}}
    body = json.dumps(event).encode()
    with subprocess.Popen(
        without_django(EXAMPLE, "--port", "0"),
        cwd=ROOT,
        env={SECRET_VARIABLE: secret},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            listening = process.stdout.readline()
            assert listening.startswith("Listening on http://127.0.0.1:"), listening + process.stderr.read()
            url = listening.split()[2]

            assert post(url, body, signed_by_the_reference_library(secret, "msg_1", body)) == (204, "")
            assert post(url, body, signed_by_the_reference_library(secret, "msg_1", body)) == (200, "Already handled.")
            forged = signed_by_the_reference_library(new_secret(), "msg_2", body)
            assert post(url, body, forged) == (400, "No v1 signature matches this secret and body.")
            altered = signed_by_the_reference_library(secret, "msg_3", body)
            assert post(url, body.replace(b"churn", b"other"), altered)[0] == 400
            unsigned = {"webhook-id": "msg_4", "Content-Type": "application/json"}
            assert post(url, body, unsigned) == (400, "Missing header(s): webhook-timestamp, webhook-signature.")
        finally:
            process.terminate()
        out, err = process.communicate(timeout=10)

    assert out.splitlines() == ["2026-03-01T12:00:00Z webhook.test msg_1 project=churn"]
    assert err.count("rejected a delivery from 127.0.0.1") == 3


def test_as_a_script_it_refuses_to_start_without_a_valid_secret():
    for environment in ({}, {SECRET_VARIABLE: "not a secret"}):
        completed = subprocess.run(
            without_django(EXAMPLE, "--port", "0"),
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert completed.returncode == 2, completed
        assert completed.stderr.startswith(f"error: {SECRET_VARIABLE}: A webhook secret starts with 'whsec_'")
