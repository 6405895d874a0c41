"""Token use in the audit log, aggregated: one `api_token.used` entry per token, address and hour window, written by
the window's first use; later uses there only move last-used."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core.audit.actions import AuditAction
from core.models.audit import AuditEntry
from governance.access.models import ApiToken, ApiTokenUse
from governance.access.services import api_token_issue, api_token_record_use
from governance.access.services import tokens as token_services
from tests.artifacts.factories import UserFactory

pytestmark = pytest.mark.django_db


class Clock:
    """The services' clock, set by the test: windows are about hours, which a test cannot wait through."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(datetime.now(UTC).replace(minute=5, second=0, microsecond=0))
    monkeypatch.setattr(token_services, "timezone", clock)
    return clock


def used_entries():
    return AuditEntry.objects.filter(action=AuditAction.API_TOKEN_USED).order_by("seq")


def call(plaintext: str, address: str) -> int:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client.get(reverse("api:me")).status_code


def test_the_first_use_in_an_hour_from_an_address_is_audited_and_later_ones_only_move_last_used(clock):
    person = UserFactory(username="pipeline")
    token, plaintext = api_token_issue(user=person, name="ci", lifetime=timedelta(days=1))

    assert call(plaintext, "203.0.113.9") == 200
    [entry] = used_entries()
    assert entry.actor_label == "pipeline"
    assert entry.object_id == str(token.pk)
    changes = json.loads(entry.changes)
    assert changes["address"] == "203.0.113.9"
    assert changes["user"] == "pipeline"
    assert changes["window_start"].startswith(clock.moment.replace(minute=0).isoformat()[:16])

    for minutes in (2, 30, 54):  # later in the same hour, from the same address
        clock.moment += timedelta(minutes=minutes - clock.moment.minute + 5)
        assert call(plaintext, "203.0.113.9") == 200
    assert used_entries().count() == 1
    token.refresh_from_db()
    assert token.last_used_at == clock.moment  # last-used still moves

    assert call(plaintext, "198.51.100.4") == 200  # another address: its own entry
    assert call(plaintext, "203.0.113.9") == 200  # back to the first: its window is already audited
    assert [json.loads(e.changes)["address"] for e in used_entries()] == ["203.0.113.9", "198.51.100.4"]

    clock.moment += timedelta(hours=1)  # the next hour opens a new window
    assert call(plaintext, "203.0.113.9") == 200
    assert used_entries().count() == 3
    # Past windows' rows are removed as new ones open: the table holds the current hour's only.
    assert set(ApiTokenUse.objects.values_list("address", flat=True)) == {"203.0.113.9"}


def test_two_processes_racing_on_the_first_use_write_one_entry(clock):
    """Each worker loaded the token before either recorded its use (so neither sees the other's): the database's
    unique key, not memory, lets one of them write the window's entry."""
    token, _ = api_token_issue(user=UserFactory(), name="ci", lifetime=timedelta(days=1))
    in_one, in_other = ApiToken.objects.get(pk=token.pk), ApiToken.objects.get(pk=token.pk)

    api_token_record_use(token=in_one, address="203.0.113.9")
    api_token_record_use(token=in_other, address="203.0.113.9")

    assert used_entries().count() == 1
    assert ApiTokenUse.objects.count() == 1


def test_a_use_from_no_known_address_is_audited_once_an_hour_too(clock):
    token, _ = api_token_issue(user=UserFactory(), name="ci", lifetime=timedelta(days=1))
    for _ in range(3):
        api_token_record_use(token=ApiToken.objects.get(pk=token.pk), address=None)
    [entry] = used_entries()
    assert json.loads(entry.changes)["address"] is None


def test_a_refused_token_is_not_audited_as_used(clock):
    token, plaintext = api_token_issue(user=UserFactory(), name="ci", lifetime=timedelta(days=1))
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=clock.moment)
    assert call(plaintext, "203.0.113.9") == 401
    assert not used_entries().exists()
