"""Service accounts and scoped tokens: issued, listed and revoked by their owners and maintainers through the API
and the portal, used from an address that is recorded, refused password sign-in, and reviewed like anyone."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from artifacts.access.roles import Role, Scope
from core.models.audit import AuditEntry
from governance.access.models import AccessReviewItem, ApiToken
from governance.access.services import api_token_issue, campaign_open, service_account_create
from tests.artifacts.factories import ProjectFactory, UserFactory, grant

pytestmark = pytest.mark.django_db


def bearer(plaintext: str, **extra) -> APIClient:
    client = APIClient(**extra)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def issue(user, scope=Scope.ADMIN, project=None) -> str:
    return api_token_issue(user=user, name="t", lifetime=timedelta(days=1), scope=scope, project=project)[1]


def expires(days: int = 30) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat()


@pytest.fixture
def pipeline():
    """A project with a maintainer, and a service account it owns holding the contributor role on it."""
    project = ProjectFactory(slug="fraud")
    maintainer = grant(Role.MAINTAINER, on=project).user
    account = UserFactory(username="nightly")
    service_account_create(user=account, project=project)
    grant(Role.CONTRIBUTOR, on=project, user=account)
    return project, maintainer, account


def test_a_maintainer_issues_a_scoped_token_for_the_projects_service_account_shown_once(pipeline):
    _, maintainer, _ = pipeline
    body = {
        "name": "nightly-training",
        "scope": "write",
        "project": "fraud",
        "user": "nightly",
        "expires_at": expires(),
    }

    issued = bearer(issue(maintainer)).post(reverse("api:apitoken-list"), body, format="json")

    assert issued.status_code == 201, issued.content
    answer = issued.json()
    assert (answer["user"], answer["scope"], answer["project"], answer["service_account"]) == (
        "nightly",
        "write",
        "fraud",
        True,
    )
    token = ApiToken.objects.get(pk=answer["id"])
    assert answer["token"].startswith(token.prefix)
    assert token.key_hash != answer["token"]
    entry = AuditEntry.objects.filter(action="api_token.issued").latest("seq")
    changes = json.loads(entry.changes) if isinstance(entry.changes, str) else entry.changes
    assert changes["scope"] == "write"
    assert answer["token"] not in str(entry.changes)
    assert "token" not in bearer(issue(maintainer)).get(reverse("api:apitoken-detail", kwargs={"pk": token.pk})).json()
    # The pipeline publishes with it, and is refused managing the project.
    client = bearer(answer["token"])
    assert client.post(reverse("api:dataset-list"), {"project": "fraud", "name": "d"}, format="json").status_code == 201
    assert (
        client.patch(reverse("api:project-detail", kwargs={"slug": "fraud"}), {"description": "x"}).status_code == 403
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scope": "read"}, "expires_at"),
        ({"name": "x", "scope": "read", "expires_at": expires(400)}, "expires_at"),
        ({"name": "x", "scope": "read", "expires_at": expires(-1)}, "expires_at"),
        ({"name": "x", "scope": "owner", "expires_at": expires()}, "scope"),
        ({"name": "x", "scope": "read", "expires_at": expires(), "project": "nowhere"}, "project"),
        ({"name": "x", "scope": "read", "expires_at": expires(), "user": "someone-else"}, "user"),
        ({"name": "x", "scope": "read", "expires_at": expires(), "user": "no-such-user"}, "user"),
    ],
)
def test_bad_issues_are_refused_with_the_field_named_and_nothing_issued(body, field):
    UserFactory(username="someone-else")
    person = UserFactory()
    client = bearer(issue(person))
    before = ApiToken.objects.count()

    response = client.post(reverse("api:apitoken-list"), body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json() or response.json().get("field") == field, response.json()
    assert ApiToken.objects.count() == before


def test_tokens_are_listed_to_owners_and_maintainers_and_revoked_by_them(pipeline):
    project, maintainer, account = pipeline
    own, _ = api_token_issue(user=maintainer, name="mine", lifetime=timedelta(days=1))
    theirs, _ = api_token_issue(user=account, name="nightly", lifetime=timedelta(days=1))
    stranger, _ = api_token_issue(user=UserFactory(), name="stranger", lifetime=timedelta(days=1))
    client = bearer(issue(maintainer))

    listed = {row["name"] for row in client.get(reverse("api:apitoken-list")).json()}
    assert {"mine", "nightly"} <= listed
    assert "stranger" not in listed
    assert client.get(reverse("api:apitoken-detail", kwargs={"pk": stranger.pk})).status_code == 404

    revoked = client.post(reverse("api:apitoken-revoke", kwargs={"pk": theirs.pk}))
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert client.post(reverse("api:apitoken-revoke", kwargs={"pk": theirs.pk})).status_code == 409
    # A contributor of the project manages no service account's tokens.
    contributor = bearer(issue(grant(Role.CONTRIBUTOR, on=project).user))
    assert contributor.get(reverse("api:apitoken-detail", kwargs={"pk": own.pk})).status_code == 404


def test_a_token_records_when_and_from_where_it_was_last_used():
    person = UserFactory()
    plaintext = issue(person)

    bearer(plaintext, REMOTE_ADDR="203.0.113.9").get(reverse("api:me"))

    token = ApiToken.objects.get(user=person)
    assert token.last_used_ip == "203.0.113.9"
    assert token.last_used_at is not None


def test_me_names_the_tokens_scope_and_project(pipeline):
    project, maintainer, _ = pipeline
    me = bearer(issue(maintainer, Scope.READ, project)).get(reverse("api:me")).json()
    assert (me["token"]["scope"], me["token"]["project"]) == ("read", "fraud")


def test_a_service_account_cannot_sign_in_with_a_password_even_if_given_one(pipeline):
    _, _, account = pipeline
    account.set_password("a-long-enough-password")
    account.save()

    signing_in = Client()
    answer = signing_in.post("/accounts/login/", {"username": "nightly", "password": "a-long-enough-password"})
    assert answer.status_code == 200  # the form again, with its error: no session
    assert "_auth_user_id" not in signing_in.session
    browser = Client()
    browser.force_login(account)  # a session it might hold is not restored either
    assert browser.get(reverse("portal:tokens")).status_code == 302
    me = bearer(issue(account)).get(reverse("api:me")).json()
    assert me["service_account"] is True


def test_a_service_accounts_grants_are_reviewed_like_anyones(pipeline):
    project, _, _ = pipeline

    campaign = campaign_open(project=project, due_at=timezone.now() + timedelta(days=7), opened_by=None)

    reviewed = AccessReviewItem.objects.get(campaign=campaign, grantee_user__username="nightly")
    assert reviewed.role == Role.CONTRIBUTOR
    assert reviewed.grantee_label == "service account nightly"


def test_the_portal_lists_and_revokes_tokens_with_a_post(pipeline):
    _, maintainer, account = pipeline
    theirs, _ = api_token_issue(user=account, name="nightly-training", lifetime=timedelta(days=1))
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(maintainer)

    page = browser.get(reverse("portal:tokens"))
    assert page.status_code == 200
    assert "nightly-training" in page.content.decode()
    assert theirs.prefix in page.content.decode()
    url = reverse("portal:token-revoke", kwargs={"pk": theirs.pk})
    assert browser.post(url).status_code == 403  # no CSRF token
    assert browser.get(url).status_code == 405
    csrf = browser.cookies["csrftoken"].value
    assert browser.post(url, {"csrfmiddlewaretoken": csrf}).status_code == 302
    theirs.refresh_from_db()
    assert theirs.is_revoked
    # Someone else's token is not found.
    other, _ = api_token_issue(user=UserFactory(), name="other", lifetime=timedelta(days=1))
    assert (
        browser.post(reverse("portal:token-revoke", kwargs={"pk": other.pk}), {"csrfmiddlewaretoken": csrf}).status_code
        == 404
    )
