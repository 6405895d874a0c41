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


def _inside(inner: dict, outer: dict) -> bool:
    return (
        inner["x"] >= outer["x"] - 0.5
        and inner["y"] >= outer["y"] - 0.5
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5
    )


def _open_model_version(page) -> None:
    sign_in(page, "rui")
    page.goto("/search/?q=evaluation")
    page.locator("main a[href^='/versions/']").first.click()


def test_the_lineage_picture_fits_its_frame_at_1280_with_this_version_in_view(page):
    _open_model_version(page)
    frame = page.locator("#lineage .zoom-view")
    current = frame.locator(".node.current rect")

    expect(current).to_be_visible()
    frame_box = frame.bounding_box()
    assert frame.evaluate("(view) => view.scrollWidth <= view.clientWidth + 1")
    assert _inside(page.locator("#lineage svg").bounding_box(), frame_box)
    assert _inside(current.bounding_box(), frame_box)


def test_zooming_keeps_this_version_in_view_and_fit_returns_to_the_whole_picture(page):
    _open_model_version(page)
    frame = page.locator("#lineage .zoom-view")
    current = frame.locator(".node.current rect")
    fitted_width = current.bounding_box()["width"]
    tools = page.get_by_role("group", name="Lineage picture size")

    for _ in range(3):
        tools.get_by_role("button", name="Zoom in").click()

    assert current.bounding_box()["width"] > fitted_width * 1.5
    assert _inside(current.bounding_box(), frame.bounding_box())
    # Dragging the picture to the right pans to what lies left of this version (its inputs).
    before = frame.evaluate("(view) => view.scrollLeft")
    assert before > 0
    box = frame.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 120, box["y"] + 10, steps=5)
    page.mouse.up()
    assert frame.evaluate("(view) => view.scrollLeft") < before

    tools.get_by_role("button", name="Fit").click()
    expect(tools.get_by_role("button", name="Fit")).to_have_attribute("aria-pressed", "true")
    assert abs(current.bounding_box()["width"] - fitted_width) < 1


def test_a_reviewer_follows_a_file_to_its_run_its_input_data_and_its_project_without_leaving_the_portal(page):
    sign_in(page, "rui")
    page.goto("/search/?q=model")
    page.get_by_role("link", name=re.compile("^model")).first.click()
    page.locator("#producing-run a[href^='/runs/']").first.click()

    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    screenshot(page, "run")
    page.locator("main a[href^='/datasets/versions/']").first.click()

    expect(page).to_have_url(re.compile(r"/datasets/versions/\d+/$"))
    screenshot(page, "dataset-version")
    page.locator("main a[href^='/projects/']").first.click()

    expect(page).to_have_url(re.compile(r"/projects/[\w-]+/$"))
    screenshot(page, "project")
    assert "/api/" not in page.url
