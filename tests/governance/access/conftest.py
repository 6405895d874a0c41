from collections.abc import Callable

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def client_with() -> Callable[[str], APIClient]:
    """`client_with(plaintext)`: an API client presenting that string as its bearer token, whatever it is (unknown,
    revoked, expired), where `api_as` would issue a fresh, valid one."""

    def bearing(plaintext: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        return client

    return bearing
