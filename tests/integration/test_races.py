"""Concurrent requests on the real database: one winner, clear refusals for the rest, never a 500."""

import threading

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from rest_framework.test import APIClient

from artifacts.access.roles import Role
from artifacts.models import RoleGrant
from tests.artifacts.factories import ProjectFactory, UserFactory, grant
from tests.governance.factories import token_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def race(requests: list) -> list[int]:
    """Send each request from its own thread and connection, all released at once."""
    barrier = threading.Barrier(len(requests))
    statuses: list[int] = []

    def send(request):
        try:
            barrier.wait()
            statuses.append(request().status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(request,)) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return sorted(statuses)


def client(user=None) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user or UserFactory())}")
    return api


def contributor(project) -> APIClient:
    """A client allowed to create in `project`, and to create projects."""
    user = grant(Role.CONTRIBUTOR, on=project).user
    user.user_permissions.add(Permission.objects.get(codename="add_project"))
    return client(user)


@pytest.mark.parametrize(
    ("url", "payload"),
    [
        ("/api/v1/projects/", lambda project: {"slug": "contested", "name": "Contested"}),
        ("/api/v1/datasets/", lambda project: {"project": project.slug, "name": "contested"}),
        ("/api/v1/artifacts/", lambda project: {"project": project.slug, "name": "contested", "kind": "model"}),
        ("/api/v1/runs/", lambda project: {"project": project.slug, "external_id": "contested"}),
    ],
)
def test_concurrent_creates_of_one_name_yield_one_201_and_409s(url, payload):
    project = ProjectFactory()
    clients = [contributor(project) for _ in range(6)]
    statuses = race([lambda api=api: api.post(url, payload(project), format="json") for api in clients])
    assert statuses == [201, 409, 409, 409, 409, 409]


def test_concurrent_grants_of_one_role_make_one_grant():
    project = ProjectFactory()
    maintainers = [client(grant(Role.MAINTAINER, on=project).user) for _ in range(6)]
    newcomer = UserFactory()
    url = f"/api/v1/projects/{project.slug}/members/"
    statuses = race(
        [lambda api=api: api.post(url, {"role": "reviewer", "user": newcomer.username}) for api in maintainers]
    )
    assert statuses == [200, 200, 200, 200, 200, 201]
    assert RoleGrant.objects.filter(project=project, user=newcomer).count() == 1


def test_two_maintainers_revoking_each_other_at_once_leave_one():
    project = ProjectFactory()
    first, second = grant(Role.MAINTAINER, on=project), grant(Role.MAINTAINER, on=project)
    url = f"/api/v1/projects/{project.slug}/members/{{}}/"
    statuses = race(
        [
            lambda: client(first.user).delete(url.format(second.pk)),
            lambda: client(second.user).delete(url.format(first.pk)),
        ]
    )
    # Whoever is second finds the other the last maintainer (409), or their own role gone: with no role left the
    # project is no longer theirs to see (404), or, when the check read it just before the revocation committed,
    # theirs to see but not to manage (403).
    assert statuses[0] == 204
    assert statuses[1] in (403, 404, 409)
    assert RoleGrant.objects.filter(project=project, role=Role.MAINTAINER).count() == 1
