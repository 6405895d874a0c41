"""An auditor in a real browser: filter the audit trail, open an entry and its proof, export the filtered view, and
check the export with the standalone verifier."""

import json
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in
from tools.audit_verify import verify_filtered_export

pytestmark = pytest.mark.browser


def test_an_auditor_filters_the_trail_and_exports_what_the_filter_shows(page, tmp_path):
    sign_in(page, "ada")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    page.get_by_label("Action").fill("promotion_request.")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"action=promotion_request"))

    rows = page.locator("table tbody tr:not(.gap)")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 3
    assert all("promotion_request." in text for text in rows.all_inner_texts())
    screenshot(page, "audit")

    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download these entries")).click()
    exported = tmp_path / "audit.jsonl"
    download.value.save_as(exported)
    lines = exported.read_bytes().splitlines()
    header = json.loads(lines[0])

    assert header["filter"]["action"] == "promotion_request."
    assert len(lines) - 1 == header["entries"] >= 3
    verify_filtered_export(lines)  # raises, naming the line, if anything fails to verify

    page.get_by_role("link", name=re.compile(r"^\d+$")).first.click()
    expect(page.get_by_text(re.compile("inclusion proof", re.IGNORECASE)).first).to_be_visible()


#: For every element matching the selector: its text, and each place a line of it starts after a character other
#: than '.' or '_' (a break inside a word); and how many of them run over more than one line.
LINE_BREAKS = """selector => {
  const result = {midWord: [], wrapped: 0, checked: 0};
  for (const element of document.querySelectorAll(selector)) {
    const chars = [];
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.length; i++) {
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        if (rect) chars.push({c: node.data[i], top: rect.top});
      }
    }
    result.checked += 1;
    let lines = 1;
    for (let i = 1; i < chars.length; i++) {
      if (chars[i].top > chars[i - 1].top + 2) {
        lines += 1;
        if (!'._'.includes(chars[i - 1].c)) result.midWord.push(element.textContent + ' breaks before ' + chars[i].c);
      }
    }
    if (lines > 1) result.wrapped += 1;
  }
  return result;
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_action_object_and_field_names_wrap_only_after_a_dot_or_underscore(browser, portal, width):
    context = browser.new_context(base_url=portal, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, "ada")
    wrapped = 0
    try:
        for path in ("/audit/?action=promotion_request.", "/audit/?action=registered_model.created", "/audit/actions/"):
            page.goto(path)
            breaks = page.evaluate(LINE_BREAKS, ".audit-name")
            assert breaks["checked"] > 0, path
            assert breaks["midWord"] == [], f"{path} at {width}px: {breaks['midWord'][:5]}"
            wrapped += breaks["wrapped"]
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0, path
        page.goto("/audit/?action=registered_model.created")
        page.get_by_role("link", name=re.compile(r"^\d+$")).first.click()
        field = page.locator("table.changes th[scope=row]").first
        expect(field).to_be_visible()
        assert field.evaluate("element => getComputedStyle(element).textTransform") == "none"
        assert page.evaluate(LINE_BREAKS, ".audit-name")["midWord"] == []
        if width == 390:
            assert wrapped > 0, "at phone width some names should wrap, after a dot or an underscore"
    finally:
        context.close()


def test_the_action_filters_help_leads_to_the_glossary_of_actions_and_events(page):
    sign_in(page, "ada")
    page.goto("/audit/")

    page.get_by_role("link", name="every action").click()

    expect(page.get_by_role("heading", name="Audit actions and webhook events")).to_be_visible()
    approval = page.locator("tr", has=page.locator("code", has_text="promotion_request.approved_by_reviewer"))
    expect(approval).to_contain_text("promotion.approved")
    approval.get_by_role("link", name="its entries").click()
    page.wait_for_url(re.compile(r"action=promotion_request.approved_by_reviewer"))
    expect(page.locator("table tbody tr:not(.gap)").first).to_contain_text("promotion_request.approved_by_reviewer")


def test_an_auditor_opens_an_entrys_object_and_the_glossary_of_actions_from_the_trail(page):
    sign_in(page, "ada")
    page.goto("/audit/?action=promotion_request.")

    object_link = page.locator("table tbody tr:not(.gap) a.object-label").first
    expect(object_link).to_be_visible()
    href = object_link.get_attribute("href")
    assert href.startswith(("/promotions/", "/models/", "/versions/")), href
    object_link.click()
    expect(page).to_have_url(re.compile(re.escape(href) + "$"))

    page.goto("/audit/actions/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.locator("main")).to_contain_text("promotion_request.approved")
    screenshot(page, "audit-actions")
