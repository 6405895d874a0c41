""" "Awaiting me": one page, and a count in the navigation, of what waits for the signed-in person (promotions to
decide, grants to review, retention plans to apply), and the daily e-mail digest of the same, sent once a day at most
and never when nothing waits."""

from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from artifacts.access.roles import Role
from governance.lifecycle.models import RetentionPlan
from governance.portal.models import InboxDigest
from governance.portal.selectors import awaiting_count
from governance.portal.services import inbox_digest_send, inbox_digests_send
from governance.portal.tasks import send_inbox_digests
from governance.registry.services.promotions import promotion_approve
from tests.artifacts.factories import ProjectFactory, UserFactory, grant
from tests.governance.factories import AccessReviewCampaignFactory, PromotionRequestFactory

pytestmark = pytest.mark.django_db

INBOX = reverse("portal:inbox")
TODAY = timezone.now().date()


def plan_of(project, *, state=RetentionPlan.State.PLANNED, to_delete=2, to_archive=1) -> RetentionPlan:
    """A plan as the planner leaves it (its items do not matter to what waits for whom)."""
    return RetentionPlan.objects.create(
        project=project,
        policy_version=1,
        state=state,
        trigger=RetentionPlan.Trigger.SCHEDULE,
        created_at=timezone.now(),
        versions_to_delete=to_delete,
        versions_to_archive=to_archive,
    )


@pytest.fixture
def desk():
    """Project `fraud`: mia maintains it and reviews promotions there too; a promotion request waits for reviewers;
    an access review assigns grants to mia; a retention plan waits to be applied. `quiet` holds only a viewer role."""
    request = PromotionRequestFactory()
    project = request.registered_model.project
    mia = UserFactory(username="mia", email="mia@example.com")
    grant(Role.MAINTAINER, on=project, user=mia)
    grant(Role.REVIEWER, on=project, user=mia)
    quiet = UserFactory(username="quiet", email="quiet@example.com")
    grant(Role.VIEWER, on=project, user=quiet)
    campaign = AccessReviewCampaignFactory(project=project, reviewers=[mia], title="Fraud Q4")
    plan = plan_of(project)
    return SimpleNamespace(project=project, request=request, mia=mia, quiet=quiet, campaign=campaign, plan=plan)


def test_signing_in_is_required(client):
    response = client.get(INBOX)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))


def test_the_inbox_lists_each_kind_of_waiting_work_with_a_link_to_where_it_is_done(client, desk):
    client.force_login(desk.mia)
    pending_items = desk.campaign.items.filter(reviewer=desk.mia).count()

    response = client.get(INBOX)

    assert response.status_code == 200
    waiting = response.context["waiting"]
    assert [request.pk for request in waiting.promotions] == [desk.request.pk]
    assert [(review.campaign.pk, review.pending) for review in waiting.reviews] == [(desk.campaign.pk, pending_items)]
    assert [plan.pk for plan in waiting.plans] == [desk.plan.pk]
    assert waiting.total == 1 + pending_items + 1
    body = response.content.decode()
    assert f'href="{reverse("portal:promotion", args=[desk.request.pk])}"' in body
    assert f'href="{reverse("portal:access-reviews")}?campaign={desk.campaign.pk}"' in body
    assert f'href="{reverse("portal:retention-plan", args=[desk.project.slug, desk.plan.pk])}"' in body
    assert "/api/" not in body


def test_the_navigation_links_the_inbox_with_the_count_on_every_page(client, desk):
    client.force_login(desk.mia)
    total = 1 + desk.campaign.items.filter(reviewer=desk.mia).count() + 1

    body = client.get(reverse("portal:access-reviews")).content.decode()

    assert (
        f'<a href="{INBOX}">Awaiting me <span class="count">{total}</span>'
        '<span class="visually-hidden"> waiting</span></a>' in body
    )


def test_someone_with_nothing_waiting_sees_empty_states_and_no_count(client, desk):
    client.force_login(desk.quiet)

    response = client.get(INBOX)

    body = response.content.decode()
    assert response.context["waiting"].total == 0
    assert f'<a href="{INBOX}" aria-current="page">Awaiting me</a>' in body
    for empty in ("No promotion request waits", "No grant is assigned to you", "No retention plan"):
        assert empty in body


def test_what_she_decided_or_asked_for_or_may_not_act_on_does_not_wait_for_her(client, desk):
    promotion_approve(request=desk.request, reviewer=desk.mia)
    own_request = PromotionRequestFactory(
        model_version__registered_model__project=desk.project,
        requested_by=grant(Role.CONTRIBUTOR, on=desk.project, user=desk.mia).user,
    )
    elsewhere = ProjectFactory()
    grant(Role.VIEWER, on=elsewhere, user=desk.mia)
    plan_of(elsewhere)  # she only views that project: applying is a maintainer's
    plan_of(desk.project, to_delete=0, to_archive=0)  # nothing to do
    plan_of(desk.project, state=RetentionPlan.State.SUPERSEDED)
    client.force_login(desk.mia)

    waiting = client.get(INBOX).context["waiting"]

    assert own_request.pk not in [request.pk for request in waiting.promotions]
    assert waiting.promotions == []
    assert [plan.pk for plan in waiting.plans] == [desk.plan.pk]


def test_the_count_costs_two_queries(desk, django_assert_num_queries):
    """The open requests' artifact versions, then one count of everything (dashboard_awaiting says why two)."""
    expected = 1 + desk.campaign.items.filter(reviewer=desk.mia).count() + 1

    with django_assert_num_queries(2):
        assert awaiting_count(desk.mia) == expected


# The e-mail digest --------------------------------------------------------------------------------------------------


def test_the_digest_mails_each_person_with_waiting_work_once_with_links_and_records_it(desk):
    sent = inbox_digests_send(day=TODAY)

    recipients = sorted(address for message in mail.outbox for address in message.to)
    assert "mia@example.com" in recipients
    assert "quiet@example.com" not in recipients  # nothing waits for her: no mail
    assert sent == len(mail.outbox)
    [message] = [message for message in mail.outbox if message.to == ["mia@example.com"]]
    total = 1 + desk.campaign.items.filter(reviewer=desk.mia).count() + 1
    assert message.subject == f"Provenant: {total} things await you"
    public = django_settings.PROVENANT_PUBLIC_URL
    assert f"{public}{reverse('portal:promotion', args=[desk.request.pk])}" in message.body
    assert f"{public}{reverse('portal:access-reviews')}?campaign={desk.campaign.pk}" in message.body
    assert f"{public}{reverse('portal:retention-plan', args=[desk.project.slug, desk.plan.pk])}" in message.body
    assert f"{public}{INBOX}" in message.body
    assert "/api/" not in message.body
    digest = InboxDigest.objects.get(user=desk.mia)
    assert (digest.day, digest.email) == (TODAY, "mia@example.com")
    assert digest.listed["promotions"] == [desk.request.pk]
    assert digest.listed["plans"] == [desk.plan.pk]


def test_the_same_day_s_digest_is_never_sent_twice_and_the_next_day_s_is(desk):
    inbox_digests_send(day=TODAY)
    first = len(mail.outbox)

    again = inbox_digests_send(day=TODAY)
    assert (again, len(mail.outbox)) == (0, first)

    tomorrow = inbox_digests_send(day=TODAY + timedelta(days=1))
    assert tomorrow == first
    assert InboxDigest.objects.filter(user=desk.mia).count() == 2


def test_no_digest_when_nothing_waits(db):
    person = UserFactory(email="idle@example.com")
    grant(Role.VIEWER, on=ProjectFactory(), user=person)

    assert inbox_digest_send(user=person, day=TODAY) is None
    assert mail.outbox == []
    assert not InboxDigest.objects.exists()


def test_no_digest_to_someone_without_an_address_or_inactive(desk):
    desk.mia.email = ""
    desk.mia.save(update_fields=["email"])
    assert inbox_digest_send(user=desk.mia, day=TODAY) is None

    desk.mia.email, desk.mia.is_active = "mia@example.com", False
    desk.mia.save(update_fields=["email", "is_active"])
    assert inbox_digest_send(user=desk.mia, day=TODAY) is None
    assert mail.outbox == []


def test_a_mail_that_fails_is_not_recorded_so_the_next_run_sends_it(desk):
    with mock.patch("governance.portal.services.send_mail", side_effect=OSError("SMTP server unreachable")):
        assert inbox_digests_send(day=TODAY) == 0
    assert not InboxDigest.objects.exists()

    assert inbox_digests_send(day=TODAY) >= 1
    assert any(message.to == ["mia@example.com"] for message in mail.outbox)


def test_the_beat_task_sends_the_digests(desk):
    assert send_inbox_digests.delay().get() == len(mail.outbox) >= 1


def test_beat_runs_the_digest_on_its_schedule_setting(settings):
    entry = django_settings.CELERY_BEAT_SCHEDULE["send-inbox-digests"]

    assert entry["task"] == "governance.portal.tasks.send_inbox_digests"
    assert entry["schedule"] == django_settings.PROVENANT_DIGEST_SCHEDULE
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({7}, {0})
