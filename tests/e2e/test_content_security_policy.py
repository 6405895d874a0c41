"""The pages that run scripts keep working under the strict Content-Security-Policy, in a real browser: the API's
interactive docs (Swagger UI) and the admin. Every browser test also fails on any CSP refusal (tests/e2e/conftest.py);
the last test here proves that such a refusal is seen."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser


def test_the_api_docs_draw_every_operation_and_try_one_out_with_the_session(page):
    sign_in(page, "admin")
    page.goto("/api/v1/docs/")

    operation = page.locator(".opblock-summary-path", has_text="/api/v1/audit/public-key/").first
    expect(operation).to_be_visible()
    operation.click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()

    expect(page.locator(".live-responses-table tbody .response-col_status").first).to_contain_text("200")
    expect(page.locator(".live-responses-table tbody .response-col_description").first).to_contain_text("Ed25519")


def test_the_admin_works_with_its_scripts(page):
    sign_in(page, "admin")
    page.goto("/admin/core/auditentry/")
    expect(page.locator("#result_list")).to_be_visible()

    page.goto("/admin/artifacts/project/")
    page.locator("#result_list tbody th a").first.click()
    expect(page.locator("#content-main form")).to_be_visible()
    # admin/js/theme.js (a file) switches the colour theme: scripts run.
    page.locator(".theme-toggle").first.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")


def test_an_inline_script_is_refused_and_the_refusal_is_seen(page, csp_violations):
    sign_in(page, "rui")
    csp_violations.expected = True

    page.evaluate(
        """() => { const s = document.createElement("script"); s.textContent = "window.ran = 1";
        document.body.appendChild(s); }"""
    )

    assert page.evaluate("() => window.ran") is None
    page.wait_for_timeout(200)
    assert any("script-src 'self'" in violation for violation in csp_violations), csp_violations
