"""`GET /api/v1/me/`: the caller as the server sees them, roles through groups included, and nothing of others."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from artifacts.access.roles import Role
from governance.access.services import api_token_issue
from tests.artifacts.factories import ArtifactFactory, ProjectFactory, UserFactory, grant
from tests.schema_contract import assert_conforms

pytestmark = pytest.mark.django_db


def test_me_names_the_user_the_token_in_use_and_the_roles_held_by_project(client_with):
    dana = UserFactory(username="dana")
    fraud, churn = ProjectFactory(slug="fraud"), ProjectFactory(slug="churn")
    grant(Role.CONTRIBUTOR, on=fraud, user=dana)
    grant(Role.MAINTAINER, on=ArtifactFactory(project=churn, name="scorer"), user=dana)
    reviewers = Group.objects.create(name="reviewers")
    dana.groups.add(reviewers)
    grant(Role.REVIEWER, on=fraud, group=reviewers)
    grant(Role.VIEWER, on=ProjectFactory(slug="elsewhere"))  # someone else's role
    token, plaintext = api_token_issue(user=dana, name="laptop", lifetime=timedelta(days=7))

    response = client_with(plaintext).get("/api/v1/me/")

    assert response.status_code == 200
    assert_conforms(response, "GET", "/api/v1/me/")
    me = response.json()
    assert (me["username"], me["service_account"], me["superuser"]) == ("dana", False, False)
    assert me["token"]["name"] == "laptop"
    assert me["token"]["prefix"] == token.prefix
    assert me["token"]["expires_at"].startswith(token.expires_at.strftime("%Y-%m-%dT%H:%M"))
    assert me["projects"] == [
        {"project": "churn", "roles": [{"role": "maintainer", "artifact": "scorer", "group": None}]},
        {
            "project": "fraud",
            "roles": [
                {"role": "contributor", "artifact": None, "group": None},
                {"role": "reviewer", "artifact": None, "group": "reviewers"},
            ],
        },
    ]


def test_a_service_account_is_named_as_one(client_with):
    pipeline = UserFactory(username="nightly", password=None)
    pipeline.set_unusable_password()
    pipeline.save(update_fields=["password"])
    _, plaintext = api_token_issue(user=pipeline, name="ci", lifetime=timedelta(days=1))

    me = client_with(plaintext).get("/api/v1/me/").json()

    assert (me["username"], me["service_account"], me["projects"]) == ("nightly", True, [])


def test_a_portal_session_has_no_token_to_name():
    user = UserFactory()
    session = APIClient()
    session.force_login(user)

    me = session.get("/api/v1/me/").json()

    assert me["username"] == user.username
    assert me["token"] is None


def test_anonymous_callers_are_told_to_authenticate(anonymous_api):
    response = anonymous_api.get("/api/v1/me/")
    assert response.status_code == 401
