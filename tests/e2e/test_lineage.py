"""The lineage picture in a real browser: drawn on the version page, its nodes links that lead upstream."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def test_a_reviewer_finds_a_model_file_and_follows_its_lineage_picture_upstream(page):
    sign_in(page, "rui")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Search").click()
    page.get_by_role("searchbox").fill("evaluation")
    page.keyboard.press("Enter")
    screenshot(page, "search")
    page.get_by_role("link", name=re.compile("evaluation-report")).first.click()

    picture = page.locator("#lineage svg")
    expect(picture).to_be_visible()
    nodes = picture.locator("a")
    expect(nodes.first).to_be_visible()
    assert nodes.count() >= 4  # dataset versions, runs, and the versions they made
    assert picture.bounding_box()["width"] > 300
    screenshot(page, "artifact-version")

    page.locator("#lineage svg a[aria-label*='preprocessor']").first.click()

    expect(page.get_by_role("heading", name=re.compile("^preprocessor"))).to_be_visible()
