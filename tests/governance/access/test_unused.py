"""The "unused" flag of an access review: a grant is unused only when its holder did nothing in the project, in the
window before the review opened, that the audit log records. Each kind of activity a role allows is tried alone, done
the day before the review opens, and must clear the flag; the same act elsewhere must not."""

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from artifacts.access.roles import Role
from artifacts.services.uploads import upload_session_start
from governance.access.models import AccessReviewItem
from governance.lifecycle.services.holds import legal_hold_place
from governance.lifecycle.services.policies import retention_policy_set
from governance.registry.services.promotions import promotion_approve
from governance.registry.services.registry import promotion_policy_set
from tests.artifacts.factories import BlobFactory, ProjectFactory, UserFactory, grant
from tests.governance.factories import AccessReviewCampaignFactory, PromotionRequestFactory

pytestmark = pytest.mark.django_db


@contextmanager
def days_ago(days: float) -> Iterator[None]:
    """Act `days` in the past: the audit log records the act then."""
    with mock.patch("django.utils.timezone.now", return_value=timezone.now() - timedelta(days=days)):
        yield


def downloads_bytes(project, user) -> None:
    client = Client()
    client.force_login(user)
    blob = BlobFactory(project=project)
    response = client.get(f"/api/v1/projects/{project.slug}/blobs/{blob.prefixed_digest}")
    assert response.status_code == 200
    b"".join(response.streaming_content) if response.streaming else response.content


def exports_the_audit_log(project, user) -> None:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("portal:audit-export"))
    assert response.status_code == 200
    b"".join(response.streaming_content)


def changes_a_promotion_policy(project, user) -> None:
    promotion_policy_set(project=project, stage="production", changed_by=user, approvals_required=2)


def changes_the_retention_rules(project, user) -> None:
    retention_policy_set(project=project, changed_by=user, auto_apply=True)


def places_a_legal_hold(project, user) -> None:
    legal_hold_place(project=project, placed_by=user, reason="Litigation hold.")


def grants_a_role(project, user) -> None:
    grant(Role.VIEWER, on=project, granted_by=user)


def approves_a_promotion(project, user) -> None:
    promotion_approve(request=PromotionRequestFactory(model_version__registered_model__project=project), reviewer=user)


def uploads(project, user) -> None:
    digest = "sha256:" + hashlib.sha256(os.urandom(8)).hexdigest()
    upload_session_start(project=project, digest=digest, size=8, created_by=user)


ACTIVITIES: list[tuple[str, Callable]] = [
    (Role.VIEWER, downloads_bytes),
    (Role.AUDITOR, exports_the_audit_log),
    (Role.MAINTAINER, changes_a_promotion_policy),
    (Role.MAINTAINER, changes_the_retention_rules),
    (Role.MAINTAINER, places_a_legal_hold),
    (Role.MAINTAINER, grants_a_role),
    (Role.REVIEWER, approves_a_promotion),
    (Role.CONTRIBUTOR, uploads),
]


@pytest.fixture
def team():
    """Project `churn` with a maintainer who does nothing (so the others are never its only maintainer), and a
    second project `other` where everyone holds the same role."""
    project, other = ProjectFactory(slug="churn"), ProjectFactory(slug="other")
    for on in (project, other):
        grant(Role.MAINTAINER, on=on, user=UserFactory(username=f"keeper-{on.slug}"))
    return SimpleNamespace(project=project, other=other)


def item_of(campaign, user) -> AccessReviewItem:
    return campaign.items.select_related("campaign").get(grantee_user=user)


@pytest.mark.parametrize(("role", "act"), ACTIVITIES, ids=[act.__name__ for _, act in ACTIVITIES])
def test_each_kind_of_activity_the_day_before_opening_means_used(team, role, act):
    person = grant(role, on=team.project).user
    with days_ago(1):
        act(team.project, person)

    item = item_of(AccessReviewCampaignFactory(project=team.project), person)

    assert item.last_activity_at is not None
    assert timezone.now() - timedelta(days=1, minutes=5) < item.last_activity_at < timezone.now()
    assert not item.is_unused
    assert item not in AccessReviewItem.objects.unused()


@pytest.mark.parametrize(
    ("role", "act"),
    [(role, act) for role, act in ACTIVITIES if act is not exports_the_audit_log],
    ids=[act.__name__ for _, act in ACTIVITIES if act is not exports_the_audit_log],
)
def test_the_same_activity_in_another_project_leaves_the_grant_unused(team, role, act):
    person = grant(role, on=team.project).user
    grant(role, on=team.other, user=person)
    with days_ago(1):
        act(team.other, person)

    item = item_of(AccessReviewCampaignFactory(project=team.project), person)

    assert item.last_activity_at is None
    assert item.is_unused
    assert item in AccessReviewItem.objects.unused()


def test_an_export_of_the_log_counts_only_where_the_person_audits(team):
    """An export names no project: it is the auditor role in use, on the projects they audit, not their other
    roles."""
    person = grant(Role.AUDITOR, on=team.project).user
    grant(Role.VIEWER, on=team.other, user=person)
    with days_ago(1):
        exports_the_audit_log(team.project, person)

    audited = item_of(AccessReviewCampaignFactory(project=team.project), person)
    viewed = item_of(AccessReviewCampaignFactory(project=team.other), person)

    assert not audited.is_unused
    assert viewed.is_unused


def test_activity_older_than_the_window_leaves_the_grant_unused(team, settings):
    settings.PROVENANT_ACCESS_REVIEW_UNUSED_DAYS = 30
    person = grant(Role.MAINTAINER, on=team.project).user
    with days_ago(31):
        changes_a_promotion_policy(team.project, person)

    item = item_of(AccessReviewCampaignFactory(project=team.project), person)

    assert item.last_activity_at is not None
    assert item.is_unused
