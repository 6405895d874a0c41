"""Signing in to the portal: Django's sessions and CSRF, throttled sign-in (django-axes), every attempt in the
audit log, and error pages in the portal's own look."""

import pytest
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.test import Client

from core.models import AuditEntry
from tests.artifacts.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # UserFactory's
LOGIN = "/accounts/login/"


def attempt(client: Client, username: str, password: str, **extra):
    return client.post(LOGIN, {"login": username, "password": password, **extra})


def test_every_page_asks_who_you_are_first(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/"


def test_signing_in_opens_a_session_and_records_it(client):
    user = UserFactory()

    response = attempt(client, user.username, PASSWORD)

    assert (response.status_code, response.url) == (302, "/")
    assert client.get("/").status_code == 200
    assert AuditEntry.objects.filter(action="user.logged_in", actor_user_id=user.pk).exists()


def test_a_next_address_on_another_host_is_not_followed(client):
    user = UserFactory()

    response = attempt(client, user.username, PASSWORD, next="https://evil.example/")

    assert response.url == "/"


def test_the_sign_in_form_needs_its_csrf_token():
    user = UserFactory()
    client = Client(enforce_csrf_checks=True)

    assert attempt(client, user.username, PASSWORD).status_code == 403


def test_repeated_failures_lock_the_username_out_from_that_address_even_with_the_right_password(client, settings):
    user = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, user.username, "wrong").status_code == 200
    assert attempt(client, user.username, "wrong").status_code == 429  # the failure that reaches the limit

    locked = attempt(client, user.username, PASSWORD)

    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert client.get("/").status_code == 302  # no session was opened
    failures = AuditEntry.objects.filter(action="user.login_failed")
    assert failures.count() >= settings.AXES_FAILURE_LIMIT
    assert all("wrong" not in entry.changes for entry in failures)  # never the password


def test_a_lockout_is_per_username_so_others_still_sign_in(client, settings):
    locked_out, other = UserFactory(), UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, locked_out.username, "wrong")

    assert attempt(client, other.username, PASSWORD).status_code == 302


def test_a_success_before_the_limit_resets_the_count(client, settings):
    user = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, user.username, "wrong")
    attempt(client, user.username, PASSWORD)
    client.post("/accounts/logout/")

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, user.username, "wrong")

    assert attempt(client, user.username, PASSWORD).status_code == 302


def test_the_admin_signs_in_through_the_portals_sign_in(client):
    staff = UserFactory(is_staff=True)

    assert client.get("/admin/").url == "/admin/login/?next=/admin/"
    sent = client.get("/admin/login/?next=/admin/")
    assert (sent.status_code, sent.url) == (302, "/accounts/login/?next=%2Fadmin%2F")
    assert client.post(sent.url, {"login": staff.username, "password": PASSWORD, "next": "/admin/"}).url == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_admin_refuses_a_signed_in_person_who_is_not_staff(client):
    client.force_login(UserFactory())

    assert client.get("/admin/login/?next=/admin/").status_code == 403


def test_nobody_signs_themselves_up(client):
    assert client.get("/accounts/signup/").status_code == 404

    response = client.post("/accounts/signup/", {"username": "newcomer", "password1": "a long passphrase of words"})

    assert response.status_code == 404

    assert not get_user_model().objects.filter(username="newcomer").exists()


def test_signing_out_takes_a_post_and_ends_the_session(client):
    user = UserFactory()
    client.force_login(user)

    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_a_missing_page_answers_404_in_the_portals_look(client):
    client.force_login(UserFactory())

    response = client.get("/no/such/page/")

    assert response.status_code == 404
    assert "Nothing here" in response.content.decode()
    assert "Sign out" in response.content.decode()  # the portal's frame, not Django's bare page


def test_the_server_error_page_stands_alone():
    """Rendered with no request and no database (the error may be the database): no user, no navigation."""
    html = render_to_string("500.html")

    assert "Something went wrong on our side" in html
    assert "portal.css" in html


def test_empty_fields_are_named_beside_them(client):
    response = attempt(client, "", "")

    html = response.content.decode()
    assert 'id="login-error"' in html
    assert 'id="password-error"' in html
    assert "This field is required." in html


def test_an_expired_form_says_so_in_the_portals_look():
    client = Client(enforce_csrf_checks=True)

    response = client.post(LOGIN, {"login": "someone", "password": "whatever"})

    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert "portal.css" in response.content.decode()


def test_a_nul_in_a_search_is_dropped_not_sent_to_the_database(client):
    client.force_login(UserFactory())

    assert client.get("/search/", {"q": "fraud\x00"}).status_code == 200
    assert client.get("/models/", {"q": "a\x00b"}).status_code == 200
