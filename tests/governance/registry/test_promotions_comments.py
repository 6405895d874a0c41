"""A promotion request's discussion (governance/registry/services/promotions.py `promotion_comment_add` and the API's
`/promotions/{id}/comments/`): whoever may see the request may comment, a comment is audited and never rewritten,
and it decides nothing. Also when approval was last weighed, which the request's page shows beside those gates."""

import pytest
from django.core.exceptions import ValidationError

from artifacts.access.roles import Role
from core.errors import InvalidInput, NotAllowed
from core.models import Event
from governance.registry.gates import metric_directions
from governance.registry.models import PromotionComment, PromotionRequest
from governance.registry.services.promotions import (
    MAX_COMMENT_CHARS,
    promotion_approve,
    promotion_comment_add,
    promotion_withdraw,
)
from tests.artifacts.factories import UserFactory, grant
from tests.governance.registry.promotions import changes, fresh, recorded, refused, request_for, reviewer_of
from tests.pages import queries_for

pytestmark = pytest.mark.django_db

PROMOTIONS = "/api/v1/promotions/"


def comments_url(request: PromotionRequest) -> str:
    return f"{PROMOTIONS}{request.pk}/comments/"


def viewer_of(obj):
    return grant(Role.VIEWER, on=obj).user


# The service -------------------------------------------------------------------------------------------------------


def test_a_viewer_comments_and_the_log_records_it_without_its_text(version):
    request = request_for(version)
    viewer = viewer_of(version.registered_model.project)
    events_before = Event.objects.count()

    comment = promotion_comment_add(request=request, author=viewer, body="  Was the holdout week labelled yet?  ")

    assert (comment.body, comment.author, comment.request) == ("Was the holdout week labelled yet?", viewer, request)
    (entry,) = recorded("promotion_request.commented")
    assert (entry.actor_user_id, entry.object_type, entry.object_id) == (
        viewer.pk,
        "promotion_request",
        str(request.pk),
    )
    assert changes(entry) == {"comment": comment.pk, "state": "open"}
    assert "holdout" not in entry.changes
    assert Event.objects.count() == events_before  # nothing new is announced to webhooks


def test_a_comment_decides_nothing(version):
    request = request_for(version)

    promotion_comment_add(request=request, author=reviewer_of(version.registered_model.project), body="Looks fine.")

    request = fresh(request)
    assert (request.state, request.decisions.count(), request.gates_at_decision) == ("open", 0, [])


@pytest.mark.parametrize("body", ["", "   \n\t "])
def test_an_empty_comment_is_refused_with_a_message(version, body):
    with pytest.raises(InvalidInput, match="the comment is empty") as refusal:
        promotion_comment_add(request=request_for(version), author=UserFactory(is_superuser=True), body=body)

    assert refusal.value.field == "body"
    assert not PromotionComment.objects.exists()


def test_a_comment_too_long_is_refused(version):
    with pytest.raises(InvalidInput, match="at most"):
        promotion_comment_add(
            request=request_for(version), author=UserFactory(is_superuser=True), body="x" * (MAX_COMMENT_CHARS + 1)
        )


def test_someone_who_may_not_see_the_request_may_not_comment(version):
    with pytest.raises(NotAllowed):
        promotion_comment_add(request=request_for(version), author=UserFactory(), body="Hello?")

    assert not PromotionComment.objects.exists()
    assert not recorded("promotion_request.commented")


def test_a_closed_request_can_still_be_discussed(version):
    request = request_for(version)
    promotion_withdraw(request=request, withdrawn_by=request.requested_by)

    comment = promotion_comment_add(request=fresh(request), author=request.requested_by, body="Withdrawn: wrong data.")

    assert comment.pk is not None
    assert changes(recorded("promotion_request.commented")[0])["state"] == "withdrawn"


def test_comments_cannot_be_rewritten_or_deleted(version):
    comment = promotion_comment_add(request=request_for(version), author=UserFactory(is_superuser=True), body="Hi.")

    refused(lambda: PromotionComment.objects.filter(pk=comment.pk).update(body="Edited."))
    refused(lambda: PromotionComment.objects.filter(pk=comment.pk).delete())

    assert fresh(comment).body == "Hi."


def test_the_database_refuses_an_empty_comment(version):
    comment = PromotionComment(
        request=request_for(version), author=UserFactory(), body="", created_at=version.created_at
    )

    with pytest.raises(ValidationError):
        comment.full_clean()
    refused(lambda: PromotionComment.objects.bulk_create([comment]))


# When approval was last weighed ------------------------------------------------------------------------------------


def test_weighing_an_approval_records_when_it_was_weighed(version):
    request = request_for(version)
    assert request.gates_weighed_at is None

    weighed = promotion_approve(request=request, reviewer=reviewer_of(version.registered_model.project))

    weighed = fresh(weighed)
    assert weighed.gates_at_decision
    assert weighed.gates_weighed_at is not None
    assert weighed.gates_weighed_at >= weighed.decisions.get().decided_at


# Which way a metric should move ------------------------------------------------------------------------------------


def test_a_thresholds_operator_says_which_way_a_metric_is_better():
    thresholds = [
        {"metric": "auc", "operator": ">=", "value": 0.9},
        {"metric": "recall", "operator": ">", "value": 0.2},
        {"metric": "latency_ms", "operator": "<=", "value": 50},
        {"metric": "log_loss", "operator": "<", "value": 0.2},
        {"metric": "classes", "operator": "==", "value": 2},
        {"metric": "calibration", "operator": ">=", "value": 0.9},
        {"metric": "calibration", "operator": "<=", "value": 1.1},
    ]

    assert metric_directions(thresholds) == {
        "auc": "higher",
        "recall": "higher",
        "latency_ms": "lower",
        "log_loss": "lower",
    }


# The API -----------------------------------------------------------------------------------------------------------


def test_the_api_adds_and_lists_comments_newest_first(version, api_as):
    request = request_for(version)
    viewer = viewer_of(version.registered_model.project)
    client = api_as(viewer)

    first = client.post(comments_url(request), {"body": "Which holdout?"}, format="json")
    second = client.post(comments_url(request), {"body": "The last week of October."}, format="json")
    listed = client.get(comments_url(request))

    assert first.status_code == 201, first.content
    assert first.json() == {
        "id": first.json()["id"],
        "author": viewer.username,
        "body": "Which holdout?",
        "created_at": first.json()["created_at"],
    }
    assert listed.status_code == 200
    assert [comment["body"] for comment in listed.json()["results"]] == [second.json()["body"], "Which holdout?"]
    assert len(recorded("promotion_request.commented")) == 2


@pytest.mark.parametrize("body", [{"body": ""}, {"body": "   "}, {}, {"body": "x" * (MAX_COMMENT_CHARS + 1)}])
def test_the_api_refuses_an_empty_or_long_comment_with_a_400(version, api_as, body):
    response = api_as(UserFactory(is_superuser=True)).post(comments_url(request_for(version)), body, format="json")

    assert response.status_code == 400, response.content
    assert "body" in response.content.decode()
    assert not PromotionComment.objects.exists()


def test_the_api_answers_404_to_whoever_may_not_see_the_request(version, api_as):
    request = request_for(version)
    promotion_comment_add(request=request, author=UserFactory(is_superuser=True), body="Secret context.")
    stranger = api_as(UserFactory())

    assert stranger.get(comments_url(request)).status_code == 404
    assert stranger.post(comments_url(request), {"body": "Hello?"}, format="json").status_code == 404
    assert PromotionComment.objects.count() == 1


def test_listing_comments_costs_no_more_queries_for_ten_than_for_one(version, api_as, django_assert_max_num_queries):
    request = request_for(version)
    client = api_as(UserFactory(is_superuser=True))
    promotion_comment_add(request=request, author=UserFactory(is_superuser=True), body="One.")
    one = queries_for(client, comments_url(request))

    for number in range(9):
        promotion_comment_add(request=request, author=UserFactory(is_superuser=True), body=f"Comment {number}.")

    with django_assert_max_num_queries(one):
        assert len(client.get(comments_url(request)).json()["results"]) == 10
