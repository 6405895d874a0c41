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


def test_after_a_refused_revocation_nothing_is_ticked_and_keep_selected_keeps_nothing(page):
    """The trap the portal had: a revocation refused for want of a comment came back with its rows still ticked,
    and "Keep selected" pressed next kept them (an auditor's grant, kept by mistake)."""
    sign_in(page, "sam")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Access reviews").click()
    boxes = page.locator("input[type=checkbox][name=items]")
    waiting = boxes.count()
    assert waiting >= 1

    boxes.nth(0).check()
    page.get_by_role("button", name="Revoke selected").click()

    expect(page.get_by_text(re.compile("needs a comment")).first).to_be_visible()
    boxes = page.locator("input[type=checkbox][name=items]")
    expect(boxes).to_have_count(waiting)
    for index in range(waiting):
        expect(boxes.nth(index)).not_to_be_checked()
    expect(page.get_by_label(re.compile(r"^All \d+ on this page$"))).not_to_be_checked()

    page.get_by_role("button", name="Keep selected").click()

    expect(page.get_by_text("Select at least one grant to keep or revoke.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Kept \d+ grant"))).to_have_count(0)
    expect(page.locator("input[type=checkbox][name=items]")).to_have_count(waiting)


def test_the_header_box_ticks_and_unticks_every_row(page):
    sign_in(page, "sam")
    page.goto("/access-reviews/")
    boxes = page.locator("input[type=checkbox][name=items]")
    every_row = page.get_by_label(re.compile(r"^All \d+ on this page$"))

    every_row.check()
    for index in range(boxes.count()):
        expect(boxes.nth(index)).to_be_checked()

    boxes.nth(0).uncheck()
    expect(every_row).not_to_be_checked()
    assert every_row.evaluate("box => box.indeterminate") == (boxes.count() > 1)

    every_row.check()
    every_row.uncheck()
    for index in range(boxes.count()):
        expect(boxes.nth(index)).not_to_be_checked()


def test_awaiting_me_counts_and_lists_the_reviewers_work(page):
    sign_in(page, "sam")
    link = page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile(r"^Awaiting me"))
    expect(link.locator(".count")).to_have_text(re.compile(r"^\d+$"))

    link.click()

    expect(page.get_by_role("heading", name=re.compile(r"^Awaiting me \(\d+\)$"))).to_be_visible()
    expect(page.get_by_role("link", name="Fraud detection: quarterly access review")).to_be_visible()
    screenshot(page, "awaiting-me")
