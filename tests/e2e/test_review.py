"""A reviewer's day in a real browser: the promotion waiting for them, decided on its page, and the model showing
the new production version; a stranger to the project meets 404."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def test_the_requester_sees_why_they_cannot_approve_their_own_request(page):
    """First in this file: the next test decides the demo's waiting request, and the server is shared."""
    sign_in(page, "dana")
    page.goto("/promotions/")
    page.get_by_role("link", name=re.compile(r"^#\d+$")).first.click()

    expect(page.locator("#why-not")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)


def test_a_reviewer_approves_the_waiting_promotion_and_the_model_shows_it_in_production(page):
    sign_in(page, "sam")
    screenshot(page, "dashboard")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Promotions").click()
    page.get_by_role("link", name=re.compile(r"^#\d+$")).first.click()
    expect(page.get_by_role("heading", name=re.compile(r"v2 of fraud-scorer → production"))).to_be_visible()
    expect(page.get_by_text("1 of 2").first).to_be_visible()
    screenshot(page, "promotion-request")

    page.get_by_label("Comment (optional)").fill("AUC holds on the held-out week; lineage complete.")
    page.get_by_role("button", name="Approve").click()

    expect(page.get_by_text(re.compile(r"is now in production"))).to_be_visible()
    page.goto("/models/")
    page.get_by_role("link", name="fraud-scorer").first.click()
    versions = page.locator("#versions + * table, #versions ~ .table-wrap table").first
    assert re.search(r"2\s+production", versions.inner_text(), re.IGNORECASE), versions.inner_text()
    screenshot(page, "model")


def test_a_user_without_rights_meets_404_for_a_models_page(page):
    sign_in(page, "rui")
    page.goto("/models/")
    page.get_by_role("link", name="fraud-scorer").first.click()
    model_path = page.url.removeprefix(page.url.split("/models/")[0])
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, "outsider")
    response = page.goto(model_path)

    assert response.status == 404
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    screenshot(page, "not-found")
