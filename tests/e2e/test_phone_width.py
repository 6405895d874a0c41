"""The portal at phone width: no page scrolls sideways as a whole (wide tables scroll inside their frame)."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

PAGES = ["/", "/models/", "/promotions/", "/search/?q=fraud", "/access-reviews/"]


@pytest.fixture
def phone(browser, portal):
    context = browser.new_context(base_url=portal, viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_the_main_pages_fit_a_phone_screen(phone):
    sign_in(phone, "rui")
    for path in PAGES:
        phone.goto(path)
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than the screen"
    phone.goto("/models/")
    phone.get_by_role("link", name="fraud-scorer").first.click()
    assert phone.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    screenshot(phone, "model-phone")


def test_at_phone_width_the_header_is_one_line_and_the_menu_opens_from_it(phone):
    sign_in(phone, "rui")
    header = phone.locator("header.top")

    assert header.bounding_box()["height"] <= 80
    menu = phone.get_by_role("navigation", name="Main")
    expect(menu).to_be_hidden()

    phone.get_by_text("Menu", exact=True).click()
    expect(menu).to_be_visible()
    expect(phone.get_by_role("button", name="Sign out")).to_be_visible()
    menu.get_by_role("link", name="Promotions").click()

    expect(phone.get_by_role("heading", name="Promotions", level=1)).to_be_visible()
    assert header.bounding_box()["height"] <= 80


def test_on_a_wide_screen_the_menu_sits_in_the_header_bar(page):
    sign_in(page, "rui")

    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Models")).to_be_visible()
    expect(page.get_by_text("Menu", exact=True)).to_be_hidden()
    assert page.locator("header.top").bounding_box()["height"] <= 60


def test_a_table_wider_than_the_phone_scrolls_from_the_keyboard(phone):
    sign_in(phone, "rui")
    phone.goto("/promotions/")
    phone.locator("main a[href^='/promotions/']").first.click()
    # The first table too wide for the phone: named and focusable, by its template or by portal.js.
    index = phone.evaluate(
        "() => [...document.querySelectorAll('.table-wrap')].findIndex((w) => w.scrollWidth > w.clientWidth + 1)"
    )
    assert index >= 0, "no table is wider than the phone on the promotion page"
    wrap = phone.locator(".table-wrap").nth(index)

    expect(wrap).to_have_attribute("tabindex", "0")
    expect(wrap).to_have_attribute("role", "region")
    assert wrap.get_attribute("aria-label")
    wrap.focus()
    phone.keyboard.press("ArrowRight")
    phone.keyboard.press("End")

    expect(wrap).to_be_focused()
    phone.wait_for_function("(wrap) => wrap.scrollLeft > 0", arg=wrap.element_handle())
