"""The portal in a real browser: Debian's headless Chromium driven by Playwright, against a real server process
serving `make run`'s demo data, the way a reviewer meets it. The `browser` fixture itself is the whole suite's
(tests/conftest.py), so one Chromium serves these tests and the MLflow UI's.

The server is its own process with its own SQLite file (never the test database), loaded once per session by
`manage.py load_demo` and served with DEBUG off (the portal's own 404 and 500 pages, static files through
`runserver --insecure`). Tests talk to it only through the browser. Where Chromium is missing the tests skip, except
under CI=true, where they fail: .ci/run installs the package.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import live_server

SCREENSHOTS = live_server.ROOT / "docs" / "screenshots"
PASSWORD = "provenant-demo"  # the demo's published password (artifacts/demo.py)

pytestmark = pytest.mark.browser


def _environment(var_dir: Path, *, debug: bool) -> dict[str, str]:
    return live_server.environment(
        var_dir,
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="true" if debug else "false",
        DJANGO_SECRET_KEY="browser-tests-only-" + "k" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",  # localhost: WebAuthn takes no IP address as its domain
        PROVENANT_HTTPS="false",
        # The demo's people sign in with its published password alone; tests/e2e/test_mfa.py turns this on itself.
        PROVENANT_MFA_REQUIRED="false",
    )


# Users with no role anywhere, which the demo has none of: `outsider` for the "not yours to see" test, and
# `keyholder`, who adds a security key in tests/e2e/test_mfa.py (the server is shared by every browser test, so a
# key added to `outsider` would put a second factor in front of the other tests' sign-in).
OUTSIDER = (
    "from django.contrib.auth import get_user_model; "
    f"get_user_model().objects.create_user('outsider', 'outsider@example.com', '{PASSWORD}'); "
    f"get_user_model().objects.create_user('keyholder', 'keyholder@example.com', '{PASSWORD}')"
)
# A retention plan of the demo's rules, made by its maintainer, so the plan page has one to show: the demo makes none.
RETENTION_PLAN = (
    "from django.contrib.auth import get_user_model; from artifacts.models import Project; "
    "from governance.lifecycle.services.plans import retention_plan_create; "
    "retention_plan_create(project=Project.objects.get(slug='fraud-detection'), "
    "created_by=get_user_model().objects.get(username='mara'))"
)


@pytest.fixture(scope="session")
def portal(tmp_path_factory) -> Iterator[str]:
    """The base URL of a server on the demo data."""
    var_dir = tmp_path_factory.mktemp("portal")
    setup = _environment(var_dir, debug=True)
    live_server.load_demo(setup)
    live_server.manage("shell", "-c", OUTSIDER, env=setup)
    live_server.manage("shell", "-c", RETENTION_PLAN, env=setup)
    with live_server.serving(_environment(var_dir, debug=False), "--insecure", log_path=var_dir / "server.log") as url:
        yield url


class CspViolations(list):
    """What Chromium refused under the Content-Security-Policy while a test ran (its console says each). A test
    that provokes one on purpose sets `expected`."""

    expected = False


@pytest.fixture
def csp_violations() -> CspViolations:
    return CspViolations()


@pytest.fixture
def page(browser, portal, csp_violations):
    """A fresh browser context (no cookies) per test, at desktop size. Whatever the test checks, a page that breaks
    the Content-Security-Policy (a script, style, image or request the browser refused) fails it: the refusal is
    silent on screen, and only the console tells."""
    context = browser.new_context(base_url=portal, viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on(
        "console",
        lambda message: (
            csp_violations.append(f"{page.url}: {message.text}") if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    context.close()
    if csp_violations and not csp_violations.expected:
        pytest.fail("The browser refused content under the CSP:\n" + "\n".join(csp_violations))


def sign_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def screenshot(page, name: str) -> None:
    """Keep a picture of the page for docs/ (the README shows them) when PROVENANT_SCREENSHOTS=1 (`make
    screenshots`); otherwise the page is still rendered to an image, so a page that cannot be drawn fails the test,
    and the checkout is left as it was."""
    image = page.screenshot(full_page=True)
    assert image.startswith(b"\x89PNG")
    if os.environ.get("PROVENANT_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / f"{name}.png").write_bytes(image)
