"""Webhooks over the API: endpoints registered behind the address guard with their secret shown once, changed and
removed on the record, secrets rotated with an overlap, deliveries followed attempt by attempt and re-sent by hand,
the event catalogue, and who may do which (maintainers manage, auditors read, everyone else sees nothing)."""

import json
from datetime import datetime, timedelta

import jsonschema
import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from artifacts.access.roles import Role
from core.events import SUBSCRIBABLE_TYPES, EventType, payload_schema
from core.models import AuditEntry
from governance.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory, UserFactory, grant
from tests.governance.factories import WebhookEndpointFactory
from tests.pages import queries_for
from tests.webhook_receiver import Answer

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/webhooks/endpoints/"
DELIVERIES = "/api/v1/webhooks/deliveries/"
EVENT_TYPES = "/api/v1/webhooks/event-types/"
# A public address written as a literal, so registering it needs no DNS; nothing is ever sent to it (deliveries
# run after commit, and these tests' transactions never commit unless a test captures the callbacks).
PUBLIC_URL = "https://93.184.215.14/hooks"
PUBLISHED = "artifact_version.published"


def endpoint_url(endpoint: WebhookEndpoint, action: str = "") -> str:
    return f"{ENDPOINTS}{endpoint.pk}/{action + '/' if action else ''}"


def delivery_url(delivery: WebhookDelivery, action: str = "") -> str:
    return f"{DELIVERIES}{delivery.pk}/{action + '/' if action else ''}"


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def changes_of(entry: AuditEntry) -> dict:
    return json.loads(entry.changes)


def publish(artifact, capture) -> None:
    """Publish a version of `artifact` and run the deliveries it causes, as after a real commit."""
    with capture(execute=True):
        ArtifactVersionFactory(artifact=artifact)


def create(client, project, url: str, event_types: list[str] | None = None, **extra):
    body = {"project": project.slug, "url": url, "event_types": [PUBLISHED] if event_types is None else event_types}
    return client.post(ENDPOINTS, {**body, **extra}, format="json")


# Registering endpoints ------------------------------------------------------------------------------------------


def test_creating_an_endpoint_shows_its_secret_once_and_only_its_prefix_afterwards(api):
    project = ProjectFactory()

    created = create(api, project, PUBLIC_URL, description="CI hooks")

    assert created.status_code == 201, created.content
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert body["secret_hints"] == [f"{secret[:10]}…"]
    assert (body["project"], body["url"], body["event_types"], body["is_active"]) == (
        project.slug,
        PUBLIC_URL,
        [PUBLISHED],
        True,
    )
    endpoint = WebhookEndpoint.objects.get()
    detail, listing = api.get(endpoint_url(endpoint)), api.get(ENDPOINTS)
    for response in (detail, listing):
        assert response.status_code == 200
        assert secret not in response.content.decode()
        assert secret[10:20] not in response.content.decode()
    assert "secret" not in detail.json()
    assert detail.json()["secret_hints"] == [f"{secret[:10]}…"]
    created_entry = AuditEntry.objects.get(action="webhook_endpoint.created")
    assert secret not in created_entry.changes


def test_the_secret_shown_at_creation_verifies_the_deliveries(api, receiver, django_capture_on_commit_callbacks):
    artifact = ArtifactFactory()
    secret = create(api, artifact.project, receiver.url).json()["secret"]

    publish(artifact, django_capture_on_commit_callbacks)

    [received] = receiver.wait_for(1)
    payload = Webhook(secret).verify(received.body, received.headers)
    assert payload["type"] == PUBLISHED


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hooks", "127.0.0.1 is a loopback address"),
        ("https://[::1]/hooks", "::1 is a loopback address"),
        ("https://10.1.2.3/hooks", "10.1.2.3 is a private address"),
        ("https://192.168.0.10/hooks", "192.168.0.10 is a private address"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("https://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
        ("http://93.184.215.14/hooks", "a public address: use https://"),
        ("https://user:pw@93.184.215.14/hooks", "may not carry a user name or password"),
    ],
)
def test_destinations_the_address_guard_refuses_are_refused_on_the_url_field(api, settings, url, reason):
    settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = []

    response = create(api, ProjectFactory(), url)

    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "url"
    assert reason in body["detail"]
    assert not WebhookEndpoint.objects.exists()


def test_a_receiver_on_loopback_is_refused_when_no_network_is_allowed(api, receiver, settings):
    project = ProjectFactory()
    settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = []

    refused = create(api, project, receiver.url)

    assert refused.status_code == 400
    assert "PROVENANT_WEBHOOK_ALLOWED_NETWORKS" in refused.json()["detail"]


def test_unknown_event_types_are_refused_naming_the_known_ones(api):
    response = create(api, ProjectFactory(), PUBLIC_URL, [PUBLISHED, "artifact.exploded", "webhook.test"])

    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "event_types"
    assert "'artifact.exploded'" in body["detail"]
    assert "'webhook.test'" in body["detail"]  # sent by hand to one endpoint, never subscribed to
    assert f"Known types: {', '.join(SUBSCRIBABLE_TYPES)}." in body["detail"]
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_subscribed_to_nothing_is_refused(api):
    response = create(api, ProjectFactory(), PUBLIC_URL, [])

    assert response.status_code == 400
    assert response.json()["field"] == "event_types"
    assert "Subscribe to at least one event type" in response.json()["detail"]


# Changing and removing them --------------------------------------------------------------------------------------


def test_a_change_is_recorded_with_what_it_was_and_what_it_became(api):
    endpoint = WebhookEndpointFactory(url=PUBLIC_URL)

    response = api.patch(
        endpoint_url(endpoint), {"description": "Deploys", "event_types": ["blob.corrupt", PUBLISHED]}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["event_types"] == ["artifact_version.published", "blob.corrupt"]
    entry = AuditEntry.objects.get(action="webhook_endpoint.updated")
    assert entry.actor_user_id == api.user.pk
    assert changes_of(entry) == {
        "description": ["", "Deploys"],
        "event_types": [[PUBLISHED], [PUBLISHED, "blob.corrupt"]],
    }


def test_a_change_of_url_passes_the_address_guard_too(api, settings):
    endpoint = WebhookEndpointFactory(url=PUBLIC_URL)
    settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = []

    response = api.patch(endpoint_url(endpoint), {"url": "https://10.0.0.1/hooks"}, format="json")

    assert response.status_code == 400
    assert response.json()["field"] == "url"
    endpoint.refresh_from_db()
    assert endpoint.url == PUBLIC_URL
    assert not AuditEntry.objects.filter(action="webhook_endpoint.updated").exists()


def test_switching_a_disabled_endpoint_back_on_clears_why_it_was_disabled(
    api, receiver, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    endpoint = WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    receiver.answers.append(Answer(status=410))
    publish(artifact, django_capture_on_commit_callbacks)
    disabled = api.get(endpoint_url(endpoint)).json()
    assert disabled["is_active"] is False
    assert "410 Gone" in disabled["disabled_reason"]

    response = api.patch(endpoint_url(endpoint), {"is_active": True}, format="json")

    body = response.json()
    assert (body["is_active"], body["disabled_reason"], body["disabled_at"], body["failing_since"]) == (
        True,
        "",
        None,
        None,
    )
    entry = AuditEntry.objects.get(action="webhook_endpoint.updated")
    assert changes_of(entry) == {"is_active": [False, True]}


def test_deleting_an_endpoint_answers_204_and_is_recorded(api):
    endpoint = WebhookEndpointFactory(url=PUBLIC_URL)

    response = api.delete(endpoint_url(endpoint))

    assert response.status_code == 204
    assert api.get(endpoint_url(endpoint)).status_code == 404
    assert endpoint.pk not in [row["id"] for row in api.get("/api/v1/webhooks/endpoints/").json()["results"]]
    kept = WebhookEndpoint.objects.get(pk=endpoint.pk)  # switched off, its deliveries kept as a record
    assert (kept.is_active, kept.deleted_at is not None, kept.secrets.count()) == (False, True, 0)
    entry = AuditEntry.objects.get(action="webhook_endpoint.deleted")
    assert entry.actor_user_id == api.user.pk
    assert changes_of(entry)["url"] == PUBLIC_URL


def test_other_methods_are_refused_with_a_pointer_to_patch(api):
    endpoint = WebhookEndpointFactory(url=PUBLIC_URL)

    response = api.put(endpoint_url(endpoint), {"url": PUBLIC_URL}, format="json")

    assert response.status_code == 405
    assert "PATCH" in response.json()["detail"]


# Secrets and test events ------------------------------------------------------------------------------------------


def test_a_rotation_gives_a_new_secret_and_both_sign_during_the_overlap(
    api, receiver, django_capture_on_commit_callbacks
):
    artifact = ArtifactFactory()
    endpoint = WebhookEndpointFactory(project=artifact.project, url=receiver.url)

    response = api.post(endpoint_url(endpoint, "rotate-secret"), {"overlap_hours": 2}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    new = body["secret"]
    assert new.startswith("whsec_")
    assert new != endpoint.secret
    until = datetime.fromisoformat(body["previous_secret_signs_until"])
    assert timezone.now() + timedelta(minutes=119) < until <= timezone.now() + timedelta(hours=2)
    assert body["endpoint"]["secret_hints"] == [f"{new[:10]}…", f"{endpoint.secret[:10]}…"]
    assert new not in api.get(endpoint_url(endpoint)).content.decode()
    assert AuditEntry.objects.filter(action="webhook_endpoint.secret_rotated").count() == 1

    publish(artifact, django_capture_on_commit_callbacks)

    [received] = receiver.wait_for(1)
    Webhook(endpoint.secret).verify(received.body, received.headers)
    Webhook(new).verify(received.body, received.headers)


def test_a_rotation_longer_than_30_days_is_refused(api):
    endpoint = WebhookEndpointFactory(url=PUBLIC_URL)

    response = api.post(endpoint_url(endpoint, "rotate-secret"), {"overlap_hours": 721}, format="json")

    assert response.status_code == 400
    assert "overlap_hours" in response.json()


def test_a_test_event_goes_to_the_endpoint_signed_and_valid(api, receiver, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpointFactory(url=receiver.url)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(endpoint_url(endpoint, "test"))

    assert response.status_code == 202, response.content
    assert response.json()["event_type"] == "webhook.test"
    [received] = receiver.wait_for(1)
    payload = Webhook(endpoint.secret).verify(received.body, received.headers)
    jsonschema.validate(payload, payload_schema(EventType.WEBHOOK_TEST))
    assert payload["data"]["endpoint"] == {"id": endpoint.pk, "url": receiver.url}
    assert received.headers["webhook-id"] == response.json()["webhook_id"]
    delivery = api.get(f"{DELIVERIES}{response.json()['id']}/").json()
    assert delivery["state"] == "succeeded"


# Deliveries -------------------------------------------------------------------------------------------------------


def test_a_delivery_shows_its_payload_and_every_attempt(api, receiver, django_capture_on_commit_callbacks):
    artifact = ArtifactFactory()
    endpoint = WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    receiver.answers.append(Answer(status=500, body=b"database is down"))
    publish(artifact, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()

    body = api.get(delivery_url(delivery)).json()

    [received] = receiver.wait_for(1)
    assert body["payload"] == json.loads(received.body)
    assert body["webhook_id"] == received.headers["webhook-id"]
    assert (body["endpoint"], body["endpoint_url"], body["event_type"]) == (endpoint.pk, receiver.url, PUBLISHED)
    assert (body["state"], body["attempt_count"], body["last_status_code"]) == ("pending", 1, 500)
    [attempt] = body["attempts"]
    assert attempt["number"] == 1
    assert attempt["manual"] is False
    assert (attempt["outcome"], attempt["status_code"]) == ("failed", 500)
    assert attempt["response_excerpt"] == "database is down"
    assert attempt["error"] == "Answered 500."
    assert isinstance(attempt["duration_ms"], int)
    assert attempt["started_at"]
    assert "payload" not in results(api.get(DELIVERIES))[0]  # the list stays light


def test_deliveries_are_filtered_by_endpoint_project_state_type_and_webhook_id(
    api, receiver, django_capture_on_commit_callbacks
):
    artifact, elsewhere = ArtifactFactory(), ArtifactFactory()
    first = WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    second = WebhookEndpointFactory(project=elsewhere.project, url=receiver.url)
    receiver.answers.append(Answer(status=500))
    publish(artifact, django_capture_on_commit_callbacks)
    publish(elsewhere, django_capture_on_commit_callbacks)
    failing = WebhookDelivery.objects.get(endpoint=first)
    done = WebhookDelivery.objects.get(endpoint=second)

    def ids(**query) -> list[int]:
        return [item["id"] for item in results(api.get(DELIVERIES, query))]

    assert ids() == [done.pk, failing.pk]
    assert ids(endpoint=first.pk) == [failing.pk]
    assert ids(project=elsewhere.project.slug) == [done.pk]
    assert ids(state="pending") == [failing.pk]
    assert ids(state="succeeded") == [done.pk]
    assert ids(event_type=PUBLISHED) == [done.pk, failing.pk]
    assert ids(event_type="blob.corrupt") == []
    assert ids(webhook_id=failing.event.public_id) == [failing.pk]
    assert api.get(DELIVERIES, {"state": "lost"}).status_code == 400


def test_a_resend_delivers_the_same_webhook_id_again_and_is_recorded(api, receiver, django_capture_on_commit_callbacks):
    artifact = ArtifactFactory()
    endpoint = WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    publish(artifact, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(delivery_url(delivery, "resend"))

    assert response.status_code == 202, response.content
    assert response.json()["state"] == "pending"
    first, again = receiver.wait_for(2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"] == delivery.event.public_id
    Webhook(endpoint.secret).verify(again.body, again.headers)
    attempts = api.get(delivery_url(delivery)).json()["attempts"]
    assert [(a["number"], a["manual"]) for a in attempts] == [(1, False), (2, True)]
    entry = AuditEntry.objects.get(action="webhook_delivery.resent")
    assert entry.actor_user_id == api.user.pk
    assert changes_of(entry)["event"] == delivery.event.public_id


def test_a_delivery_to_a_disabled_endpoint_is_not_resent(api, receiver, django_capture_on_commit_callbacks):
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    receiver.answers.append(Answer(status=410))
    publish(artifact, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()

    response = api.post(delivery_url(delivery, "resend"))

    assert response.status_code == 409
    assert "is disabled" in response.json()["detail"]
    assert "switch it on" in response.json()["detail"]
    assert not AuditEntry.objects.filter(action="webhook_delivery.resent").exists()


# Who may do what -------------------------------------------------------------------------------------------------


@pytest.fixture
def hooked(db):
    """A project with an endpoint and one delivery to it (a test event, never sent: nothing commits)."""
    from governance.webhooks.services import webhook_endpoint_test

    endpoint = WebhookEndpointFactory(url=PUBLIC_URL)
    delivery = webhook_endpoint_test(endpoint=endpoint, sent_by=None)
    return endpoint, delivery


def test_a_maintainer_manages_the_endpoints_of_their_project(api_as, hooked):
    endpoint, delivery = hooked
    client = api_as(grant(Role.MAINTAINER, on=endpoint.project).user)

    assert [item["id"] for item in results(client.get(ENDPOINTS))] == [endpoint.pk]
    assert [item["id"] for item in results(client.get(DELIVERIES))] == [delivery.pk]
    assert create(client, endpoint.project, PUBLIC_URL).status_code == 201
    assert client.patch(endpoint_url(endpoint), {"description": "Ours"}, format="json").status_code == 200
    assert client.post(endpoint_url(endpoint, "rotate-secret"), {}, format="json").status_code == 200
    assert client.post(endpoint_url(endpoint, "test")).status_code == 202
    assert client.post(delivery_url(delivery, "resend")).status_code == 202
    assert client.delete(endpoint_url(endpoint)).status_code == 204


def test_an_auditor_reads_endpoints_and_deliveries_and_changes_nothing(api_as, hooked):
    endpoint, delivery = hooked
    client = api_as(grant(Role.AUDITOR, on=endpoint.project).user)

    assert [item["id"] for item in results(client.get(ENDPOINTS))] == [endpoint.pk]
    assert client.get(endpoint_url(endpoint)).status_code == 200
    assert client.get(delivery_url(delivery)).status_code == 200
    refusals = [
        create(client, endpoint.project, PUBLIC_URL),
        client.patch(endpoint_url(endpoint), {"description": "Theirs"}, format="json"),
        client.post(endpoint_url(endpoint, "rotate-secret"), {}, format="json"),
        client.post(endpoint_url(endpoint, "test")),
        client.post(delivery_url(delivery, "resend")),
        client.delete(endpoint_url(endpoint)),
    ]
    for response in refusals:
        assert response.status_code == 403, response.content
        assert "that needs the maintainer role on the project" in response.json()["detail"]
    assert WebhookEndpoint.objects.count() == 1
    assert (
        not AuditEntry.objects.filter(action__startswith="webhook_").exclude(action="webhook_endpoint.created").exists()
    )


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR, Role.REVIEWER])
def test_other_roles_see_nothing_of_a_projects_webhooks(api_as, hooked, role):
    endpoint, delivery = hooked
    client = api_as(grant(role, on=endpoint.project).user)

    assert results(client.get(ENDPOINTS)) == []
    assert results(client.get(DELIVERIES)) == []
    for url in (endpoint_url(endpoint), delivery_url(delivery)):
        assert client.get(url).status_code == 404
    assert client.patch(endpoint_url(endpoint), {"description": "x"}, format="json").status_code == 404
    assert client.post(endpoint_url(endpoint, "rotate-secret"), {}, format="json").status_code == 404
    assert client.post(delivery_url(delivery, "resend")).status_code == 404
    assert client.delete(endpoint_url(endpoint)).status_code == 404
    refused = create(client, endpoint.project, PUBLIC_URL)
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        f"You may not manage project '{endpoint.project}': that needs the maintainer role on the project."
    )


def test_creating_in_a_project_one_cannot_see_reads_as_a_project_that_does_not_exist(api_as):
    hidden = ProjectFactory(slug="hidden")
    client = api_as(UserFactory())

    response = create(client, hidden, PUBLIC_URL)

    assert response.status_code == 400
    assert response.json() == {"project": ["No project 'hidden'. List projects at /api/v1/projects/."]}


def test_a_superuser_sees_every_projects_webhooks(api, hooked):
    endpoint, delivery = hooked
    other = WebhookEndpointFactory(url=PUBLIC_URL)

    assert {item["id"] for item in results(api.get(ENDPOINTS))} == {endpoint.pk, other.pk}
    assert [item["id"] for item in results(api.get(DELIVERIES))] == [delivery.pk]


def test_endpoints_are_filtered_by_project_and_state(api):
    first, second = WebhookEndpointFactory(url=PUBLIC_URL), WebhookEndpointFactory(url=PUBLIC_URL)
    api.patch(endpoint_url(second), {"is_active": False}, format="json")

    assert [item["id"] for item in results(api.get(ENDPOINTS, {"project": first.project.slug}))] == [first.pk]
    assert [item["id"] for item in results(api.get(ENDPOINTS, {"is_active": "false"}))] == [second.pk]
    assert [item["id"] for item in results(api.get(ENDPOINTS, {"is_active": "true"}))] == [first.pk]


@pytest.mark.parametrize("value", ["-58800", "yes", "True", "1"])
def test_a_state_filter_that_is_not_true_or_false_is_a_400_not_the_whole_list(api, value):
    WebhookEndpointFactory(url=PUBLIC_URL)

    response = api.get(ENDPOINTS, {"is_active": value})

    assert response.status_code == 400
    assert response.json() == {"is_active": [f"Use true or false, not '{value}'."]}


# The event catalogue -----------------------------------------------------------------------------------------


def test_every_event_type_is_listed_with_a_valid_json_schema(api_as):
    response = api_as(UserFactory()).get(EVENT_TYPES)

    assert response.status_code == 200
    types = {item["type"]: item for item in response.json()}
    assert list(types) == list(EventType.values)
    for event_type, item in types.items():
        jsonschema.Draft202012Validator.check_schema(item["schema"])
        assert item["schema"] == payload_schema(event_type)
        assert item["version"] == 1
        assert item["subscribable"] == (event_type in SUBSCRIBABLE_TYPES)
        assert item["description"]
    assert types["webhook.test"]["subscribable"] is False


def test_the_event_catalogue_needs_a_token(anonymous_api):
    assert anonymous_api.get(EVENT_TYPES).status_code == 401


# Cost ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [ENDPOINTS, DELIVERIES])
def test_the_lists_cost_the_same_queries_for_1_row_as_for_10(api_as, url, django_assert_max_num_queries):
    project = ProjectFactory()
    maintainer = grant(Role.MAINTAINER, on=project).user
    client = api_as(maintainer)

    def add_endpoint() -> None:
        from governance.webhooks.services import webhook_endpoint_test, webhook_secret_rotate

        endpoint = WebhookEndpointFactory(project=project, url=PUBLIC_URL, created_by=UserFactory())
        webhook_secret_rotate(endpoint=endpoint, rotated_by=None)  # two live secrets to show hints of
        webhook_endpoint_test(endpoint=endpoint, sent_by=maintainer)

    add_endpoint()
    one = queries_for(client, url)
    for _ in range(9):
        add_endpoint()

    with django_assert_max_num_queries(one):
        assert len(results(client.get(url))) == 10
