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
