"""The API token admin: tokens are listed and revoked, never added, edited or deleted there."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from artifacts.access.roles import Role, Scope
from governance.access.models import ApiToken
from governance.access.services import api_token_issue, api_token_revoke, service_account_create
from tests.artifacts.factories import ProjectFactory, UserFactory, grant
from tests.governance.factories import ApiTokenFactory
from tests.pages import messages_of

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:access_apitoken_changelist")


def change_url(token: ApiToken) -> str:
    return reverse("admin:access_apitoken_change", args=[token.pk])


def expire(token: ApiToken) -> None:
    """Move the token's life into the past (tokens have no immutability trigger)."""
    now = timezone.now()
    ApiToken.objects.filter(pk=token.pk).update(created_at=now - timedelta(days=2), expires_at=now - timedelta(days=1))


def listed(response) -> set[ApiToken]:
    return set(response.context["cl"].result_list)


def test_changelist_and_change_page_render(admin_client):
    token = ApiTokenFactory(name="nightly-training")

    changelist = admin_client.get(CHANGELIST)
    change = admin_client.get(change_url(token))

    assert changelist.status_code == 200
    assert f"{token.prefix}…" in changelist.content.decode()
    assert change.status_code == 200
    assert "nightly-training" in change.content.decode()
    assert token.key_hash not in change.content.decode()


def test_changelist_queries_do_not_grow_with_rows(admin_client):
    ApiTokenFactory.create_batch(2)
    admin_client.get(CHANGELIST)

    with CaptureQueriesContext(connection) as two_rows:
        admin_client.get(CHANGELIST)
    ApiTokenFactory.create_batch(18)
    with CaptureQueriesContext(connection) as twenty_rows:
        response = admin_client.get(CHANGELIST)

    assert response.context["cl"].result_count == 20
    assert len(twenty_rows) == len(two_rows), "\n".join(query["sql"] for query in twenty_rows.captured_queries)


def test_tokens_cannot_be_added_edited_or_deleted(admin_client):
    token = ApiTokenFactory(name="nightly-training")
    add_url = reverse("admin:access_apitoken_add")
    delete_url = reverse("admin:access_apitoken_delete", args=[token.pk])

    assert admin_client.get(add_url).status_code == 403
    assert 'name="_save"' not in admin_client.get(change_url(token)).content.decode()
    assert admin_client.post(change_url(token), {"name": "renamed"}).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    token.refresh_from_db()
    assert token.name == "nightly-training"


def test_revoke_action_revokes_selected_tokens_and_skips_revoked_ones(admin_client):
    live = ApiTokenFactory()
    already = ApiTokenFactory()
    revoked_at = api_token_revoke(token=already).revoked_at
    untouched = ApiTokenFactory()

    response = admin_client.post(
        CHANGELIST, {"action": "revoke_tokens", "_selected_action": [live.pk, already.pk]}, follow=True
    )

    live.refresh_from_db()
    already.refresh_from_db()
    untouched.refresh_from_db()
    assert live.is_revoked
    assert already.revoked_at == revoked_at
    assert not untouched.is_revoked
    notes = messages_of(response)
    assert f"Revoked 1 token(s): {live.prefix}…." in notes
    assert any(note.startswith("Skipped 1:") and "already revoked" in note for note in notes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {live.plaintext}")
    assert client.get("/api/v1/projects/").status_code == 401


def test_staff_who_may_only_view_tokens_are_not_offered_revoke(client, staff):
    viewer = staff(UserFactory(), "view_apitoken")
    token = ApiTokenFactory()
    client.force_login(viewer)

    response = client.get(CHANGELIST)
    refused = client.post(CHANGELIST, {"action": "revoke_tokens", "_selected_action": [token.pk]})

    assert response.status_code == 200
    assert "revoke_tokens" not in response.content.decode()
    assert refused.status_code == 200  # the changelist again, with no action taken
    token.refresh_from_db()
    assert not token.is_revoked


def test_filters_separate_revoked_and_expired_tokens(admin_client):
    live, revoked, expired = ApiTokenFactory(), ApiTokenFactory(), ApiTokenFactory()
    api_token_revoke(token=revoked)
    expire(expired)

    assert listed(admin_client.get(CHANGELIST, {"revoked": "yes"})) == {revoked}
    assert listed(admin_client.get(CHANGELIST, {"revoked": "no"})) == {live, expired}
    assert listed(admin_client.get(CHANGELIST, {"expired": "yes"})) == {expired}
    assert listed(admin_client.get(CHANGELIST, {"expired": "no", "revoked": "no"})) == {live}


def test_tokens_are_found_by_prefix_name_and_username(admin_client):
    mine = ApiTokenFactory(name="nightly-training", user=UserFactory(username="alice"))
    ApiTokenFactory(name="evaluation", user=UserFactory(username="bob"))

    assert listed(admin_client.get(CHANGELIST, {"q": mine.prefix})) == {mine}
    assert listed(admin_client.get(CHANGELIST, {"q": "nightly"})) == {mine}
    assert listed(admin_client.get(CHANGELIST, {"q": "alice"})) == {mine}


def test_staff_see_and_revoke_the_tokens_they_manage_and_no_others(client):
    project = ProjectFactory()
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_apitoken", "change_apitoken"]))
    grant(Role.MAINTAINER, on=project, user=staff)
    account = UserFactory()
    service_account_create(user=account, project=project)
    theirs, _ = api_token_issue(user=account, name="nightly", lifetime=timedelta(days=1), scope=Scope.WRITE)
    stranger, _ = api_token_issue(user=UserFactory(), name="stranger", lifetime=timedelta(days=1))
    client.force_login(staff)

    page = client.get(CHANGELIST)
    assert listed(page) == {theirs}
    assert "write" in page.content.decode()
    client.post(CHANGELIST, {"action": "revoke_tokens", "_selected_action": [theirs.pk, stranger.pk]})
    theirs.refresh_from_db()
    stranger.refresh_from_db()
    assert theirs.is_revoked
    assert not stranger.is_revoked
