"""Events written with their change, and delivered signed to a real receiver on loopback, retried, disabled.

Tasks run in-process here (the embedded default): the delivery is attempted right after the commit that wrote
it. The same paths with a real broker and worker are in tests/integration/test_webhooks.py.
"""

import io
import json
import socket
from datetime import timedelta

import jsonschema
import pytest
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from artifacts import services as artifacts_services
from artifacts.access.roles import Role
from artifacts.models import Blob
from artifacts.services.integrity import blob_verify
from config.celery import app as celery_app
from core.errors import Conflict, InvalidInput
from core.events import EventType, payload_schema
from core.models import AuditEntry, Event
from governance.access.services import item_decide
from governance.webhooks.deliveries import deliveries_relay
from governance.webhooks.models import WebhookAttempt, WebhookDelivery
from governance.webhooks.services import _claim as claim_for_a_worker_that_dies
from governance.webhooks.services import (
    delivery_attempt,
    retry_after,
    webhook_delivery_resend,
    webhook_endpoint_update,
    webhook_secret_rotate,
)
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    BlobFactory,
    ProjectFactory,
    UserFactory,
    grant,
)
from tests.celery_broker import celery_app_on
from tests.governance.factories import AccessReviewCampaignFactory, WebhookEndpointFactory
from tests.webhook_receiver import Answer

pytestmark = pytest.mark.django_db


def verified_payload(endpoint, received) -> dict:
    """The body, after the reference Standard Webhooks library has verified its signature."""
    return Webhook(endpoint.secret).verify(received.body, received.headers)


def publish(artifact, capture):
    with capture(execute=True):
        return ArtifactVersionFactory(artifact=artifact)


def make_due(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_a_publish_is_delivered_signed_with_a_payload_that_matches_its_schema(
    receiver, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    endpoint = WebhookEndpointFactory(project=artifact.project, url=receiver.url)

    version = publish(artifact, django_capture_on_commit_callbacks)

    [received] = receiver.wait_for(1)
    payload = verified_payload(endpoint, received)
    jsonschema.validate(payload, payload_schema(EventType.ARTIFACT_VERSION_PUBLISHED))
    assert payload["type"] == "artifact_version.published"
    assert payload["data"]["artifact_version"]["digest"] == version.blob.prefixed_digest
    assert payload["data"]["artifact_version"]["download_url"].endswith(
        f"/api/v1/artifact-versions/{version.pk}/download/"
    )
    assert payload["project"]["slug"] == artifact.project.slug
    assert payload["actor"] == {
        "kind": "user",
        "id": version.created_by.pk,
        "username": version.created_by.username,
        "label": version.created_by.username,
    }
    assert received.headers["webhook-id"] == payload["id"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == WebhookDelivery.State.SUCCEEDED
    assert [(a.number, a.outcome, a.status_code) for a in delivery.attempts.all()] == [(1, "succeeded", 200)]


def test_an_event_exists_only_if_its_change_committed(receiver, django_capture_on_commit_callbacks):
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    blob = BlobFactory(project=artifact.project)

    publisher = UserFactory(is_superuser=True)

    def publish_then_fail() -> None:
        with transaction.atomic():
            artifacts_services.artifact_version_publish(
                artifact=artifact, digest=blob.prefixed_digest, created_by=publisher
            )
            raise RuntimeError("the request failed after the publish")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        publish_then_fail()

    assert not Event.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert receiver.requests == []


def test_only_active_endpoints_subscribed_to_the_type_in_that_project_get_a_delivery(receiver):
    artifact = ArtifactFactory()
    subscribed = WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    WebhookEndpointFactory(project=artifact.project, url=receiver.url, event_types=["blob.corrupt"])
    switched_off = WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    webhook_endpoint_update(endpoint=switched_off, changed_by=None, is_active=False)
    WebhookEndpointFactory(project=ProjectFactory(), url=receiver.url)

    ArtifactVersionFactory(artifact=artifact)

    assert list(WebhookDelivery.objects.values_list("endpoint", flat=True)) == [subscribed.pk]


def test_a_failed_attempt_is_retried_with_the_same_id_after_the_scheduled_delay(
    receiver, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    endpoint = WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    receiver.answers.append(Answer(status=500, body=b"database is down"))

    before = timezone.now()
    publish(artifact, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == WebhookDelivery.State.PENDING
    # The first retry waits 5 s, give or take 20% jitter.
    assert before + timedelta(seconds=4) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=6)
    assert deliveries_relay() == []  # not due yet

    make_due(delivery)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_relay() == [delivery.pk]

    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert verified_payload(endpoint, second)["id"] == first.headers["webhook-id"]
    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.SUCCEEDED
    attempts = list(delivery.attempts.values_list("number", "status_code", "response_excerpt", "outcome"))
    assert attempts == [(1, 500, "database is down", "failed"), (2, 200, "ok", "succeeded")]
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_retry_after_is_honoured_when_it_asks_for_longer_than_the_schedule(
    receiver, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    receiver.answers.append(Answer(status=503, headers={"Retry-After": "120"}))

    publish(artifact, django_capture_on_commit_callbacks)

    delivery = WebhookDelivery.objects.get()
    wait = delivery.next_attempt_at - timezone.now()
    assert timedelta(seconds=110) < wait <= timedelta(seconds=120)


def test_redirects_are_not_followed(receiver, django_capture_on_commit_callbacks):
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    receiver.answers.append(Answer(status=302, headers={"Location": receiver.url + "/elsewhere"}))

    publish(artifact, django_capture_on_commit_callbacks)

    assert [r.path for r in receiver.wait_for(1)] == ["/hooks"]
    attempt = WebhookAttempt.objects.get()
    assert (attempt.outcome, attempt.status_code) == ("failed", 302)
    assert "redirects are not followed" in attempt.error


def test_retries_stop_when_the_schedule_is_used_up(receiver, settings, django_capture_on_commit_callbacks):
    settings.PROVENANT_WEBHOOK_RETRY_SCHEDULE = [5, 60]
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    receiver.default = Answer(status=500)

    publish(artifact, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    for _retry in range(2):
        make_due(delivery)
        delivery_attempt(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.FAILED
    assert delivery.attempt_count == 3
    assert delivery_attempt(delivery.pk) is None


def test_410_gone_disables_the_endpoint_and_tells_its_maintainers(receiver, django_capture_on_commit_callbacks):
    artifact = ArtifactFactory()
    maintainer = UserFactory(email="mo@example.com")
    grant(Role.MAINTAINER, on=artifact.project, user=maintainer)
    endpoint = WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    receiver.answers.append(Answer(status=410))

    publish(artifact, django_capture_on_commit_callbacks)

    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert "410 Gone" in endpoint.disabled_reason
    assert WebhookDelivery.objects.get().state == WebhookDelivery.State.FAILED
    [message] = mail.outbox
    assert message.to == ["mo@example.com"]
    assert endpoint.url in message.body
    disabled = AuditEntry.objects.get(action="webhook_endpoint.disabled")
    assert disabled.actor_kind == "system"

    ArtifactVersionFactory(artifact=artifact)
    assert WebhookDelivery.objects.count() == 1  # a disabled endpoint gets no new deliveries


def test_an_endpoint_failing_for_too_long_is_disabled(receiver, settings, django_capture_on_commit_callbacks):
    artifact = ArtifactFactory()
    endpoint = WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    receiver.default = Answer(status=500)
    publish(artifact, django_capture_on_commit_callbacks)
    endpoint.refresh_from_db()
    assert endpoint.is_active
    assert endpoint.failing_since is not None

    type(endpoint).objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(hours=73))
    delivery = WebhookDelivery.objects.get()
    make_due(delivery)
    delivery_attempt(delivery.pk)

    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert "Every delivery has failed since" in endpoint.disabled_reason
    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.FAILED


def test_a_resend_sends_the_same_id_and_body_again_and_is_recorded_as_manual(
    receiver, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    endpoint = WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    publish(artifact, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    person = UserFactory()

    with django_capture_on_commit_callbacks(execute=True):
        webhook_delivery_resend(delivery=delivery, resent_by=person)

    first, again = receiver.wait_for(2)
    assert (again.headers["webhook-id"], again.body) == (first.headers["webhook-id"], first.body)
    verified_payload(endpoint, again)
    assert list(delivery.attempts.values_list("number", "manual")) == [(1, False), (2, True)]
    resent = AuditEntry.objects.get(action="webhook_delivery.resent")
    assert resent.actor_user_id == person.pk


def test_during_a_rotation_both_secrets_sign_and_after_it_only_the_new_one(
    receiver, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    endpoint = WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    old = endpoint.secret
    new, until = webhook_secret_rotate(endpoint=endpoint, rotated_by=None, overlap=timedelta(hours=2))
    assert new != old
    assert new.startswith("whsec_")
    assert until > timezone.now() + timedelta(minutes=119)

    publish(artifact, django_capture_on_commit_callbacks)
    [during] = receiver.wait_for(1)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)

    webhook_secret_rotate(endpoint=endpoint, rotated_by=None, overlap=timedelta(0))
    newest = endpoint.secrets.get(expires_at__isnull=True)
    publish(artifact, django_capture_on_commit_callbacks)
    after = receiver.wait_for(2)[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(new).verify(after.body, after.headers)
    assert newest.hint.startswith("whsec_")


def test_blob_events_report_changes_of_state_not_every_re_proof(
    receiver, isolated_blob_folder, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    endpoint = WebhookEndpointFactory(
        project=artifact.project, url=receiver.url, event_types=["blob.verified", "blob.corrupt"]
    )
    version = ArtifactVersionFactory(artifact=artifact)
    blob = version.blob

    with django_capture_on_commit_callbacks(execute=True):
        blob_verify(blob=blob)
        blob_verify(blob=blob)  # the scrub re-proving it: audited, not announced
    [verified] = receiver.wait_for(1)
    payload = verified_payload(endpoint, verified)
    jsonschema.validate(payload, payload_schema(EventType.BLOB_VERIFIED))
    assert payload["data"]["blob"]["state"] == "verified"
    assert payload["data"]["repaired"] is False
    assert [v["id"] for v in payload["data"]["artifact_versions"]] == [version.pk]

    (isolated_blob_folder / blob.storage_key).write_bytes(b"bit rot")
    with django_capture_on_commit_callbacks(execute=True):
        blob_verify(blob=Blob.objects.get(pk=blob.pk))
    corrupt = verified_payload(endpoint, receiver.wait_for(2)[1])
    jsonschema.validate(corrupt, payload_schema(EventType.BLOB_CORRUPT))
    assert corrupt["type"] == "blob.corrupt"
    assert corrupt["actor"]["kind"] == "system"


def test_a_completed_access_review_is_announced_to_each_project_it_covered(
    receiver, django_capture_on_commit_callbacks
):
    project = ProjectFactory()
    endpoint = WebhookEndpointFactory(project=project, url=receiver.url, event_types=["access_review.completed"])
    grant(Role.VIEWER, on=project)
    campaign = AccessReviewCampaignFactory(project=project)

    with django_capture_on_commit_callbacks(execute=True):
        for item in campaign.items.all():
            item_decide(item=item, decision="keep", comment="", decided_by=item.reviewer)

    payload = verified_payload(endpoint, receiver.wait_for(1)[0])
    jsonschema.validate(payload, payload_schema(EventType.ACCESS_REVIEW_COMPLETED))
    review = payload["data"]["access_review"]
    assert (review["id"], review["items"], review["kept"], review["revoked"]) == (
        campaign.pk,
        campaign.items.count(),
        campaign.items.count(),
        0,
    )


def test_events_are_never_changed_or_deleted(receiver):
    artifact = ArtifactFactory()
    ArtifactVersionFactory(artifact=artifact)
    event = Event.objects.get()
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.filter(pk=event.pk).update(body=json.dumps({"forged": True}))
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.filter(pk=event.pk).delete()


def test_a_hand_off_the_broker_refuses_leaves_the_delivery_to_the_relay(receiver, django_capture_on_commit_callbacks):
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    with socket.socket() as probe:  # a port nothing listens on: the broker is down
        probe.bind(("127.0.0.1", 0))
        down = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    celery_app.conf.task_always_eager = False
    try:
        with celery_app_on(down):
            publish(artifact, django_capture_on_commit_callbacks)  # the publish itself succeeds
    finally:
        celery_app.conf.task_always_eager = True

    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.handed_at, delivery.attempt_count) == ("pending", None, 0)
    assert receiver.requests == []

    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_relay() == [delivery.pk]  # the broker is back (in-process here)
    receiver.wait_for(1)
    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.SUCCEEDED


def test_an_attempt_whose_worker_died_is_logged_as_lost_and_the_delivery_tried_again(
    receiver, settings, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    celery_app.conf.task_always_eager = False
    try:
        with celery_app_on("memory://"):
            publish(artifact, django_capture_on_commit_callbacks)  # queued, not run
    finally:
        celery_app.conf.task_always_eager = True
    delivery = WebhookDelivery.objects.get()
    assert claim_for_a_worker_that_dies(delivery.pk) is not None
    assert delivery_attempt(delivery.pk) is None  # its lease holds: no second worker takes it meanwhile

    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())  # the lease ran out
    with django_capture_on_commit_callbacks(execute=True):
        deliveries_relay()

    receiver.wait_for(1)
    attempts = list(delivery.attempts.values_list("number", "outcome"))
    assert attempts == [(1, WebhookAttempt.Outcome.LOST), (2, WebhookAttempt.Outcome.SUCCEEDED)]
    assert "worker stopped" in delivery.attempts.get(number=1).error


def test_the_relay_command_sends_due_retries(receiver, django_capture_on_commit_callbacks):
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    receiver.answers.append(Answer(status=500))
    publish(artifact, django_capture_on_commit_callbacks)
    make_due(WebhookDelivery.objects.get())
    out = io.StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("relay_webhooks", stdout=out)

    assert "Handed 1 webhook deliveries" in out.getvalue()
    assert len(receiver.wait_for(2)) == 2
    assert WebhookDelivery.objects.get().state == WebhookDelivery.State.SUCCEEDED


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", timedelta(seconds=120)), ("99999999999999", timedelta(hours=24)), ("\u00b2", None), ("soon", None)],
)
def test_a_receivers_retry_after_is_read_safely(header, expected):
    assert retry_after({"retry-after": header}, timezone.now()) == expected


def test_a_secret_that_can_no_longer_be_decrypted_fails_the_delivery_with_what_to_do(
    receiver, settings, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    settings.SECRET_KEY = "a-new-key-without-the-old-one-kept-as-a-fallback-" * 2

    publish(artifact, django_capture_on_commit_callbacks)

    delivery = WebhookDelivery.objects.get()
    assert delivery.state == WebhookDelivery.State.FAILED
    assert "Rotate the secret" in delivery.last_error
    assert receiver.requests == []


def test_a_secret_sealed_under_a_former_key_still_signs_while_that_key_is_a_fallback(
    receiver, settings, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-key-after-a-rotation-with-the-old-one-kept-as-a-fallback-" * 2

    publish(artifact, django_capture_on_commit_callbacks)

    assert WebhookDelivery.objects.get().state == WebhookDelivery.State.SUCCEEDED
    assert len(receiver.wait_for(1)) == 1


def test_a_resend_is_refused_while_an_attempt_is_under_way(receiver, django_capture_on_commit_callbacks):
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    celery_app.conf.task_always_eager = False
    try:
        with celery_app_on("memory://"):
            publish(artifact, django_capture_on_commit_callbacks)
    finally:
        celery_app.conf.task_always_eager = True
    delivery = WebhookDelivery.objects.get()
    assert claim_for_a_worker_that_dies(delivery.pk) is not None  # the attempt is under way

    with pytest.raises(Conflict, match="under way"):
        webhook_delivery_resend(delivery=delivery, resent_by=None)


def test_a_url_that_is_not_ascii_is_refused_with_the_form_to_use_instead():
    with pytest.raises(InvalidInput, match="punycode"):
        WebhookEndpointFactory(url="https://bücher.example/hooks")
