"""Two clients creating the same name at the same moment: one gets it, the other a 409, never a 500."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, UserFactory, token_for

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


def client() -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(UserFactory())}")
    return api


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
    clients = [client() for _ in range(6)]
    statuses = race([lambda api=api: api.post(url, payload(project), format="json") for api in clients])
    assert statuses == [201, 409, 409, 409, 409, 409]
