"""The portal in a real browser: Debian's headless Chromium driven by Playwright, against a real server process
serving `make run`'s demo data, the way a reviewer meets it.

The server is its own process with its own SQLite file (never the test database), loaded once per session by
`manage.py load_demo` and served with DEBUG off (the portal's own 404 and 500 pages, static files through
`runserver --insecure`). Tests talk to it only through the browser. Where Chromium is missing the tests skip, except
under CI=true, where they fail: .ci/run installs the package.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("PROVENANT_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "provenant-demo"  # the demo's published password (artifacts/demo.py)
STARTUP_SECONDS = 60

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(var_dir: Path, *, debug: bool) -> dict[str, str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PROVENANT_", "DATABASE_URL", "CELERY_"))
    }
    return clean | {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PROVENANT_VAR_DIR": str(var_dir),
        "DJANGO_DEBUG": "true" if debug else "false",
        "DJANGO_SECRET_KEY": "browser-tests-only-" + "k" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "PROVENANT_HTTPS": "false",
    }


def _manage(*args: str, var_dir: Path, debug: bool = True) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_environment(var_dir, debug=debug),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


# A user with no role anywhere, for the "not yours to see" test: the demo has none.
OUTSIDER = (
    "from django.contrib.auth import get_user_model; "
    f"get_user_model().objects.create_user('outsider', 'outsider@example.com', '{PASSWORD}')"
)


@pytest.fixture(scope="session")
def portal(tmp_path_factory) -> Iterator[str]:
    """The base URL of a server on the demo data."""
    var_dir = tmp_path_factory.mktemp("portal")
    _manage("migrate", "--noinput", var_dir=var_dir)
    _manage("load_demo", var_dir=var_dir)
    _manage("shell", "-c", OUTSIDER, var_dir=var_dir)
    port = _free_port()
    log = (var_dir / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"],
        cwd=ROOT,
        env=_environment(var_dir, debug=False),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"The portal's server did not start:\n{(var_dir / 'server.log').read_text()}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)
        log.close()


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is not at {CHROMIUM}: CI must install Debian's chromium (.ci/run does).")
        pytest.skip(f"Chromium is not at {CHROMIUM} (apt-get install chromium); browser tests skipped.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


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
