"""Bearer tokens: stored hashed, refused when unknown, revoked, expired or their user is inactive."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.errors import Conflict, InvalidInput
from governance.access.models import ApiToken
from governance.access.services import api_token_issue, api_token_revoke, hash_token
from tests.artifacts.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_issued_token_authenticates_and_only_its_hash_is_stored(user, client_with):
    _, plaintext = api_token_issue(user=user, name="ci", lifetime=timedelta(days=30))

    assert client_with(plaintext).get("/api/v1/projects/").status_code == 200
    stored = ApiToken.objects.get()
    assert stored.key_hash == hash_token(plaintext)
    assert plaintext not in str(ApiToken.objects.values_list().get())
    assert plaintext.startswith(stored.prefix)
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_missing_credentials_get_a_401_with_the_scheme_to_use():
    response = APIClient().get("/api/v1/projects/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_token_is_a_401(client_with):
    response = client_with("prv_not-a-real-token").get("/api/v1/projects/")
    assert response.status_code == 401
    assert "Unknown token" in response.json()["detail"]


def test_revoked_token_is_a_401(user, client_with):
    token, plaintext = api_token_issue(user=user, name="ci", lifetime=timedelta(days=1))
    api_token_revoke(token=token)
    response = client_with(plaintext).get("/api/v1/projects/")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_revoking_twice_says_so(user):
    token, _ = api_token_issue(user=user, name="ci", lifetime=timedelta(days=1))
    api_token_revoke(token=token)
    with pytest.raises(Conflict, match="already revoked"):
        api_token_revoke(token=token)


def test_expired_token_is_a_401_that_says_when(user, client_with):
    token, plaintext = api_token_issue(user=user, name="ci", lifetime=timedelta(days=1))
    ApiToken.objects.filter(pk=token.pk).update(
        created_at=timezone.now() - timedelta(days=2), expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = client_with(plaintext).get("/api/v1/projects/")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_token_of_a_deactivated_user_is_a_401(user, client_with):
    _, plaintext = api_token_issue(user=user, name="ci", lifetime=timedelta(days=1))
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert client_with(plaintext).get("/api/v1/projects/").status_code == 401


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer \xe9t\xe9"])
def test_malformed_authorization_header_is_a_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/v1/projects/").status_code == 401


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("Token prv_abc", "'Token'"),
        ("Basic dXNlcjpwYXNz", "'Basic'"),
        ("prv_abc", "a single word"),
        ("prv_secret extra", "another scheme"),
        ("", "this header is empty"),
        ("  ", "this header is empty"),
    ],
)
def test_another_authorization_scheme_is_a_401_that_says_bearer_is_expected(header, named):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/projects/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    detail = response.json()["detail"]
    assert "expects 'Authorization: Bearer <token>'" in detail
    assert named in detail
    assert "prv_" not in detail  # a token sent under the wrong scheme is never echoed


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", ""])
def test_a_proxys_basic_or_empty_header_changes_nothing_for_a_signed_in_portal_session(user, header):
    client = APIClient()
    client.force_login(user)
    without = client.get("/api/v1/projects/")
    client.credentials(HTTP_AUTHORIZATION=header)
    with_header = client.get("/api/v1/projects/")
    assert (with_header.status_code, with_header.content) == (without.status_code, without.content)


def test_no_authorization_header_is_a_401_that_asks_for_credentials():
    response = APIClient().get("/api/v1/projects/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "expects" not in response.json()["detail"]


@pytest.mark.parametrize(
    ("name", "lifetime"), [("", timedelta(days=1)), ("ci", timedelta(0)), ("ci", timedelta(days=400))]
)
def test_tokens_need_a_name_and_a_bounded_lifetime(name, lifetime):
    with pytest.raises(InvalidInput):
        api_token_issue(user=UserFactory(), name=name, lifetime=lifetime)


def test_a_token_lives_exactly_its_lifetime(user):
    token, _ = api_token_issue(user=user, name="ci", lifetime=timedelta(days=30))
    token.refresh_from_db()
    assert token.expires_at - token.created_at == timedelta(days=30)
    assert token.status == "active"
