"""Second factors (django-allauth's TOTP and recovery codes) at the portal's sign-in, who must enrol one, and what the
audit log records of them. Codes are computed as an authenticator app would, from the secret."""

import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from django.core.cache import cache
from django.test import Client

from core.models import AuditEntry
from tests.artifacts.factories import ProjectFactory, UserFactory, grant

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # UserFactory's
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ENROL = "/accounts/2fa/totp/activate/"
SECOND_FACTOR = "/accounts/2fa/authenticate/"


@pytest.fixture(autouse=True)
def _mfa_required(settings):
    settings.PROVENANT_MFA_REQUIRED = True
    cache.clear()  # used TOTP codes and rate limits are kept in the cache


def code(secret: str = SECRET, *, periods_ago: int = 0) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30 - periods_ago))


def password_step(client: Client, user):
    return client.post("/accounts/login/", {"login": user.username, "password": PASSWORD})


def with_totp(user):
    TOTP.activate(user, SECRET)
    return RecoveryCodes.activate(user)


def actions(user) -> list[str]:
    return list(AuditEntry.objects.filter(object_id=str(user.pk)).order_by("pk").values_list("action", flat=True))


def test_a_reviewer_without_a_second_factor_is_sent_to_enrol_until_they_do(client, django_capture_on_commit_callbacks):
    reviewer = grant("reviewer", on=ProjectFactory()).user
    assert password_step(client, reviewer).status_code == 302

    assert client.get("/").url == ENROL
    assert client.get("/promotions/").url == ENROL
    assert client.get("/admin/").status_code == 302
    page = client.get(ENROL)
    assert page.status_code == 200  # no second password prompt: the sign-in is fresh
    secret = client.session["mfa.totp.secret"]
    assert secret in page.content.decode()  # for apps that cannot scan the picture
    assert "<svg" in page.content.decode()  # inline: the Content-Security-Policy allows no data: images

    with django_capture_on_commit_callbacks(execute=True):  # allauth announces the new factor once committed
        enrolled = client.post(ENROL, {"code": code(secret)})

    assert enrolled.status_code == 302
    assert Authenticator.objects.filter(user=reviewer, type="totp").exists()
    assert Authenticator.objects.filter(user=reviewer, type="recovery_codes").exists()
    assert client.get("/").status_code == 200
    assert "user.mfa_added" in actions(reviewer)


def test_removing_the_only_second_factor_sends_them_to_enrol_again(client, django_capture_on_commit_callbacks):
    reviewer = grant("reviewer", on=ProjectFactory()).user
    with_totp(reviewer)
    client.force_login(reviewer)
    assert client.get("/").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/2fa/totp/deactivate/")

    assert not Authenticator.objects.filter(user=reviewer, type="totp").exists()
    assert client.get("/").url == ENROL
    assert "user.mfa_removed" in actions(reviewer)


def test_the_second_factor_pages_are_in_the_portals_look(client):
    user = UserFactory()
    with_totp(user)
    client.force_login(user)

    for url in ("/accounts/2fa/", "/accounts/2fa/recovery-codes/", "/accounts/2fa/webauthn/add/"):
        page = client.get(url)
        assert page.status_code == 200, url
        assert "portal.css" in page.content.decode(), url
        assert "Sign out" in page.content.decode(), url


@pytest.mark.parametrize("who", ["staff", "superuser", "maintainer", "auditor", "group reviewer"])
def test_staff_superusers_and_every_such_role_must_enrol(client, who):
    if who in ("staff", "superuser"):
        user = UserFactory(is_staff=True, is_superuser=who == "superuser")
    elif who == "group reviewer":
        from tests.artifacts.factories import GroupFactory

        group = GroupFactory(name="reviewers")
        user = UserFactory()
        user.groups.add(group)
        grant("reviewer", on=ProjectFactory(), group=group)
    else:
        user = grant(who, on=ProjectFactory()).user
    client.force_login(user)

    assert client.get("/").url == ENROL


def test_a_contributor_or_a_viewer_is_not_asked_to_enrol(client):
    project = ProjectFactory()
    contributor = grant("contributor", on=project).user
    grant("viewer", on=project, user=contributor)
    client.force_login(contributor)

    assert client.get("/").status_code == 200


def test_nobody_is_sent_to_enrol_when_the_setting_is_off(client, settings):
    settings.PROVENANT_MFA_REQUIRED = False
    client.force_login(grant("reviewer", on=ProjectFactory()).user)

    assert client.get("/").status_code == 200


def test_signing_out_and_the_api_stay_reachable_while_enrolment_is_due(client):
    client.force_login(grant("reviewer", on=ProjectFactory()).user)

    assert client.get("/api/v1/projects/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").url.startswith("/accounts/login/")


def test_with_a_second_factor_the_password_alone_opens_no_session(client):
    user = UserFactory()
    with_totp(user)

    response = password_step(client, user)

    assert response.url == SECOND_FACTOR
    assert client.get("/").url.startswith("/accounts/login/")
    assert "user.logged_in" not in actions(user)


def test_the_code_from_the_app_completes_the_sign_in(client):
    user = UserFactory()
    with_totp(user)
    password_step(client, user)

    response = client.post(SECOND_FACTOR, {"code": code()})

    assert (response.status_code, response.url) == (302, "/")
    assert client.get("/").status_code == 200
    assert "user.logged_in" in actions(user)


def test_a_wrong_code_is_refused_and_recorded_without_the_code(client):
    user = UserFactory()
    with_totp(user)
    password_step(client, user)
    wrong = code(periods_ago=10)

    response = client.post(SECOND_FACTOR, {"code": wrong})

    assert response.status_code == 200
    assert "Incorrect code" in response.content.decode()
    assert client.get("/").url.startswith("/accounts/login/")
    entry = AuditEntry.objects.get(action="user.mfa_failed")
    assert (entry.actor_kind, entry.actor_label, entry.object_id) == ("anonymous", user.username, str(user.pk))
    assert wrong not in str(entry.changes)


def test_a_code_already_used_is_refused(client):
    user = UserFactory()
    with_totp(user)
    used = code()
    password_step(client, user)
    client.post(SECOND_FACTOR, {"code": used})
    client.post("/accounts/logout/")

    password_step(client, user)

    assert client.post(SECOND_FACTOR, {"code": used}).status_code == 200
    assert client.get("/").url.startswith("/accounts/login/")


def test_a_recovery_code_works_once_and_is_recorded(client):
    user = UserFactory()
    recovery = with_totp(user)
    spare = recovery.get_unused_codes()[0]
    password_step(client, user)

    assert client.post(SECOND_FACTOR, {"code": spare}).url == "/"
    assert client.get("/").status_code == 200
    entry = AuditEntry.objects.get(action="user.mfa_recovery_code_used")
    assert entry.actor_user_id == user.pk
    client.post("/accounts/logout/")

    password_step(client, user)
    assert client.post(SECOND_FACTOR, {"code": spare}).status_code == 200
    assert client.get("/").url.startswith("/accounts/login/")


def test_failed_passwords_still_lock_out_a_person_with_a_second_factor(client, settings):
    user = UserFactory()
    with_totp(user)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"login": user.username, "password": "wrong"})

    assert password_step(client, user).status_code == 429


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/signup/",
        "/accounts/email/",
        "/accounts/password/reset/",
        "/accounts/password/set/",
        "/accounts/login/code/confirm/",
        "/accounts/reauthenticate/code/",
        "/accounts/confirm-email/some-key/",
    ],
)
def test_allauths_self_service_by_e_mail_is_not_offered(client, path):
    """Accounts come from an administrator (and later the identity provider): no signup, no e-mail addresses, no
    password reset by e-mail, signed in or not."""
    assert client.get(path).status_code == 404
    assert client.post(path, {"email": "someone@example.com"}).status_code == 404
    client.force_login(UserFactory())
    assert client.get(path).status_code == 404
