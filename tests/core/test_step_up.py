"""Step-up: the most consequential acts ask for an authentication younger than PROVENANT_STEP_UP_MINUTES, in the
portal and the admin (the re-authentication page, then the form is sent again) and through the API with a session
(a 403 saying what to do); an API token is not asked. Sessions are aged by moving their sign-in time back."""

import json
from datetime import timedelta

import pytest
from allauth.mfa.totp.internal.auth import TOTP
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from artifacts.access.roles import Role
from artifacts.models import RoleGrant
from core.models import AuditEntry
from core.sessions import SIGNED_IN_AT
from governance.access.models import AccessReviewItem
from governance.lifecycle.models import LegalHold
from governance.registry.models import PromotionRequest
from tests.artifacts.factories import ProjectFactory, UserFactory, grant
from tests.core.test_accounts import SECRET, code
from tests.governance.factories import (
    AccessReviewCampaignFactory,
    LegalHoldFactory,
    PromotionRequestFactory,
    WebhookEndpointFactory,
    token_for,
)

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # UserFactory's
REAUTHENTICATE = "/accounts/reauthenticate/"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def aged(client, minutes: int = 16):
    """The session's sign-in moved `minutes` back (its last use stays now, so the idle limit is not reached)."""
    session = client.session
    session[SIGNED_IN_AT] -= minutes * 60
    session.save()
    return client


def sent_to_reauthenticate(response, next_url: str) -> bool:
    return (
        response.status_code == 302
        and response.url.startswith(f"{REAUTHENTICATE}?next=")
        and next_url in (response.url.replace("%2F", "/"))
    )


def awaiting_production():
    promotion = PromotionRequestFactory()
    reviewer = grant(Role.REVIEWER, on=promotion.registered_model.project).user
    return promotion, reviewer


def approve(client, promotion):
    return client.post(f"/promotions/{promotion.pk}/", {"action": "approve", "approve-comment": "Looks right."})


# The portal --------------------------------------------------------------------------------------------------------


def test_a_fresh_sign_in_approves_a_production_promotion_at_once(client):
    promotion, reviewer = awaiting_production()
    client.force_login(reviewer)

    assert approve(client, promotion).url == f"/promotions/{promotion.pk}/"
    assert promotion.decisions.filter(reviewer=reviewer).exists()


def test_an_old_sign_in_is_asked_to_confirm_then_the_approval_goes_through(client):
    promotion, reviewer = awaiting_production()
    client.force_login(reviewer)
    aged(client)

    refused = approve(client, promotion)

    assert sent_to_reauthenticate(refused, f"/promotions/{promotion.pk}/")
    assert not promotion.decisions.exists()
    asking = client.get(refused.url).content.decode()
    assert "Confirm it is you" in asking  # the page asking for the password, in the portal's look
    assert "portal.css" in asking

    confirmed = client.post(REAUTHENTICATE, {"password": PASSWORD, "next": f"/promotions/{promotion.pk}/"})

    assert confirmed.status_code == 302
    assert promotion.decisions.filter(reviewer=reviewer).exists()  # the suspended form was sent again
    entry = AuditEntry.objects.get(action="user.reauthenticated")
    assert (entry.actor_user_id, json.loads(entry.changes)) == (reviewer.pk, {"method": "password"})


def test_a_wrong_password_confirms_nothing(client):
    promotion, reviewer = awaiting_production()
    client.force_login(reviewer)
    aged(client)
    approve(client, promotion)

    client.post(REAUTHENTICATE, {"password": "wrong", "next": f"/promotions/{promotion.pk}/"})

    assert not promotion.decisions.exists()
    assert sent_to_reauthenticate(approve(client, promotion), f"/promotions/{promotion.pk}/")


def test_a_code_from_the_app_confirms_too(client):
    promotion, reviewer = awaiting_production()
    TOTP.activate(reviewer, SECRET)
    client.force_login(reviewer)
    aged(client)
    approve(client, promotion)
    assert "/accounts/2fa/reauthenticate/" in client.get(REAUTHENTICATE).content.decode()  # offered beside the password

    client.post("/accounts/2fa/reauthenticate/", {"code": code(), "next": f"/promotions/{promotion.pk}/"})

    assert promotion.decisions.filter(reviewer=reviewer).exists()


def test_rejecting_a_production_promotion_asks_too(client):
    promotion, reviewer = awaiting_production()
    client.force_login(reviewer)
    aged(client)

    response = client.post(f"/promotions/{promotion.pk}/", {"action": "reject", "reject-comment": "Not yet."})

    assert sent_to_reauthenticate(response, f"/promotions/{promotion.pk}/")
    promotion.refresh_from_db()
    assert promotion.state == PromotionRequest.State.OPEN


def test_a_staging_promotion_or_a_comment_asks_nothing(client):
    promotion, reviewer = awaiting_production()
    staging = PromotionRequestFactory(target_stage="staging")
    staging_reviewer = grant(Role.REVIEWER, on=staging.registered_model.project).user
    client.force_login(staging_reviewer)
    aged(client)

    assert approve(client, staging).url == f"/promotions/{staging.pk}/"
    assert staging.decisions.exists()
    client.force_login(reviewer)
    aged(client)
    comment = client.post(f"/promotions/{promotion.pk}/", {"action": "comment", "comment-body": "Which holdout?"})
    assert comment.status_code == 302
    assert not comment.url.startswith(REAUTHENTICATE)


def test_the_limit_is_the_setting(client, settings):
    settings.PROVENANT_STEP_UP_MINUTES = 60
    promotion, reviewer = awaiting_production()
    client.force_login(reviewer)
    aged(client, minutes=30)

    assert approve(client, promotion).url == f"/promotions/{promotion.pk}/"


def test_revoking_grants_in_bulk_in_an_access_review_asks(client):
    project = ProjectFactory()
    maintainer = grant(Role.MAINTAINER, on=project).user
    viewer_grant = grant(Role.VIEWER, on=project)
    campaign = AccessReviewCampaignFactory(project=project, reviewers=[maintainer])
    item = campaign.items.get(grant=viewer_grant)
    client.force_login(maintainer)
    aged(client)
    reviews = reverse("portal:access-reviews")

    response = client.post(reviews, {"items": [item.pk], "decision": "revoke", "comment": "Left the team."})

    assert sent_to_reauthenticate(response, reviews)
    assert RoleGrant.objects.filter(pk=viewer_grant.pk).exists()
    client.post(REAUTHENTICATE, {"password": PASSWORD, "next": reviews})
    assert not RoleGrant.objects.filter(pk=viewer_grant.pk).exists()
    assert AccessReviewItem.objects.get(pk=item.pk).decision == "revoke"


# The admin ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def old_admin(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return aged(client)


def choose(client, changelist: str, action: str, objects):
    return client.post(changelist, {"action": action, "_selected_action": [obj.pk for obj in objects], "index": 0})


def test_revoking_grants_in_bulk_in_the_admin_asks_then_revokes(old_admin):
    grants = [grant(Role.VIEWER, on=ProjectFactory()) for _ in range(2)]
    changelist = reverse("admin:artifacts_rolegrant_changelist")

    response = choose(old_admin, changelist, "revoke_grants", grants)

    assert sent_to_reauthenticate(response, changelist)
    assert RoleGrant.objects.filter(pk__in=[g.pk for g in grants]).count() == 2
    old_admin.post(REAUTHENTICATE, {"password": PASSWORD, "next": changelist})
    assert not RoleGrant.objects.filter(pk__in=[g.pk for g in grants]).exists()


def test_placing_and_lifting_a_legal_hold_in_the_admin_ask(old_admin):
    project = ProjectFactory()
    hold = LegalHoldFactory(project=project)
    add = reverse("admin:lifecycle_legalhold_add")
    changelist = reverse("admin:lifecycle_legalhold_changelist")

    placed = old_admin.post(add, {"project": project.pk, "reason": "Subpoena."})
    lifted = choose(old_admin, changelist, "release", [hold])

    assert sent_to_reauthenticate(placed, add)
    assert sent_to_reauthenticate(lifted, changelist)
    assert LegalHold.objects.count() == 1
    hold.refresh_from_db()
    assert hold.released_at is None


def test_break_glass_in_the_admin_asks(old_admin):
    promotion = PromotionRequestFactory()
    models = reverse("admin:registry_registeredmodel_changelist")
    requests = reverse("admin:registry_promotionrequest_changelist")

    assert sent_to_reauthenticate(choose(old_admin, models, "roll_back", [promotion.registered_model]), models)
    assert sent_to_reauthenticate(choose(old_admin, requests, "recheck_and_apply", [promotion]), requests)


def test_rotating_a_webhook_signing_secret_in_the_admin_asks(old_admin):
    endpoint = WebhookEndpointFactory(url="https://93.184.215.14/hooks")  # a public address: no DNS, nothing sent
    changelist = reverse("admin:webhooks_webhookendpoint_changelist")
    before = endpoint.secrets.count()

    assert sent_to_reauthenticate(choose(old_admin, changelist, "rotate_secrets", [endpoint]), changelist)
    assert endpoint.secrets.count() == before


# The API -----------------------------------------------------------------------------------------------------------


def test_an_old_session_is_refused_by_the_api_with_what_to_do(client):
    promotion, reviewer = awaiting_production()
    client.force_login(reviewer)
    aged(client)

    response = client.post(f"/api/v1/promotions/{promotion.pk}/approve/", {}, content_type="application/json")

    assert response.status_code == 403
    assert "/accounts/reauthenticate/" in response.json()["detail"]
    assert not promotion.decisions.exists()


def test_an_api_token_is_not_asked(client):
    promotion, reviewer = awaiting_production()

    response = client.post(
        f"/api/v1/promotions/{promotion.pk}/approve/",
        {},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_for(reviewer, lifetime=timedelta(days=1))}",
    )

    assert response.status_code == 200
    assert promotion.decisions.filter(reviewer=reviewer).exists()


def test_an_old_session_cannot_place_a_legal_hold_through_the_api(client):
    project = ProjectFactory()
    auditor = grant(Role.AUDITOR, on=project).user
    client.force_login(auditor)
    aged(client)

    response = client.post(
        "/api/v1/legal-holds/", {"project": project.slug, "reason": "Subpoena."}, content_type="application/json"
    )

    assert response.status_code == 403
    assert not LegalHold.objects.exists()


def test_the_form_sent_again_after_confirming_passes_the_admins_csrf_check_as_a_browser_sends_it():
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(UserFactory(is_staff=True, is_superuser=True))
    aged(browser)
    target = grant(Role.VIEWER, on=ProjectFactory())
    changelist = reverse("admin:artifacts_rolegrant_changelist")
    browser.get(changelist)
    token = browser.cookies["csrftoken"].value
    chosen = {"action": "revoke_grants", "_selected_action": [target.pk], "index": 0, "csrfmiddlewaretoken": token}

    assert sent_to_reauthenticate(browser.post(changelist, chosen), changelist)
    browser.get(REAUTHENTICATE)
    browser.post(
        REAUTHENTICATE,
        {"password": PASSWORD, "next": changelist, "csrfmiddlewaretoken": browser.cookies["csrftoken"].value},
    )

    assert not RoleGrant.objects.filter(pk=target.pk).exists()
