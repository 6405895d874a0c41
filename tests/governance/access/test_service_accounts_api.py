"""Service accounts through the API: a project's maintainers create one (optionally granting it a role), list and
deactivate it, all audited; bad input answers 4xx and writes nothing."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from artifacts.access.roles import Role, Scope
from artifacts.models import RoleGrant
from core.audit.actions import AuditAction
from core.models.audit import AuditEntry
from governance.access.models import ServiceAccount
from governance.access.services import api_token_issue
from tests.artifacts.factories import ProjectFactory, grant

pytestmark = pytest.mark.django_db


def bearer(user, scope=Scope.ADMIN) -> APIClient:
    _, plaintext = api_token_issue(user=user, name="t", lifetime=timedelta(days=1), scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def maintained():
    project = ProjectFactory(slug="fraud")
    return project, grant(Role.MAINTAINER, on=project).user


def test_a_maintainer_creates_grants_lists_and_deactivates_a_service_account(maintained):
    project, maintainer = maintained
    api = bearer(maintainer)

    created = api.post(
        reverse("api:serviceaccount-list"),
        {"username": "nightly", "project": "fraud", "role": "contributor"},
        format="json",
    )

    assert created.status_code == 201, created.content
    assert created.json() | {"id": 0, "created_at": ""} == {
        "id": 0,
        "username": "nightly",
        "project": "fraud",
        "active": True,
        "created_at": "",
    }
    account = ServiceAccount.objects.get(user__username="nightly")
    assert account.project == project
    assert not account.user.has_usable_password()
    assert RoleGrant.objects.filter(user=account.user, project=project, role=Role.CONTRIBUTOR).exists()
    entry = AuditEntry.objects.get(action=AuditAction.SERVICE_ACCOUNT_CREATED)
    assert entry.actor_label == maintainer.get_username()
    assert AuditEntry.objects.filter(action=AuditAction.ROLE_GRANT_GRANTED, actor_label=maintainer.username).exists()
    assert [a["username"] for a in api.get(reverse("api:serviceaccount-list")).json()] == ["nightly"]

    # Its maintainer issues it a token, which works until the account is deactivated.
    body = {
        "name": "ci",
        "scope": "write",
        "user": "nightly",
        "expires_at": (timezone.now() + timedelta(days=1)).isoformat(),
    }
    plaintext = api.post(reverse("api:apitoken-list"), body, format="json").json()["token"]
    pipeline = APIClient()
    pipeline.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert pipeline.get(reverse("api:me")).status_code == 200

    deactivate = reverse("api:serviceaccount-deactivate", kwargs={"pk": account.pk})
    answer = api.post(deactivate)
    assert answer.status_code == 200
    assert answer.json()["active"] is False
    assert pipeline.get(reverse("api:me")).status_code == 401
    entry = AuditEntry.objects.get(action=AuditAction.SERVICE_ACCOUNT_DEACTIVATED)
    assert json.loads(entry.changes)["is_active"] == [True, False]
    assert api.post(deactivate).status_code == 409


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"username": "nightly", "project": "nope"}, 400, "No project 'nope'"),
        ({"username": "has space", "project": "fraud"}, 400, "no valid username"),
        ({"username": "nightly", "project": "fraud", "role": "overlord"}, 400, "role"),
        ({"project": "fraud"}, 400, "username"),
        ({"username": "taken", "project": "fraud"}, 409, "taken"),
    ],
)
def test_bad_input_is_a_4xx_that_writes_nothing(maintained, body, status, says):
    _, maintainer = maintained
    get_user_model().objects.create_user(username="taken")
    api = bearer(maintainer)
    api.get(reverse("api:me"))  # its use is audited now, not during the refused request
    users, entries = get_user_model().objects.count(), AuditEntry.objects.count()

    answer = api.post(reverse("api:serviceaccount-list"), body, format="json")

    assert answer.status_code == status, answer.content
    assert says in answer.content.decode()
    assert (get_user_model().objects.count(), AuditEntry.objects.count()) == (users, entries)
    assert not ServiceAccount.objects.exists()


def test_only_maintainers_through_an_admin_token_create_one(maintained):
    project, maintainer = maintained
    body = {"username": "nightly", "project": "fraud"}
    contributor = grant(Role.CONTRIBUTOR, on=project).user
    refused = bearer(contributor).post(reverse("api:serviceaccount-list"), body, format="json")
    assert refused.status_code == 403
    assert "maintainer role" in refused.json()["detail"]
    assert (
        bearer(maintainer, Scope.WRITE).post(reverse("api:serviceaccount-list"), body, format="json").status_code == 403
    )
    assert not ServiceAccount.objects.exists()
