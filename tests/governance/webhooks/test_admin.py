"""Webhooks in the admin: endpoints added, edited, rotated, tested and deleted through the webhook services with the
secret shown once; deliveries and events read-only, a delivery re-sent through its service; each staff member
seeing the webhooks of the projects they maintain or audit; list pages at a cost that does not grow with the rows."""

import json
import re

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from standardwebhooks.webhooks import Webhook

from artifacts.access.roles import Role
from core.models import AuditEntry, Event
from governance.webhooks.models import WebhookDelivery, WebhookEndpoint
from governance.webhooks.services import webhook_endpoint_test, webhook_endpoint_update
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory, UserFactory, grant
from tests.governance.factories import WebhookEndpointFactory
from tests.pages import listed, messages_of, queries_for
from tests.webhook_receiver import Answer

pytestmark = pytest.mark.django_db

ENDPOINTS = reverse("admin:webhooks_webhookendpoint_changelist")
ADD_ENDPOINT = reverse("admin:webhooks_webhookendpoint_add")
DELIVERIES = reverse("admin:webhooks_webhookdelivery_changelist")
EVENTS = reverse("admin:core_event_changelist")
PUBLIC_URL = "https://93.184.215.14/hooks"  # a public address as a literal: no DNS, and nothing is sent to it
PUBLISHED = "artifact_version.published"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")

# What a project maintainer's staff account is given, e.g. through a "maintainers" group.
WEBHOOK_PERMISSIONS = (
    "view_webhookendpoint",
    "add_webhookendpoint",
    "change_webhookendpoint",
    "delete_webhookendpoint",
    "view_webhookdelivery",
    "change_webhookdelivery",
    "view_event",
    "view_project",
)


def endpoint_url(endpoint: WebhookEndpoint, view: str = "change") -> str:
    return reverse(f"admin:webhooks_webhookendpoint_{view}", args=[endpoint.pk])


def delivery_url(delivery: WebhookDelivery, view: str = "change") -> str:
    return reverse(f"admin:webhooks_webhookdelivery_{view}", args=[delivery.pk])


def act(client, changelist: str, action: str, objects):
    data = {"action": action, "_selected_action": [obj.pk for obj in objects], "index": 0}
    return client.post(changelist, data, follow=True)


def edit(endpoint: WebhookEndpoint, **changes) -> dict:
    """The change form as posted with `changes`; a checkbox left out of a post is unticked."""
    data = {"url": endpoint.url, "description": endpoint.description, "event_types": endpoint.event_types}
    data |= {"is_active": "on"} if endpoint.is_active else {}
    return {**data, **changes}


def publish(artifact, capture) -> None:
    with capture(execute=True):
        ArtifactVersionFactory(artifact=artifact)


# Endpoints -------------------------------------------------------------------------------------------------------


def test_adding_an_endpoint_shows_its_secret_once_and_that_secret_signs_deliveries(
    admin_client, receiver, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()

    response = admin_client.post(
        ADD_ENDPOINT,
        {"project": artifact.project.pk, "url": receiver.url, "description": "CI", "event_types": [PUBLISHED]},
        follow=True,
    )

    assert response.status_code == 200
    [note] = [note for note in messages_of(response) if note.startswith("Signing secret")]
    secret = SECRET.search(note).group()
    assert note == f"Signing secret for {receiver.url}: {secret} — copy it now, it is not shown again."
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.project, endpoint.event_types, endpoint.created_by.username) == (
        artifact.project,
        [PUBLISHED],
        "admin",
    )
    assert AuditEntry.objects.filter(action="webhook_endpoint.created").count() == 1
    page = admin_client.get(endpoint_url(endpoint)).content.decode()
    assert secret not in page
    assert f"{secret[:10]}…" in page  # the hint, to recognise it
    assert secret not in admin_client.get(ENDPOINTS).content.decode()
    assert not LogEntry.objects.filter(change_message__contains=secret).exists()

    publish(artifact, django_capture_on_commit_callbacks)

    [received] = receiver.wait_for(1)
    assert Webhook(secret).verify(received.body, received.headers)["type"] == PUBLISHED


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://10.0.0.1/hooks", "10.0.0.1 is a private address"),
        ("https://169.254.169.254/latest/", "169.254.169.254 is a cloud metadata address"),
        ("http://127.0.0.1:9000/hooks", "127.0.0.1 is a loopback address"),
        ("http://93.184.215.14/hooks", "use https://"),
    ],
)
def test_a_destination_the_guard_refuses_is_an_error_on_the_form(admin_client, settings, url, reason):
    settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = []
    project = ProjectFactory()

    response = admin_client.post(ADD_ENDPOINT, {"project": project.pk, "url": url, "event_types": [PUBLISHED]})

    assert response.status_code == 200
    assert reason in " ".join(response.context["adminform"].form.errors["url"])
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_subscribed_to_nothing_is_an_error_on_the_form(admin_client):
    response = admin_client.post(ADD_ENDPOINT, {"project": ProjectFactory().pk, "url": PUBLIC_URL})

    assert response.status_code == 200
    assert "event_types" in response.context["adminform"].form.errors
    assert not WebhookEndpoint.objects.exists()


def test_editing_goes_through_the_service_and_is_audited(admin_client):
    endpoint = WebhookEndpointFactory(url=PUBLIC_URL)

    response = admin_client.post(
        endpoint_url(endpoint), edit(endpoint, description="Deploys", event_types=[PUBLISHED, "blob.corrupt"])
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.description, endpoint.event_types) == ("Deploys", [PUBLISHED, "blob.corrupt"])
    entry = AuditEntry.objects.get(action="webhook_endpoint.updated")
    assert entry.actor_label == "admin"
    assert json.loads(entry.changes) == {
        "description": ["", "Deploys"],
        "event_types": [[PUBLISHED], [PUBLISHED, "blob.corrupt"]],
    }


def test_switching_an_endpoint_off_and_on_again_from_its_page(admin_client):
    endpoint = WebhookEndpointFactory(url=PUBLIC_URL)
    form = edit(endpoint)
    del form["is_active"]

    admin_client.post(endpoint_url(endpoint), form)
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.disabled_reason) == (False, "Switched off by hand.")

    admin_client.post(endpoint_url(endpoint), edit(endpoint, is_active="on"))
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.disabled_reason, endpoint.disabled_at) == (True, "", None)


def test_deleting_an_endpoint_goes_through_the_service(admin_client):
    endpoint = WebhookEndpointFactory(url=PUBLIC_URL)

    response = admin_client.post(endpoint_url(endpoint, "delete"), {"post": "yes"})

    assert response.status_code == 302
    assert WebhookEndpoint.objects.get().deleted_at is not None
    assert admin_client.get(endpoint_url(endpoint, "change")).status_code in (302, 404)
    assert AuditEntry.objects.get(action="webhook_endpoint.deleted").actor_label == "admin"


def test_the_rotate_action_shows_the_new_secret_once_and_both_sign(
    admin_client, receiver, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    endpoint = WebhookEndpointFactory(project=artifact.project, url=receiver.url)

    response = act(admin_client, ENDPOINTS, "rotate_secrets", [endpoint])

    [note] = [note for note in messages_of(response) if note.startswith("New signing secret")]
    new = SECRET.search(note).group()
    assert new != endpoint.secret
    assert "The previous secret keeps signing until" in note
    assert AuditEntry.objects.filter(action="webhook_endpoint.secret_rotated").count() == 1
    assert not LogEntry.objects.filter(change_message__contains=new).exists()
    assert new not in admin_client.get(endpoint_url(endpoint)).content.decode()

    publish(artifact, django_capture_on_commit_callbacks)

    [received] = receiver.wait_for(1)
    Webhook(new).verify(received.body, received.headers)
    Webhook(endpoint.secret).verify(received.body, received.headers)


def test_the_test_action_sends_a_test_event(admin_client, receiver, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpointFactory(url=receiver.url)

    with django_capture_on_commit_callbacks(execute=True):
        response = act(admin_client, ENDPOINTS, "send_test_events", [endpoint])

    assert any(note.startswith(f"Sent a test event to {receiver.url}") for note in messages_of(response))
    [received] = receiver.wait_for(1)
    assert Webhook(endpoint.secret).verify(received.body, received.headers)["type"] == "webhook.test"


def test_the_test_action_reports_a_disabled_endpoint_as_an_error(admin_client):
    endpoint = WebhookEndpointFactory(url=PUBLIC_URL)
    webhook_endpoint_update(endpoint=endpoint, changed_by=None, is_active=False)

    response = act(admin_client, ENDPOINTS, "send_test_events", [endpoint])

    [error] = [m for m in response.context["messages"] if m.level_tag == "error"]
    assert "This endpoint is disabled" in str(error)
    assert not WebhookDelivery.objects.exists()


def test_endpoints_are_searched_and_filtered(admin_client):
    churn = WebhookEndpointFactory(project=ProjectFactory(slug="churn"), url=PUBLIC_URL)
    other = WebhookEndpointFactory(url="https://93.184.215.15/other")
    webhook_endpoint_update(endpoint=other, changed_by=None, is_active=False)

    assert listed(admin_client.get(ENDPOINTS, {"q": "churn"})) == [churn]
    assert listed(admin_client.get(ENDPOINTS, {"q": "other"})) == [other]
    assert listed(admin_client.get(ENDPOINTS, {"is_active__exact": "0"})) == [other]
    assert listed(admin_client.get(ENDPOINTS, {"failing": "yes"})) == []


# Who sees what ---------------------------------------------------------------------------------------------------


def test_a_staff_maintainer_manages_only_the_endpoints_of_their_project(client, staff):
    project = ProjectFactory()
    mine = WebhookEndpointFactory(project=project, url=PUBLIC_URL)
    theirs = WebhookEndpointFactory(url=PUBLIC_URL)
    maintainer = staff(grant(Role.MAINTAINER, on=project).user, *WEBHOOK_PERMISSIONS)
    client.force_login(maintainer)

    assert listed(client.get(ENDPOINTS)) == [mine]
    assert client.get(endpoint_url(theirs)).status_code == 302  # the admin's answer for an object out of sight
    form = client.get(ADD_ENDPOINT).context["adminform"].form
    assert list(form.fields["project"].queryset) == [project]
    refused = client.post(ADD_ENDPOINT, {"project": theirs.project.pk, "url": PUBLIC_URL, "event_types": [PUBLISHED]})
    assert "Select a valid choice" in refused.content.decode()
    assert client.post(endpoint_url(mine), edit(mine, description="Ours")).status_code == 302
    mine.refresh_from_db()
    assert mine.description == "Ours"


def test_a_staff_auditor_reads_endpoints_and_changes_nothing(client, staff):
    endpoint = WebhookEndpointFactory(url=PUBLIC_URL)
    delivery = webhook_endpoint_test(endpoint=endpoint, sent_by=None)
    auditor = staff(grant(Role.AUDITOR, on=endpoint.project).user, *WEBHOOK_PERMISSIONS)
    client.force_login(auditor)

    page = client.get(endpoint_url(endpoint))

    assert listed(client.get(ENDPOINTS)) == [endpoint]
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.post(endpoint_url(endpoint), edit(endpoint, description="Theirs")).status_code == 403
    assert client.post(endpoint_url(endpoint, "delete"), {"post": "yes"}).status_code == 403
    rotated = act(client, ENDPOINTS, "rotate_secrets", [endpoint])
    assert "takes the maintainer role on project" in " ".join(messages_of(rotated))
    resent = act(client, DELIVERIES, "resend", [delivery])
    assert "takes the maintainer role on project" in " ".join(messages_of(resent))
    assert listed(client.get(DELIVERIES)) == [delivery]
    assert listed(client.get(EVENTS)) == [delivery.event]
    endpoint.refresh_from_db()
    assert endpoint.description == ""
    assert AuditEntry.objects.filter(action__startswith="webhook_").count() == 1  # its creation


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR, Role.REVIEWER])
def test_other_roles_see_no_webhooks(client, role, staff):
    endpoint = WebhookEndpointFactory(url=PUBLIC_URL)
    delivery = webhook_endpoint_test(endpoint=endpoint, sent_by=None)
    client.force_login(staff(grant(role, on=endpoint.project).user, *WEBHOOK_PERMISSIONS))

    assert listed(client.get(ENDPOINTS)) == []
    assert listed(client.get(DELIVERIES)) == []
    assert listed(client.get(EVENTS)) == []
    assert client.get(delivery_url(delivery)).status_code == 302
    assert list(client.get(ADD_ENDPOINT).context["adminform"].form.fields["project"].queryset) == []


# Deliveries and events --------------------------------------------------------------------------------------------


def test_a_delivery_page_shows_its_attempts_and_payload_read_only(
    admin_client, receiver, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    receiver.answers.append(Answer(status=500, body=b"database is down"))
    publish(artifact, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()

    page = admin_client.get(delivery_url(delivery))

    assert page.status_code == 200
    body = page.content.decode()
    assert "database is down" in body
    assert "Answered 500." in body
    assert delivery.event.public_id in body
    assert "<pre>{\n  &quot;actor&quot;:" in body  # the payload, pretty-printed
    assert 'name="_save"' not in body
    assert admin_client.post(delivery_url(delivery), {"state": "succeeded"}).status_code == 403
    assert admin_client.get(reverse("admin:webhooks_webhookdelivery_add")).status_code == 403
    assert admin_client.post(delivery_url(delivery, "delete"), {"post": "yes"}).status_code == 403
    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.PENDING


def test_the_resend_action_delivers_the_same_webhook_id_again(
    admin_client, receiver, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    endpoint = WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    publish(artifact, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = act(admin_client, DELIVERIES, "resend", [delivery])

    assert f"Re-sending 1 delivery(ies): {delivery.event.public_id}." in messages_of(response)
    first, again = receiver.wait_for(2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    Webhook(endpoint.secret).verify(again.body, again.headers)
    assert list(delivery.attempts.values_list("number", "manual")) == [(1, False), (2, True)]
    assert AuditEntry.objects.get(action="webhook_delivery.resent").actor_label == "admin"


def test_a_resend_to_a_disabled_endpoint_is_reported_as_an_error(
    admin_client, receiver, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    receiver.answers.append(Answer(status=410))
    publish(artifact, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()

    response = act(admin_client, DELIVERIES, "resend", [delivery])

    [error] = [m for m in response.context["messages"] if m.level_tag == "error"]
    assert "is disabled" in str(error)
    assert not AuditEntry.objects.filter(action="webhook_delivery.resent").exists()


def test_an_event_page_shows_its_body_and_changes_nothing(admin_client):
    delivery = webhook_endpoint_test(endpoint=WebhookEndpointFactory(url=PUBLIC_URL), sent_by=None)
    event_url = reverse("admin:core_event_change", args=[delivery.event.pk])

    page = admin_client.get(event_url)

    assert page.status_code == 200
    assert "&quot;type&quot;: &quot;webhook.test&quot;" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert admin_client.get(reverse("admin:core_event_add")).status_code == 403
    delete = reverse("admin:core_event_delete", args=[delivery.event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Event.objects.count() == 1


# Cost ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [ENDPOINTS, DELIVERIES, EVENTS])
@pytest.mark.parametrize("superuser", [False, True], ids=["staff maintainer", "superuser"])
def test_the_lists_cost_the_same_queries_for_1_row_as_for_10(client, url, superuser, staff):
    project = ProjectFactory()
    user = staff(UserFactory(is_superuser=superuser), *WEBHOOK_PERMISSIONS)
    grant(Role.MAINTAINER, on=project, user=user)
    client.force_login(user)

    def add_endpoint() -> None:
        endpoint = WebhookEndpointFactory(project=ProjectFactory() if superuser else project, url=PUBLIC_URL)
        webhook_endpoint_test(endpoint=endpoint, sent_by=None)

    add_endpoint()
    few = queries_for(client, url)
    for _ in range(9):
        add_endpoint()
    many = queries_for(client, url)

    assert len(listed(client.get(url))) == 10
    assert many == few
