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


def test_revoking_without_a_comment_is_refused_and_keeps_the_selection(client, reviewed, campaign):
    carol = campaign.items.get(grantee_label="user carol")
    client.force_login(reviewed.bob)

    response = client.post(REVIEWS, {"items": [carol.pk], "decision": REVOKE, "comment": "  "})

    assert response.status_code == 200
    assert "Say why the grant is revoked: a revocation needs a comment." in texts(response)
    assert f'value="{carol.pk}" id="item-{carol.pk}" checked' in response.content.decode()
    carol.refresh_from_db()
    assert carol.decision == PENDING
    assert RoleGrant.objects.filter(pk=reviewed.carol_views.pk).exists()


def test_deciding_nothing_selected_says_so(client, reviewed, campaign):
    client.force_login(reviewed.bob)

    response = client.post(REVIEWS, {"decision": KEEP, "items": ["", "²", "9" * 30]})

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
    assert counts["unused"] == total  # nobody in the fixture has done anything in the project
    body = response.content.decode()
    assert "Left the team." in body
    assert "revoked" in body
    assert "unused" in body


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
