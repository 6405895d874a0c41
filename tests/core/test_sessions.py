"""Sessions end on their own (idle and absolute limits) and when the person's credentials or account change."""

import json

import pytest
from django.test import Client

from core.models import AuditEntry
from core.sessions import SEEN_AT, SEEN_RESOLUTION, SIGNED_IN_AT
from tests.artifacts.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # UserFactory's


def signed_in(client: Client, user) -> Client:
    assert client.post("/accounts/login/", {"login": user.username, "password": PASSWORD}).status_code == 302
    return client


def shift_clocks(client: Client, *, signed_in_by: int = 0, seen_by: int = 0) -> None:
    """Moves the session's stamps into the past, as if that many seconds had gone by."""
    session = client.session
    session[SIGNED_IN_AT] -= signed_in_by
    session[SEEN_AT] -= seen_by
    session.save()


def test_signing_in_starts_both_clocks(client):
    signed_in(client, UserFactory())

    assert client.session[SIGNED_IN_AT] == client.session[SEEN_AT]


def test_an_idle_session_ends_and_the_next_page_asks_for_a_sign_in(client, settings):
    user = UserFactory()
    signed_in(client, user)
    shift_clocks(client, seen_by=settings.PROVENANT_SESSION_IDLE_SECONDS)

    response = client.get("/audit/actions/")

    assert (response.status_code, response.url) == (302, "/accounts/login/?next=/audit/actions/")
    assert client.get("/").status_code == 302  # the session is gone, not only this request refused
    entry = AuditEntry.objects.get(action="user.session_expired")
    assert (entry.actor_user_id, json.loads(entry.changes)["reason"]) == (user.pk, "idle")
    assert not AuditEntry.objects.filter(action="user.logged_out").exists()  # the person did not sign out


def test_a_session_in_use_stays_open_through_the_idle_limit(client, settings):
    signed_in(client, UserFactory())
    shift_clocks(client, signed_in_by=settings.PROVENANT_SESSION_IDLE_SECONDS * 2, seen_by=SEEN_RESOLUTION)

    assert client.get("/").status_code == 200
    assert client.get("/").status_code == 200  # the request above moved the last-seen time forward


def test_a_busy_session_still_ends_at_the_absolute_limit(client, settings):
    signed_in(client, UserFactory())
    shift_clocks(client, signed_in_by=settings.PROVENANT_SESSION_ABSOLUTE_SECONDS)

    assert client.get("/").status_code == 302
    assert json.loads(AuditEntry.objects.get(action="user.session_expired").changes)["reason"] == "absolute"


def test_an_ended_session_cannot_call_the_api_either(client, settings):
    signed_in(client, UserFactory())
    shift_clocks(client, seen_by=settings.PROVENANT_SESSION_IDLE_SECONDS)

    assert client.get("/api/v1/projects/").status_code in (401, 403)


def test_the_admin_session_ends_like_the_portals(client, settings):
    signed_in(client, UserFactory(is_staff=True, is_superuser=True))
    assert client.get("/admin/").status_code == 200
    shift_clocks(client, seen_by=settings.PROVENANT_SESSION_IDLE_SECONDS)

    assert client.get("/admin/").status_code == 302


def test_signing_in_again_restarts_the_absolute_clock(client, settings):
    user = UserFactory()
    signed_in(client, user)
    shift_clocks(client, signed_in_by=settings.PROVENANT_SESSION_ABSOLUTE_SECONDS - 10)

    client.force_login(user)  # the same person again, in the same browser: Django keeps the session's data
    shift_clocks(client, signed_in_by=20)

    assert client.get("/").status_code == 200


def test_a_password_change_ends_the_persons_other_sessions(client):
    user = UserFactory()
    elsewhere = signed_in(Client(), user)
    signed_in(client, user)

    user.set_password("a new and different passphrase")
    user.save()

    assert elsewhere.get("/").status_code == 302


def test_deactivating_a_person_ends_their_sessions_at_the_next_request(client):
    user = UserFactory()
    signed_in(client, user)

    user.is_active = False
    user.save()

    assert client.get("/").status_code == 302
    assert client.get("/api/v1/projects/").status_code in (401, 403)
