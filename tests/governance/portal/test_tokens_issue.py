"""Issuing a token from the portal's Tokens page: a POST with the CSRF token, for oneself or (a maintainer) for a
service account of one's project; the secret is on the answer to the POST alone, never again."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from artifacts.access.roles import Role
from core.audit.actions import AuditAction
from core.models.audit import AuditEntry
from governance.access.models import ApiToken
from governance.access.services import service_account_create
from tests.artifacts.factories import ProjectFactory, UserFactory, grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def maintainer_browser():
    project = ProjectFactory(slug="fraud")
    maintainer = grant(Role.MAINTAINER, on=project).user
    account = UserFactory(username="nightly")
    service_account_create(user=account, project=project)
    grant(Role.CONTRIBUTOR, on=project, user=account)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(maintainer)
    browser.get(reverse("portal:tokens"))  # sets the CSRF cookie, as the page a person submits from
    return browser, maintainer, account


def form(browser: Client, **fields) -> dict:
    return {
        "csrfmiddlewaretoken": browser.cookies["csrftoken"].value,
        "name": "nightly-training",
        "scope": "write",
        "expires_on": (timezone.localdate() + timedelta(days=30)).isoformat(),
        **fields,
    }


def test_a_maintainer_issues_a_service_accounts_token_whose_secret_is_shown_once(maintainer_browser):
    browser, maintainer, account = maintainer_browser
    page = browser.get(reverse("portal:tokens")).content.decode()
    assert 'action="/tokens/issue/"' in page or reverse("portal:token-issue") in page
    assert "nightly (service account)" in page

    answer = browser.post(reverse("portal:token-issue"), form(browser, user="nightly", project="fraud"))

    assert answer.status_code == 200
    assert "no-store" in answer["Cache-Control"]
    token = ApiToken.objects.get(user=account)
    assert (token.scope, token.project.slug, token.name) == ("write", "fraud", "nightly-training")
    html = answer.content.decode()
    start = html.index('id="token-secret">') + len('id="token-secret">')
    secret = html[start : html.index("<", start)]
    assert secret.startswith(token.prefix)
    entry = AuditEntry.objects.get(action=AuditAction.API_TOKEN_ISSUED)
    assert entry.actor_label == maintainer.get_username()
    # The secret works, and no page shows it again.
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get(reverse("api:me")).json()["username"] == "nightly"
    assert secret not in browser.get(reverse("portal:tokens")).content.decode()
    assert token.prefix in browser.get(reverse("portal:tokens")).content.decode()


def test_a_person_issues_their_own_token(maintainer_browser):
    browser, maintainer, _ = maintainer_browser
    answer = browser.post(reverse("portal:token-issue"), form(browser, scope="read"))
    assert answer.status_code == 200
    token = ApiToken.objects.get(user=maintainer)
    assert (token.scope, token.project) == ("read", None)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"expires_on": ""}, "every token does"),
        ({"expires_on": (timezone.localdate() + timedelta(days=400)).isoformat()}, "within 366 days"),
        ({"scope": "root"}, "Select a valid choice"),
        ({"user": "someone-else"}, "Select a valid choice"),
        ({"project": "not-a-project"}, "Select a valid choice"),
        ({"name": ""}, "required"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_issues_nothing(maintainer_browser, fields, says):
    browser, _, _ = maintainer_browser
    answer = browser.post(reverse("portal:token-issue"), form(browser, **fields))
    assert answer.status_code == 400
    assert says in answer.content.decode()
    assert not ApiToken.objects.exists()


def test_issuing_needs_the_csrf_token_and_a_post(maintainer_browser):
    browser, _, _ = maintainer_browser
    fields = form(browser)
    del fields["csrfmiddlewaretoken"]
    assert browser.post(reverse("portal:token-issue"), fields).status_code == 403
    assert browser.get(reverse("portal:token-issue")).status_code == 405
    assert not ApiToken.objects.exists()


def test_a_person_cannot_issue_for_a_service_account_of_a_project_they_do_not_maintain(maintainer_browser):
    _, _, _ = maintainer_browser
    contributor = grant(Role.CONTRIBUTOR, on=ProjectFactory(slug="other")).user
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(contributor)
    page = browser.get(reverse("portal:tokens")).content.decode()
    assert "nightly (service account)" not in page
    answer = browser.post(reverse("portal:token-issue"), form(browser, user="nightly"))
    assert answer.status_code == 400
    assert not ApiToken.objects.exists()
