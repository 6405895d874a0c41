"""Every kind of portal page passes axe-core (WCAG 2.x A and AA, and axe's best practices) with no violation, at
desktop and at phone width, signed in as a demo user who may see it; a few of them in dark mode too, where the
colour contrast is checked against the dark palette."""

import re
from dataclasses import dataclass

import pytest

from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass(frozen=True)
class PageKind:
    """How to reach one kind of page: who signs in (None: nobody), where they start, and, for a page whose address
    holds an id, the pattern of the first link on the start page that leads to it."""

    user: str | None
    start: str
    follow: str | tuple[str, ...] | None = None  # several: a link on each page reached, in turn
    then: str = ""  # appended to the followed link (a query string, a sub-page)


PAGE_KINDS = {
    "dashboard": PageKind("rui", "/"),
    "models list": PageKind("rui", "/models/"),
    "model detail": PageKind("rui", "/models/", r"^/models/\d+/$"),
    "compare": PageKind("rui", "/models/", r"^/models/\d+/$", then="compare/?a=1&b=2"),
    "promotions list": PageKind("rui", "/promotions/"),
    "promotion detail": PageKind("rui", "/promotions/", r"^/promotions/\d+/$"),
    "version page": PageKind("rui", "/search/?q=evaluation", r"^/versions/\d+/$"),
    "search": PageKind("rui", "/search/?q=fraud"),
    "project": PageKind("rui", "/projects/fraud-detection/"),
    "run": PageKind("rui", "/projects/fraud-detection/", r"^/runs/\d+/$"),
    "dataset": PageKind("rui", "/projects/fraud-detection/", r"^/datasets/\d+/$"),
    "dataset version": PageKind("rui", "/projects/fraud-detection/", (r"^/datasets/\d+/$", r"^/datasets/versions/")),
    "awaiting me": PageKind("sam", "/inbox/"),
    "audit actions": PageKind("ada", "/audit/actions/"),
    "audit list": PageKind("ada", "/audit/"),
    "audit entry": PageKind("ada", "/audit/", r"^/audit/\d+/$"),
    "audit verify": PageKind("ada", "/audit/verify/"),
    "access reviews": PageKind("mara", "/access-reviews/"),
    "review report": PageKind("mara", "/access-reviews/", r"^/access-reviews/\d+/$"),
    "lifecycle project": PageKind("mara", "/projects/fraud-detection/lifecycle/"),
    "retention plan": PageKind("mara", "/projects/fraud-detection/lifecycle/", r"/lifecycle/plans/\d+/$"),
    "login": PageKind(None, "/accounts/login/"),
    "404": PageKind("rui", "/no-such-page/"),
}


def _open(page, kind: PageKind) -> None:
    if kind.user is not None:
        sign_in(page, kind.user)
    page.goto(kind.start)
    steps = (kind.follow,) if isinstance(kind.follow, str) else kind.follow or ()
    for number, pattern in enumerate(steps, 1):
        hrefs = page.eval_on_selector_all("main a[href]", "(links) => links.map((a) => a.getAttribute('href'))")
        target = next((href for href in hrefs if re.search(pattern, href.split("?")[0])), None)
        assert target is not None, f"no link matching {pattern} on {page.url}"
        page.goto(target.split("?")[0] + kind.then if kind.then and number == len(steps) else target)
    assert page.locator("main").count() == 1


@pytest.fixture
def sized_page(browser, portal, csp_violations, request):
    """A page of the size (and colour scheme) the test is parametrised with; the CSP is watched as on `page`."""
    viewport, scheme = request.param
    context = browser.new_context(base_url=portal, viewport=viewport, is_mobile=viewport is PHONE, color_scheme=scheme)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("console", lambda m: csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
    yield page
    context.close()
    if csp_violations:
        pytest.fail("The browser refused content under the CSP:\n" + "\n".join(csp_violations))


@pytest.mark.parametrize("kind", PAGE_KINDS)
@pytest.mark.parametrize("sized_page", [(DESKTOP, "light"), (PHONE, "light")], ids=["desktop", "phone"], indirect=True)
def test_every_page_kind_has_no_accessibility_violation(sized_page, kind):
    _open(sized_page, PAGE_KINDS[kind])
    assert_accessible(sized_page)


DARK_KINDS = [
    "dashboard",
    "model detail",
    "promotion detail",
    "version page",
    "audit list",
    "lifecycle project",
    "login",
]


@pytest.mark.parametrize("kind", DARK_KINDS)
@pytest.mark.parametrize("sized_page", [(DESKTOP, "dark")], ids=["desktop-dark"], indirect=True)
def test_dark_mode_keeps_every_colour_contrast(sized_page, kind):
    _open(sized_page, PAGE_KINDS[kind])
    assert sized_page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    assert_accessible(sized_page)
