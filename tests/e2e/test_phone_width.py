"""The portal at phone width: no page scrolls sideways as a whole (wide tables scroll inside their frame)."""

import pytest

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
