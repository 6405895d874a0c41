"""A security key as a second factor, in a real browser: Chromium's virtual authenticator (the DevTools protocol's
WebAuthn domain) stands in for the key. Added at /accounts/2fa/webauthn/add/, it is then asked for after the password
at the next sign-in. The portal is reached as localhost: WebAuthn takes a domain, never an IP address."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def keyed_page(browser, portal, csp_violations):
    """A fresh context on the portal at localhost with a virtual USB security key that the person touches at once
    (user presence and verification simulated), failing the test on any Content-Security-Policy refusal."""
    context = browser.new_context(base_url=portal.replace("127.0.0.1", "localhost"))
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on(
        "console",
        lambda message: (
            csp_violations.append(f"{page.url}: {message.text}") if "Content Security Policy" in message.text else None
        ),
    )
    devtools = context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    added = devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    yield page, devtools, added["authenticatorId"]
    context.close()
    if csp_violations:
        pytest.fail("The browser refused content under the CSP:\n" + "\n".join(csp_violations))


def test_a_security_key_added_is_asked_for_at_the_next_sign_in(keyed_page):
    page, devtools, authenticator = keyed_page
    sign_in(page, "keyholder")  # a person of no role: nobody sends them to enrol, they choose to

    page.goto("/accounts/2fa/webauthn/add/")
    page.get_by_label("Name").fill("virtual key")
    page.locator("#mfa_webauthn_add").click()
    page.wait_for_url(lambda url: "/webauthn/add/" not in url)
    [key] = devtools.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]

    page.goto("/")
    page.get_by_role("button", name="Sign out").click()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("keyholder")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/accounts/2fa/authenticate/")
    expect(page.get_by_role("heading", name="Sign in: second factor")).to_be_visible()

    page.get_by_role("button", name="Use a security key or passkey").click()

    page.wait_for_url(lambda url: "/accounts/" not in url)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    [used] = devtools.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert used["signCount"] > key["signCount"]  # the key signed this sign-in
