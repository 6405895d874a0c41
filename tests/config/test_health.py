"""Liveness and readiness probes: public, cheap, and a 503 naming the check that fails, on real failures."""

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

from config import health
from tests.celery_broker import celery_app_on

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def forget_migrations_result(monkeypatch):
    """Each test starts as a fresh worker would: the migrations check not yet passed in this process."""
    monkeypatch.setattr(health, "_migrations_applied", False)


def test_liveness_answers_anyone_without_touching_the_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client().get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readiness_passes_every_check_and_says_the_broker_is_not_used_in_the_embedded_mode():
    response = Client().get("/health/ready")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "storage", "migrations"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert body["checks"]["broker"]["detail"].startswith("not used")


def test_readiness_is_cheap_enough_to_poll_every_second(django_assert_max_num_queries):
    Client().get("/health/ready")  # the first poll reads the migration graph once
    with django_assert_max_num_queries(1):  # then only SELECT 1
        assert Client().get("/health/ready").status_code == 200


def test_an_unreachable_broker_makes_the_worker_not_ready(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.PROVENANT_HEALTH_BROKER_TIMEOUT_SECONDS = 1
    with celery_app_on("redis://127.0.0.1:1/0"):  # nothing listens on port 1
        response = Client().get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["checks"]["broker"]["status"] == "failing"
    assert body["checks"]["database"]["status"] == "ok"


def test_storage_that_cannot_be_reached_makes_the_worker_not_ready(settings):
    # An S3 endpoint where nothing listens: the probe's HeadObject fails as it would with the store down.
    settings.STORAGES = settings.STORAGES | {
        "blobs": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "provenant-missing",
                "endpoint_url": "http://127.0.0.1:1",
                "access_key": "x",
                "secret_key": "x",
            },
        }
    }
    response = Client().get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["storage"]["status"] == "failing"


def test_an_unapplied_migration_makes_the_worker_not_ready():
    applied = MigrationRecorder.Migration.objects.filter(app="core").order_by("-id").first()
    MigrationRecorder(connection).record_unapplied(applied.app, applied.name)

    response = Client().get("/health/ready")

    assert response.status_code == 503
    check = response.json()["checks"]["migrations"]
    assert check["status"] == "failing"
    assert f"core.{applied.name}" in check["detail"]


def test_a_database_that_fails_makes_the_worker_not_ready(monkeypatch):
    # A real failure of the query the check sends: the database refuses SQL it cannot parse.
    monkeypatch.setattr(health, "PROBE_SQL", "SELECT FROM WHERE")
    response = Client().get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "failing"
