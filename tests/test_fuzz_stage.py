"""The fuzzing stage's settings (tests/fuzz/schemathesis.toml) stay true to the schema they are applied to.

Schemathesis matches the operations to leave out by name and ignores a name that matches nothing, so a renamed
webhook route would silently be fuzzed again, and its calls out of the machine with it. And a status list that let
a 5xx through would turn the stage's main promise off without a word.
"""

import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

CONFIG = Path(__file__).resolve().parent / "fuzz" / "schemathesis.toml"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _settings() -> dict:
    with CONFIG.open("rb") as config:
        return tomllib.load(config)


def _operation_names(api) -> set[str]:
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return {
        f"{method.upper()} {path}"
        for path, operations in response.json()["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    }


def test_every_operation_left_out_of_fuzzing_is_in_the_schema(api):
    left_out = [
        name for entry in _settings()["operations"] if entry.get("enabled") is False for name in entry["include-name"]
    ]
    assert left_out, "the webhook operations that call out must be left out"
    assert set(left_out) <= _operation_names(api)


def test_only_webhook_operations_that_call_out_are_left_out_of_fuzzing():
    left_out = {name for entry in _settings()["operations"] for name in entry["include-name"]}
    assert left_out == {
        "POST /api/v1/webhooks/endpoints/",
        "PATCH /api/v1/webhooks/endpoints/{id}/",
        "POST /api/v1/webhooks/endpoints/{id}/test/",
        "POST /api/v1/webhooks/deliveries/{id}/resend/",
    }


def test_no_check_of_the_fuzzing_stage_accepts_a_server_error():
    for name, check in _settings()["checks"].items():
        statuses = check.get("expected-statuses", [])
        assert not [status for status in statuses if str(status).startswith("5")], name
