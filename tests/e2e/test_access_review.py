"""A maintainer recertifies access in a real browser: keep some grants in bulk, refused a revocation without a
reason, then see the campaign's report."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def test_a_maintainer_keeps_grants_in_bulk_and_a_revocation_needs_a_reason(page):
    sign_in(page, "mara")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Access reviews").click()
    boxes = page.locator("input[type=checkbox][name=items]")
    waiting = boxes.count()
    assert waiting >= 3
    screenshot(page, "access-reviews")

    boxes.nth(0).check()
    page.get_by_role("button", name="Revoke selected").click()
    expect(page.get_by_text(re.compile("needs a comment")).first).to_be_visible()

    boxes = page.locator("input[type=checkbox][name=items]")
    for index in range(2):
        boxes.nth(index).check()
    page.get_by_label("Comment").fill("Still on the fraud team.")
    page.get_by_role("button", name="Keep selected").click()

    expect(page.locator("input[type=checkbox][name=items]")).to_have_count(waiting - 2)
