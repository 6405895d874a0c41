"""Access reviews: what a campaign snapshots and who reviews it, how decisions take effect, the flags, the
periodic task and its schedule setting."""

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from artifacts.access.roles import Role, Verb
from artifacts.access.rule import can
from artifacts.access.services import role_revoke
from artifacts.models import RoleGrant, Run
from artifacts.services.uploads import upload_session_start
from config.settings.celery import env_crontab
from core.errors import Conflict, InvalidInput, NotAllowed
from core.models import AuditEntry
from governance.access.models import AccessReviewCampaign, AccessReviewItem
from governance.access.services import campaign_open, campaign_open_scheduled, item_decide, items_decide
from governance.access.tasks import open_scheduled_access_reviews
from governance.registry.services.promotions import promotion_approve
from tests.artifacts.factories import BlobFactory, GroupFactory, ProjectFactory, RunFactory, UserFactory, grant
from tests.governance.factories import AccessReviewCampaignFactory, PromotionRequestFactory
from tests.test_settings import run_manage

pytestmark = pytest.mark.django_db

KEEP, REVOKE = AccessReviewItem.Decision.KEEP, AccessReviewItem.Decision.REVOKE


def in_days(days: float):
    return timezone.now() + timedelta(days=days)


def item_for(campaign: AccessReviewCampaign, role_grant: RoleGrant) -> AccessReviewItem:
    return campaign.items.get(grant=role_grant)


def backdate(run: Run, days: int) -> None:
    """Move a run's creation into the past (what a run was is frozen; when it was recorded is not)."""
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(days=days))


@contextmanager
def days_ago(days: float) -> Iterator[None]:
    """Act `days` in the past: the audit log records the act then (its entries are never rewritten afterwards)."""
    with mock.patch("django.utils.timezone.now", return_value=in_days(-days)):
        yield


def run_days_ago(days: int, **kwargs) -> Run:
    """A run recorded `days` ago: its row and its audit entry."""
    with days_ago(days):
        run = RunFactory(**kwargs)
    backdate(run, days)
    return run


# Opening ----------------------------------------------------------------------------------------------


def test_a_campaign_snapshots_every_grant_on_the_project(reviewed):
    campaign = AccessReviewCampaignFactory(project=reviewed.project)

    snapshots = {
        (item.grantee_label, item.role, item.object_label, item.granted_by_label, item.grantee_user_id)
        for item in campaign.items.all()
    }
    assert snapshots == {
        ("user alice", Role.MAINTAINER, "project churn", "", reviewed.alice.pk),
        ("user bob", Role.MAINTAINER, "project churn", "alice", reviewed.bob.pk),
        ("user carol", Role.VIEWER, "project churn", "alice", reviewed.carol_views.user_id),
        ("group analysts", Role.VIEWER, "project churn", "bob", None),
        ("user erin", Role.CONTRIBUTOR, "artifact churn/classifier", "alice", reviewed.erin_contributes.user_id),
    }
    erin = item_for(campaign, reviewed.erin_contributes)
    assert erin.artifact == reviewed.model
    assert erin.project == reviewed.project
    assert erin.granted_at == reviewed.erin_contributes.granted_at
    assert item_for(campaign, reviewed.analysts_view).grantee_group == reviewed.analysts
    assert campaign.state == AccessReviewCampaign.State.OPEN
    assert campaign.title.startswith("Access review of project churn")


def test_a_campaign_without_a_project_reviews_every_project(reviewed):
    campaign = AccessReviewCampaignFactory(project=None, title="Q3 review")

    assert campaign.items.count() == RoleGrant.objects.count() == 6
    assert campaign.scope_label == "all projects"
    assert campaign.title == "Q3 review"


def test_maintainers_share_the_items_and_never_review_their_own_grant(reviewed):
    campaign = AccessReviewCampaignFactory(project=reviewed.project)

    reviewers = dict(campaign.items.values_list("grant", "reviewer"))
    assert reviewers[reviewed.alice_maintains.pk] == reviewed.bob.pk
    assert reviewers[reviewed.bob_maintains.pk] == reviewed.alice.pk
    assert sorted(reviewers.values()).count(reviewed.alice.pk) in (2, 3)  # five items between two reviewers
    assert not campaign.items.filter(self_review=True).exists()


def test_members_of_a_maintainers_group_review_but_not_their_own_group(reviewed):
    project = ProjectFactory()
    leads = GroupFactory(name="leads")
    lead = UserFactory(username="lead")
    lead.groups.add(leads)
    leads_maintain = grant(Role.MAINTAINER, on=project, group=leads)
    viewer = grant(Role.VIEWER, on=project)
    opener = UserFactory(is_superuser=True)

    campaign = AccessReviewCampaignFactory(project=project, opened_by=opener)

    assert item_for(campaign, viewer).reviewer == lead
    assert item_for(campaign, leads_maintain).reviewer == opener


def test_the_only_maintainers_grant_goes_to_the_opener(reviewed):
    project = ProjectFactory()
    only = grant(Role.MAINTAINER, on=project)
    opener = UserFactory(is_superuser=True)

    campaign = AccessReviewCampaignFactory(project=project, opened_by=opener)

    item = item_for(campaign, only)
    assert item.reviewer == opener
    assert not item.self_review


def test_a_one_person_installation_reviews_itself_and_says_so():
    project = ProjectFactory()
    admin = UserFactory(is_superuser=True)
    own = grant(Role.MAINTAINER, on=project, user=admin)

    item = item_for(AccessReviewCampaignFactory(project=project, opened_by=admin), own)

    assert item.reviewer == admin
    assert item.self_review


def test_named_reviewers_replace_the_maintainers(reviewed):
    auditor = UserFactory(username="auditor")

    campaign = AccessReviewCampaignFactory(project=reviewed.project, reviewers=[auditor])

    assert set(campaign.items.values_list("reviewer", flat=True)) == {auditor.pk}


def test_a_project_nobody_can_review_is_refused():
    project = ProjectFactory(slug="orphan")  # no maintainer, and a scheduled campaign has no opener
    grant(Role.VIEWER, on=project)

    with pytest.raises(InvalidInput, match="Nobody can review the grants on project orphan"):
        campaign_open(project=None, due_at=in_days(7), opened_by=None, scheduled=True)

    assert not AccessReviewCampaign.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"due_at": "past"}, "The due date must be in the future."),
        ({"reviewers": []}, "Name at least one reviewer"),
        ({"reviewers": "inactive"}, "Inactive users cannot review: gone."),
    ],
)
def test_bad_input_opens_nothing(reviewed, kwargs, message):
    if kwargs.get("due_at") == "past":
        kwargs["due_at"] = in_days(-1)
    if kwargs.get("reviewers") == "inactive":
        kwargs["reviewers"] = [UserFactory(username="gone", is_active=False)]

    with pytest.raises(InvalidInput, match=message):
        campaign_open(**{"project": reviewed.project, "due_at": in_days(7), "opened_by": reviewed.alice, **kwargs})

    assert not AccessReviewCampaign.objects.exists()


def test_a_project_without_grants_is_refused():
    with pytest.raises(InvalidInput, match="There is no grant on project empty to review"):
        campaign_open(project=ProjectFactory(slug="empty"), due_at=in_days(7), opened_by=UserFactory())


# Last activity and the flags --------------------------------------------------------------------------


def test_last_activity_is_the_grantees_latest_record_in_that_project(reviewed):
    carol = reviewed.carol_views.user
    run_days_ago(30, project=reviewed.project, created_by=carol)
    RunFactory(project=ProjectFactory(), created_by=carol)  # elsewhere: not activity in this project
    grant(Role.CONTRIBUTOR, on=reviewed.project, user=carol)
    session, _ = upload_session_start(
        project=reviewed.project, digest="sha256:" + hashlib.sha256(os.urandom(8)).hexdigest(), size=8, created_by=carol
    )
    run_days_ago(200, project=reviewed.project, created_by=reviewed.erin_contributes.user)

    campaign = AccessReviewCampaignFactory(project=reviewed.project)

    started = AuditEntry.objects.get(action="upload_session.started")
    assert item_for(campaign, reviewed.carol_views).last_activity_at == started.recorded_at >= session.created_at
    assert item_for(campaign, reviewed.erin_contributes).last_activity_at < in_days(-199)
    assert item_for(campaign, reviewed.analysts_view).last_activity_at is None  # groups: not known


def test_downloading_bytes_counts_as_activity_in_that_project(reviewed, api_as):
    """A viewer who only reads is using their access: the audit log's reads count as activity."""
    carol = reviewed.carol_views.user
    blob = BlobFactory(project=reviewed.project)
    response = api_as(carol).get(f"/api/v1/projects/{reviewed.project.slug}/blobs/{blob.prefixed_digest}")
    assert response.status_code == 200

    campaign = AccessReviewCampaignFactory(project=reviewed.project)

    read = AuditEntry.objects.get(action="blob.downloaded")
    assert item_for(campaign, reviewed.carol_views).last_activity_at == read.recorded_at
    assert not item_for(campaign, reviewed.carol_views).is_unused


def test_deciding_a_promotion_counts_as_activity_for_a_reviewer():
    """A reviewer publishes nothing: approving promotions is how they use the role, so they are not flagged unused."""
    request = PromotionRequestFactory()
    reviewer_grant = grant(Role.REVIEWER, on=request.registered_model.project)
    promotion_approve(request=request, reviewer=reviewer_grant.user, comment="Checked.")

    campaign = AccessReviewCampaignFactory(project=request.registered_model.project)

    approval = AuditEntry.objects.get(action="promotion_request.approved_by_reviewer")
    assert item_for(campaign, reviewer_grant).last_activity_at == approval.recorded_at
    assert approval.recorded_at >= request.decisions.get().decided_at
    assert not item_for(campaign, reviewer_grant).is_unused


def test_unused_means_no_activity_within_the_setting_before_opening(reviewed, settings):
    run_days_ago(30, project=reviewed.project, created_by=reviewed.carol_views.user)
    run_days_ago(100, project=reviewed.project, created_by=reviewed.erin_contributes.user)

    campaign = AccessReviewCampaignFactory(project=reviewed.project)

    unused = {item.grantee_label for item in campaign.items.all() if item.is_unused}
    # alice and bob granted the others' roles just now: the log records it, and it is their role in use.
    assert unused == {"group analysts", "user erin"}
    assert {item.grantee_label for item in campaign.items.unused()} == unused
    settings.PROVENANT_ACCESS_REVIEW_UNUSED_DAYS = 20
    assert "user carol" in {item.grantee_label for item in campaign.items.unused()}
    assert item_for(campaign, reviewed.carol_views).is_unused


def test_opening_costs_the_same_queries_whatever_the_number_of_grants():
    def open_with(viewers: int) -> int:
        project = ProjectFactory()
        grant(Role.MAINTAINER, on=project)
        grant(Role.MAINTAINER, on=project)
        for _ in range(viewers):
            RunFactory(project=project, created_by=grant(Role.VIEWER, on=project).user)
        with CaptureQueriesContext(connection) as queries:
            AccessReviewCampaignFactory(project=project, opened_by=UserFactory(is_superuser=True))
        return len(queries)

    assert open_with(5) == open_with(50)


def test_a_campaign_is_overdue_once_its_due_date_passed_and_until_it_completes(reviewed):
    campaign = AccessReviewCampaignFactory(project=reviewed.project)
    assert not campaign.is_overdue

    AccessReviewCampaign.objects.filter(pk=campaign.pk).update(opened_at=in_days(-20), due_at=in_days(-1))
    campaign.refresh_from_db()

    assert campaign.is_overdue
    assert list(AccessReviewCampaign.objects.overdue()) == [campaign]


# Deciding ---------------------------------------------------------------------------------------------


def test_keeping_records_the_decision_and_leaves_the_grant(reviewed):
    campaign = AccessReviewCampaignFactory(project=reviewed.project)
    item = item_for(campaign, reviewed.carol_views)

    decided = item_decide(item=item, decision=KEEP, comment="", decided_by=item.reviewer)

    assert decided.decision == KEEP
    assert decided.decided_by == item.reviewer
    assert decided.decided_at is not None
    assert RoleGrant.objects.filter(pk=reviewed.carol_views.pk).exists()


def test_revoking_takes_access_away_at_once(reviewed):
    carol = reviewed.carol_views.user
    campaign = AccessReviewCampaignFactory(project=reviewed.project)
    item = item_for(campaign, reviewed.carol_views)
    assert can(carol, Verb.VIEW, reviewed.project)

    item_decide(item=item, decision=REVOKE, comment="Left the reviewed.", decided_by=item.reviewer)

    item.refresh_from_db()
    assert not can(carol, Verb.VIEW, reviewed.project)
    assert not RoleGrant.objects.filter(pk=reviewed.carol_views.pk).exists()
    assert item.decision == REVOKE
    assert item.comment == "Left the reviewed."
    assert item.grant is None
    assert item.grantee_label == "user carol"  # the snapshot outlives the grant
    assert not item.grant_already_revoked


@pytest.mark.parametrize("comment", ["", "   "])
def test_a_revocation_needs_a_comment(reviewed, comment):
    item = item_for(AccessReviewCampaignFactory(project=reviewed.project), reviewed.carol_views)

    with pytest.raises(InvalidInput, match="a revocation needs a comment"):
        item_decide(item=item, decision=REVOKE, comment=comment, decided_by=item.reviewer)

    item.refresh_from_db()
    assert item.decision == AccessReviewItem.Decision.PENDING
    assert RoleGrant.objects.filter(pk=reviewed.carol_views.pk).exists()


def test_only_the_reviewer_or_a_superuser_decides(reviewed):
    item = item_for(AccessReviewCampaignFactory(project=reviewed.project), reviewed.carol_views)
    other = reviewed.alice if item.reviewer == reviewed.bob else reviewed.bob

    with pytest.raises(NotAllowed, match=f"assigned to {item.reviewer.username}"):
        item_decide(item=item, decision=KEEP, comment="", decided_by=other)
    item_decide(item=item, decision=KEEP, comment="", decided_by=UserFactory(is_superuser=True))

    item.refresh_from_db()
    assert item.decided_by.is_superuser


def test_a_decision_is_final(reviewed):
    item = item_for(AccessReviewCampaignFactory(project=reviewed.project), reviewed.carol_views)
    item_decide(item=item, decision=KEEP, comment="", decided_by=item.reviewer)

    with pytest.raises(Conflict, match="already decided: keep"):
        item_decide(item=item, decision=REVOKE, comment="Changed my mind.", decided_by=item.reviewer)

    assert RoleGrant.objects.filter(pk=reviewed.carol_views.pk).exists()


def test_revoking_the_last_maintainer_is_refused_and_the_item_stays_pending():
    project = ProjectFactory(slug="solo")
    only = grant(Role.MAINTAINER, on=project, user=UserFactory(username="solo-maintainer"))
    opener = UserFactory(is_superuser=True)
    item = item_for(AccessReviewCampaignFactory(project=project, opened_by=opener), only)

    with pytest.raises(Conflict, match="last maintainer of project solo"):
        item_decide(item=item, decision=REVOKE, comment="Leaving.", decided_by=opener)

    item.refresh_from_db()
    assert item.decision == AccessReviewItem.Decision.PENDING
    assert item.decided_at is None
    assert RoleGrant.objects.filter(pk=only.pk).exists()
    assert item.campaign.state == AccessReviewCampaign.State.OPEN


@pytest.mark.parametrize("decision", [KEEP, REVOKE])
def test_a_grant_revoked_elsewhere_meanwhile_is_recorded_not_refused(reviewed, decision):
    item = item_for(AccessReviewCampaignFactory(project=reviewed.project), reviewed.carol_views)
    role_revoke(grant=reviewed.carol_views, revoked_by=reviewed.alice)

    decided = item_decide(item=item, decision=decision, comment="Gone already.", decided_by=item.reviewer)

    assert decided.decision == decision
    assert decided.grant_already_revoked


def test_the_last_decision_completes_the_campaign(reviewed):
    campaign = AccessReviewCampaignFactory(project=reviewed.project)
    items = list(campaign.items.all())

    for item in items[:-1]:
        item_decide(item=item, decision=KEEP, comment="", decided_by=item.reviewer)
        campaign.refresh_from_db()
        assert campaign.state == AccessReviewCampaign.State.OPEN
    item_decide(item=items[-1], decision=KEEP, comment="", decided_by=items[-1].reviewer)

    campaign.refresh_from_db()
    assert campaign.state == AccessReviewCampaign.State.COMPLETED
    assert campaign.completed_at is not None
    assert not campaign.is_overdue


def test_a_bulk_decision_reports_each_refusal_and_decides_the_rest(reviewed):
    campaign = AccessReviewCampaignFactory(project=reviewed.project, reviewers=[reviewed.alice, reviewed.bob])
    mine = list(campaign.items.filter(reviewer=reviewed.alice))
    theirs = list(campaign.items.filter(reviewer=reviewed.bob))

    outcome = items_decide(
        items=[*mine, *theirs], decision=REVOKE, comment="Quarterly clean-up.", decided_by=reviewed.alice
    )

    assert {item.pk for item in outcome.decided} == {item.pk for item in mine}
    assert {refusal.item.pk for refusal in outcome.refused} == {item.pk for item in theirs}
    assert all("assigned to bob" in refusal.reason for refusal in outcome.refused)
    assert campaign.items.filter(decision=REVOKE).count() == len(mine)


def test_a_bulk_revocation_without_a_comment_touches_nothing(reviewed):
    campaign = AccessReviewCampaignFactory(project=reviewed.project)

    with pytest.raises(InvalidInput, match="needs a comment"):
        items_decide(items=campaign.items.all(), decision=REVOKE, comment="", decided_by=UserFactory(is_superuser=True))

    assert campaign.items.pending().count() == 5


# The record in the database ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"decision": REVOKE},  # revoked without a comment
        {"decision": KEEP},  # decided by nobody, at no time
        {"decision": "maybe"},
    ],
)
def test_the_database_refuses_an_incoherent_decision(reviewed, change):
    item = item_for(AccessReviewCampaignFactory(project=reviewed.project), reviewed.carol_views)

    with pytest.raises(IntegrityError), transaction.atomic():
        AccessReviewItem.objects.filter(pk=item.pk).update(**change)


def test_a_grant_appears_once_per_campaign(reviewed):
    campaign = AccessReviewCampaignFactory(project=reviewed.project)
    item = item_for(campaign, reviewed.carol_views)
    item.pk = None

    with pytest.raises(IntegrityError), transaction.atomic():
        item.save()


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda item: AccessReviewItem.objects.filter(pk=item.pk).update(comment="rewritten"),
        lambda item: AccessReviewItem.objects.filter(pk=item.pk).update(role=Role.AUDITOR),
        lambda item: AccessReviewItem.objects.filter(pk=item.pk).delete(),
        lambda item: AccessReviewCampaign.objects.filter(pk=item.campaign_id).update(title="renamed"),
    ],
    ids=["decision", "snapshot", "delete", "completed campaign"],
)
def test_triggers_keep_a_decided_review_as_it_was(rewrite):
    project = ProjectFactory()
    reviewer = UserFactory()
    grant(Role.MAINTAINER, on=project, user=reviewer)
    viewer = grant(Role.VIEWER, on=project)
    campaign = AccessReviewCampaignFactory(project=project, reviewers=[reviewer])
    for item in campaign.items.select_related("reviewer"):
        item_decide(item=item, decision=KEEP, comment="Still needed.", decided_by=item.reviewer)

    with pytest.raises(IntegrityError), transaction.atomic():
        rewrite(item_for(campaign, viewer))


def test_a_kept_grant_can_still_be_revoked_later(reviewed):
    """The item of a kept grant keeps its snapshot; the grant's foreign key is free to become NULL."""
    item = item_for(AccessReviewCampaignFactory(project=reviewed.project), reviewed.carol_views)
    item_decide(item=item, decision=KEEP, comment="", decided_by=item.reviewer)

    role_revoke(grant=reviewed.carol_views, revoked_by=reviewed.alice)

    item.refresh_from_db()
    assert item.grant is None
    assert item.decision == KEEP


# The schedule -----------------------------------------------------------------------------------------


def test_the_task_opens_one_review_of_every_project_while_none_of_its_own_is_open(reviewed, settings):
    settings.PROVENANT_ACCESS_REVIEW_DUE_DAYS = 10
    UserFactory(is_superuser=True)

    # apply(): in this process and this test's transaction, also when the integration run has a real broker.
    first = open_scheduled_access_reviews.apply().get()
    again = open_scheduled_access_reviews.apply().get()

    campaign = AccessReviewCampaign.objects.get(pk=first)
    assert again is None
    assert campaign.scheduled
    assert campaign.project is None
    assert campaign.opened_by is None
    assert campaign.items.count() == RoleGrant.objects.count()
    assert timedelta(days=9, hours=23) < campaign.due_at - campaign.opened_at <= timedelta(days=10)
    assert campaign.title.startswith("Scheduled access review of all projects")


def test_a_campaign_opened_by_hand_does_not_hold_back_the_schedule(reviewed):
    AccessReviewCampaignFactory(project=reviewed.project)

    assert campaign_open_scheduled() is not None


def test_the_schedule_opens_the_next_review_once_the_last_one_completed(reviewed):
    superuser = UserFactory(is_superuser=True)
    campaign = campaign_open_scheduled()
    items_decide(items=campaign.items.all(), decision=KEEP, comment="", decided_by=superuser)

    following = campaign_open_scheduled()

    assert following is not None
    assert following.pk != campaign.pk


def test_the_schedule_opens_nothing_when_there_is_no_grant():
    assert open_scheduled_access_reviews.delay().get() is None
    assert not AccessReviewCampaign.objects.exists()


def test_the_database_holds_one_open_scheduled_campaign(reviewed):
    UserFactory(is_superuser=True)
    campaign_open_scheduled()

    with pytest.raises(IntegrityError), transaction.atomic():
        campaign_open(project=None, due_at=in_days(3), opened_by=None, scheduled=True)


# Settings ---------------------------------------------------------------------------------------------


def test_the_review_is_scheduled_quarterly_by_default(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["open-access-reviews"]

    assert entry["task"] == "governance.access.tasks.open_scheduled_access_reviews"
    assert entry["schedule"] == crontab(minute="0", hour="6", day_of_month="1", month_of_year="1,4,7,10")
    assert settings.PROVENANT_ACCESS_REVIEW_DUE_DAYS == 14
    assert settings.PROVENANT_ACCESS_REVIEW_UNUSED_DAYS == 90


def test_a_crontab_from_the_environment_is_read_in_cron_order(monkeypatch):
    monkeypatch.setenv("PROVENANT_ACCESS_REVIEW_SCHEDULE", "30 7 15 */2 mon-fri")

    schedule = env_crontab("PROVENANT_ACCESS_REVIEW_SCHEDULE", "0 6 1 1,4,7,10 *")

    assert schedule == crontab(minute="30", hour="7", day_of_month="15", month_of_year="*/2", day_of_week="mon-fri")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0 6 1 1", "give five fields, minute hour day-of-month month day-of-week"),
        ("0 6 1 13 *", "is not a valid crontab: Invalid end range: 13 > 12"),
        ("every quarter please", "give five fields"),
        ("0 6 x 1 *", "is not a valid crontab"),
    ],
)
def test_a_malformed_crontab_is_named(monkeypatch, raw, message):
    monkeypatch.setenv("PROVENANT_ACCESS_REVIEW_SCHEDULE", raw)

    with pytest.raises(ImproperlyConfigured, match=message) as refused:
        env_crontab("PROVENANT_ACCESS_REVIEW_SCHEDULE", "0 6 1 1,4,7,10 *")

    assert f"PROVENANT_ACCESS_REVIEW_SCHEDULE={raw!r}" in str(refused.value)


def test_a_malformed_schedule_or_period_stops_the_server_from_starting(tmp_path):
    schedule = run_manage("check", env={"DJANGO_DEBUG": "true", "PROVENANT_ACCESS_REVIEW_SCHEDULE": "0 25 1 1 *"},
                          tmp_path=tmp_path)  # fmt: skip
    period = run_manage("check", env={"DJANGO_DEBUG": "true", "PROVENANT_ACCESS_REVIEW_UNUSED_DAYS": "0"},
                        tmp_path=tmp_path)  # fmt: skip

    assert schedule.returncode != 0
    assert "PROVENANT_ACCESS_REVIEW_SCHEDULE='0 25 1 1 *' is not a valid crontab" in schedule.stderr
    assert period.returncode != 0
    assert "PROVENANT_ACCESS_REVIEW_UNUSED_DAYS=0 must be a positive whole number" in period.stderr


def test_a_comment_with_a_nul_or_beyond_the_limit_is_refused(reviewed):
    campaign = AccessReviewCampaignFactory(project=reviewed.project)
    item = campaign.items.filter(decision="pending").first()

    for comment in ("bad\x00comment", "x" * 10_001):
        with pytest.raises(InvalidInput, match="at most 10,000 characters"):
            item_decide(item=item, decision=REVOKE, comment=comment, decided_by=item.reviewer)
