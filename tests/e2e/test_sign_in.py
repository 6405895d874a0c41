"""Signing in and out of the portal in a real browser, and what a stranger to a project sees."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_signing_in_lands_on_the_dashboard_and_signing_out_returns_to_the_sign_in_page(page):
    page.goto("/")
    assert "/accounts/login/" in page.url  # the portal asks who you are first
    screenshot(page, "sign-in")

    sign_in(page, "rui")

    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/")


def test_a_wrong_password_is_refused_with_a_message_and_no_session(page):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("rui")
    page.get_by_label("Password").fill("not " + PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_be_visible()
    assert "/accounts/login/" in page.url


def test_the_sign_in_form_is_usable_with_the_keyboard_alone(page):
    page.goto("/accounts/login/")
    expect(page.get_by_label("Username")).to_be_focused()  # on arrival, without a click
    page.keyboard.type("dana")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")

    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
