"""The portal's access-review pages: a reviewer's pending items kept or revoked in bulk through the review
services (their refusals shown with reasons), the campaigns with progress, and a campaign's report."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from artifacts.access.roles import Role
from artifacts.models import RoleGrant
from governance.access.models import AccessReviewItem
from tests.artifacts.factories import ProjectFactory, UserFactory, grant
from tests.governance.factories import AccessReviewCampaignFactory

pytestmark = pytest.mark.django_db

REVIEWS = reverse("portal:access-reviews")
KEEP, REVOKE, PENDING = AccessReviewItem.Decision.KEEP, AccessReviewItem.Decision.REVOKE, "pending"


def report_url(campaign) -> str:
    return reverse("portal:access-review-report", args=[campaign.pk])


def texts(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def campaign(reviewed):
    """A review of project churn: bob (a maintainer) reviews every grant but his own, which the superuser who
    opened the campaign reviews."""
    return AccessReviewCampaignFactory(project=reviewed.project, reviewers=[reviewed.bob])


def items_of(campaign, reviewer) -> list[AccessReviewItem]:
    return list(campaign.items.filter(reviewer=reviewer).order_by("pk"))


def test_signing_in_is_required(client, campaign):
    for url in (REVIEWS, report_url(campaign)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("portal:login"))


def test_a_reviewer_sees_their_pending_items_and_the_campaign_with_progress(client, reviewed, campaign):
    mine = items_of(campaign, reviewed.bob)
    client.force_login(reviewed.bob)

    response = client.get(REVIEWS)

    assert response.status_code == 200
    assert [item.pk for item in response.context["page"].object_list] == [
        item.pk for item in sorted(mine, key=lambda item: (item.project.slug, item.grantee_label, item.pk))
    ]
    body = response.content.decode()
    for item in mine:
        assert f'name="items" value="{item.pk}"' in body
    [not_mine] = campaign.items.exclude(reviewer=reviewed.bob)
    assert f'value="{not_mine.pk}"' not in body
    [shown] = response.context["campaigns"]
    assert (shown.total, shown.decided, shown.mine) == (campaign.items.count(), 0, len(mine))
    assert report_url(campaign) in body


def test_bulk_keep_decides_the_checked_items(client, reviewed, campaign):
    first, second, *rest = items_of(campaign, reviewed.bob)
    client.force_login(reviewed.bob)

    response = client.post(REVIEWS, {"items": [first.pk, second.pk], "decision": KEEP, "comment": ""}, follow=True)

    assert response.redirect_chain == [(REVIEWS, 302)]
    assert "Kept 2 grants." in texts(response)
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.decision, first.decided_by, second.decision) == (KEEP, reviewed.bob, KEEP)
    assert all(item.decision == PENDING for item in rest)
    assert [item.pk for item in response.context["page"].object_list] == [item.pk for item in rest]


def test_bulk_revoke_with_a_comment_revokes_the_grants(client, reviewed, campaign):
    carol = campaign.items.get(grantee_label="user carol")
    analysts = campaign.items.get(grantee_label="group analysts")
    client.force_login(reviewed.bob)

    response = client.post(
        REVIEWS, {"items": [carol.pk, analysts.pk], "decision": REVOKE, "comment": "Left the team."}, follow=True
    )

    assert "Revoked 2 grants." in texts(response)
    carol.refresh_from_db()
    assert (carol.decision, carol.comment) == (REVOKE, "Left the team.")
    assert not RoleGrant.objects.filter(pk__in=[reviewed.carol_views.pk, reviewed.analysts_view.pk]).exists()


def test_revoking_without_a_comment_is_refused_and_nothing_stays_ticked(client, reviewed, campaign):
    carol = campaign.items.get(grantee_label="user carol")
    client.force_login(reviewed.bob)

    response = client.post(REVIEWS, {"items": [carol.pk], "decision": REVOKE, "comment": "  "})

    assert response.status_code == 400
    [refusal] = texts(response)
    assert "Say why the grant is revoked: a revocation needs a comment." in refusal
    assert "nothing is selected any more" in refusal
    body = response.content.decode()
    assert f'value="{carol.pk}" id="item-{carol.pk}"' in body
    assert " checked" not in body
    carol.refresh_from_db()
    assert carol.decision == PENDING
    assert RoleGrant.objects.filter(pk=reviewed.carol_views.pk).exists()


def test_keep_pressed_after_a_refused_revocation_keeps_nothing(client, reviewed, campaign):
    """The trap: a revocation refused for want of a comment, then "Keep selected" on the page it came back as.
    The rows came back unticked, so the keep carries no item and decides nothing."""
    auditor = campaign.items.get(grantee_label="user carol")
    client.force_login(reviewed.bob)
    client.post(REVIEWS, {"items": [auditor.pk], "decision": REVOKE, "comment": ""})

    response = client.post(REVIEWS, {"shown": [auditor.pk], "decision": KEEP, "comment": ""})

    assert response.status_code == 400
    assert any("Select at least one grant" in text for text in texts(response))
    auditor.refresh_from_db()
    assert auditor.decision == PENDING


def test_a_refused_decision_keeps_the_comment_typed(client, reviewed, campaign):
    client.force_login(reviewed.bob)

    response = client.post(REVIEWS, {"decision": REVOKE, "comment": "Left in March."})

    assert response.status_code == 400
    assert ">Left in March.</textarea>" in response.content.decode()


def test_all_on_this_page_decides_every_row_shown_and_no_other(client, reviewed, campaign):
    first, second, *rest = items_of(campaign, reviewed.bob)
    client.force_login(reviewed.bob)
    page = client.get(REVIEWS).content.decode()
    assert 'name="all_shown"' in page
    assert page.count('name="shown"') == len(items_of(campaign, reviewed.bob))

    response = client.post(
        REVIEWS, {"all_shown": "1", "shown": [first.pk, second.pk], "decision": KEEP, "comment": ""}, follow=True
    )

    assert "Kept 2 grants." in texts(response)
    assert [item.decision for item in items_of(campaign, reviewed.bob)] == [KEEP, KEEP] + [PENDING] * len(rest)


def test_the_page_loads_its_select_all_script_as_a_file(client, reviewed, campaign):
    client.force_login(reviewed.bob)

    body = client.get(REVIEWS).content.decode()

    assert '<script src="/static/portal/reviews.js" defer></script>' in body
    assert 'data-selects="items"' in body


def test_deciding_nothing_selected_says_so(client, reviewed, campaign):
    client.force_login(reviewed.bob)

    response = client.post(REVIEWS, {"decision": KEEP, "items": ["", "²", "9" * 30]})

    assert response.status_code == 400
    assert "Select at least one grant to keep or revoke." in texts(response)


def test_another_reviewers_item_is_refused_with_the_reason_and_the_rest_decided(client, reviewed, campaign):
    [bobs_own_grant] = campaign.items.exclude(reviewer=reviewed.bob)
    carol = campaign.items.get(grantee_label="user carol")
    client.force_login(reviewed.bob)

    response = client.post(REVIEWS, {"items": [bobs_own_grant.pk, carol.pk], "decision": KEEP}, follow=True)

    messages = texts(response)
    assert "Kept 1 grant." in messages
    assert any(
        text.startswith("Not decided:") and f"assigned to {campaign.opened_by.username}" in text for text in messages
    )
    bobs_own_grant.refresh_from_db(), carol.refresh_from_db()
    assert (bobs_own_grant.decision, carol.decision) == (PENDING, KEEP)


def test_revoking_a_projects_last_maintainer_is_refused_with_the_reason(client):
    project = ProjectFactory(slug="solo")
    only = grant(Role.MAINTAINER, on=project)
    item = AccessReviewCampaignFactory(project=project).items.select_related("reviewer").get(grant=only)
    client.force_login(item.reviewer)

    response = client.post(REVIEWS, {"items": [item.pk], "decision": REVOKE, "comment": "Leaving."}, follow=True)

    assert any(
        text.startswith("Not decided:") and "last maintainer of project solo" in text for text in texts(response)
    )
    item.refresh_from_db()
    assert item.decision == PENDING
    assert RoleGrant.objects.filter(pk=only.pk).exists()


def test_an_item_the_user_may_not_see_is_not_decided(client, reviewed, campaign):
    outsider = UserFactory()
    carol = campaign.items.get(grantee_label="user carol")
    client.force_login(outsider)

    response = client.post(REVIEWS, {"items": [carol.pk], "decision": KEEP}, follow=True)

    assert any("not yours to see" in text for text in texts(response))
    carol.refresh_from_db()
    assert carol.decision == PENDING


def test_someone_with_nothing_to_review_sees_clear_empty_states(client, db):
    client.force_login(UserFactory())

    body = client.get(REVIEWS).content.decode()

    assert "Nothing is waiting for you" in body
    assert "No access review covers anything you can see yet." in body


def test_the_report_shows_counts_flags_and_decisions(client, reviewed, campaign):
    carol = campaign.items.get(grantee_label="user carol")
    client.force_login(reviewed.bob)
    client.post(REVIEWS, {"items": [carol.pk], "decision": REVOKE, "comment": "Left the team."})

    response = client.get(report_url(campaign))

    assert response.status_code == 200
    total = campaign.items.count()
    counts = response.context["counts"]
    assert (counts["total"], counts["revoked"], counts["kept"], counts["pending"]) == (total, 1, 0, total - 1)
    assert counts["unused"] == total - 2  # alice and bob granted roles in the project; the others did nothing
    body = response.content.decode()
    assert "Left the team." in body
    assert "revoked" in body
    assert "unused" in body


def test_the_report_labels_say_what_each_count_counts(client, reviewed, campaign):
    """Seven grants, three decided: the report must not call all seven "reviewed"."""
    first, second, third, *_ = items_of(campaign, reviewed.bob)
    client.force_login(reviewed.bob)
    client.post(REVIEWS, {"items": [first.pk, second.pk], "decision": KEEP})
    client.post(REVIEWS, {"items": [third.pk], "decision": REVOKE, "comment": "Gone."})

    response = client.get(report_url(campaign))

    total = campaign.items.count()
    counts = response.context["counts"]
    assert (counts["total"], counts["reviewed"], counts["pending"]) == (total, 3, total - 3)
    body = " ".join(response.content.decode().split())
    assert f'<div class="stat">{total}</div><div class="muted">grants under review</div>' in body
    assert '<div class="stat">3</div><div class="muted">reviewed (kept or revoked)</div>' in body
    assert f'<div class="stat">{total - 3}</div><div class="muted">pending: not reviewed yet</div>' in body
    assert "grants reviewed" not in body


def csv_url(campaign) -> str:
    return reverse("portal:access-review-report-csv", args=[campaign.pk])


def test_staff_with_the_admin_s_view_permission_download_the_report_as_csv_from_the_portal(
    client, reviewed, campaign, staff
):
    staff(reviewed.bob, "view_accessreviewcampaign")
    client.force_login(reviewed.bob)

    page = client.get(report_url(campaign)).content.decode()
    download = client.get(csv_url(campaign))

    assert f'href="{csv_url(campaign)}"' in page
    assert "/admin/access/" not in page
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    assert download["Content-Disposition"] == f'attachment; filename="access-review-{campaign.pk}.csv"'
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert lines[0].startswith("project,grantee,role,on,")
    assert len(lines) == 1 + campaign.items.count()


@pytest.mark.parametrize("permissions", [(), ("view_project",)], ids=["not staff", "staff without the permission"])
def test_who_the_admin_would_refuse_the_csv_gets_no_link_and_a_404(client, reviewed, campaign, staff, permissions):
    if permissions:
        staff(reviewed.bob, *permissions)
    client.force_login(reviewed.bob)

    page = client.get(report_url(campaign))

    assert page.status_code == 200
    assert "Download as CSV" not in page.content.decode()
    assert client.get(csv_url(campaign)).status_code == 404


def test_the_csv_of_a_campaign_the_user_may_not_see_answers_404(client, campaign, staff):
    outsider = staff(grant(Role.VIEWER, on=ProjectFactory()).user, "view_accessreviewcampaign")
    client.force_login(outsider)

    assert client.get(csv_url(campaign)).status_code == 404


def test_a_campaign_the_user_may_not_see_answers_404(client, reviewed, campaign):
    client.force_login(grant(Role.VIEWER, on=ProjectFactory()).user)

    assert client.get(report_url(campaign)).status_code == 404
    assert client.get(reverse("portal:access-review-report", args=[10**30])).status_code == 404


def test_the_pages_cost_the_same_queries_for_1_or_10_items(client):
    def campaign_of(grantees: int):
        project = ProjectFactory()
        reviewer = grant(Role.MAINTAINER, on=project).user
        for _ in range(grantees):
            grant(Role.VIEWER, on=project)
        return AccessReviewCampaignFactory(project=project, reviewers=[reviewer]), reviewer

    def queries(url: str, user) -> int:
        client.force_login(user)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small, small_reviewer = campaign_of(1)
    large, large_reviewer = campaign_of(10)
    assert large.items.filter(reviewer=large_reviewer).count() == 10

    assert queries(REVIEWS, small_reviewer) == queries(REVIEWS, large_reviewer)
    assert queries(report_url(small), small_reviewer) == queries(report_url(large), large_reviewer)
