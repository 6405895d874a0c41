"""What browsers are told (config/settings/security.py, core/http.py): a strict Content-Security-Policy and
a Permissions-Policy granting nothing on every page, no page carrying inline code its policy would block, nothing
shown to a signed-in person kept in a cache, and the API's session cookie held to CSRF on every unsafe method."""

import base64
import hashlib
from html.parser import HTMLParser

import pytest
from django.test import Client

from core.audit.recorder import tree_head_sign
from core.models import AuditEntry
from tests.artifacts.factories import UserFactory
from tests.governance.factories import AccessReviewCampaignFactory, PromotionRequestFactory, token_for

pytestmark = pytest.mark.django_db

TREE_HEADS = "/api/v1/audit/tree-heads/"


def policy(response) -> dict[str, list[str]]:
    """The response's Content-Security-Policy as {directive: [sources]}."""
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


class InlineCode(HTMLParser):
    """What a page runs or styles from its own text: inline scripts, <style> blocks, style and on* attributes, and
    what it loads from a data: URL (an icon `data:,` is an image the policy must allow)."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.attributes: list[str] = []
        self.data_urls: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.attributes += [f"<{tag} {name}>" for name in named if name == "style" or name.startswith("on")]
        self.data_urls += [f"<{tag} {name}>" for name in ("src", "href") if (named.get(name) or "").startswith("data:")]
        # A <script> with a src runs a file; one of a data type (application/json) is never run.
        runs_inline = tag == "script" and "src" not in named and named.get("type", "text/javascript").endswith("script")
        self._open = "script" if runs_inline else "style" if tag == "style" else None
        if self._open:
            (self.scripts if self._open == "script" else self.styles).append("")

    def handle_data(self, data: str) -> None:
        if self._open:
            found = self.scripts if self._open == "script" else self.styles
            found[-1] += data

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def sha256_source(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


@pytest.fixture
def superuser_client() -> Client:
    client = Client()
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    return client


@pytest.fixture
def governed():
    """One of everything a page shows: a promotion request on a model version with lineage, an access review, and
    the audit entries their services recorded."""
    promotion = PromotionRequestFactory()
    campaign = AccessReviewCampaignFactory(project=promotion.model_version.registered_model.project)
    tree_head_sign()
    return {
        "promotion": promotion,
        "version": promotion.model_version.artifact_version,
        "model": promotion.model_version.registered_model,
        "campaign": campaign,
        "entry": AuditEntry.objects.order_by("-seq").first(),
    }


def pages(governed) -> list[str]:
    return [
        "/",
        "/models/",
        f"/models/{governed['model'].pk}/",
        "/promotions/",
        f"/promotions/{governed['promotion'].pk}/",
        f"/versions/{governed['version'].pk}/",
        "/search/?q=model",
        "/audit/",
        f"/audit/{governed['entry'].seq}/",
        "/audit/verify/",
        "/access-reviews/",
        f"/access-reviews/{governed['campaign'].pk}/",
        "/versions/999999/",
        "/admin/",
        "/admin/core/auditentry/",
        f"/admin/core/auditentry/{governed['entry'].pk}/change/",
        "/admin/artifacts/project/",
        f"/admin/artifacts/project/{governed['model'].project.pk}/change/",
        f"/admin/access/accessreviewcampaign/{governed['campaign'].pk}/report/",
        "/api/v1/docs/",
    ]


def test_every_page_sends_the_strict_policy_and_grants_no_browser_feature(superuser_client, governed):
    for url in pages(governed):
        response = superuser_client.get(url)
        directives = policy(response)

        assert directives["default-src"] == ["'self'"], url
        assert directives["script-src"] == ["'self'"], url
        assert directives["object-src"] == ["'none'"], url
        assert directives["base-uri"] == ["'none'"], url
        assert directives["form-action"] == ["'self'"], url
        assert directives["frame-ancestors"] == ["'none'"], url
        assert "'unsafe-inline'" not in response["Content-Security-Policy"], url
        assert "camera=()" in response["Permissions-Policy"], url
        assert "geolocation=()" in response["Permissions-Policy"], url


def test_no_page_carries_inline_code_its_policy_blocks(superuser_client, governed):
    """The browser would refuse it silently (a console message): every inline <style> must be allowed by its hash,
    and no page may have an inline script, a style attribute or an event handler attribute."""
    for url in [*pages(governed), "/accounts/login/"]:
        client = superuser_client if url != "/accounts/login/" else Client()
        response = client.get(url)
        found = InlineCode()
        found.feed(response.content.decode())
        styles = policy(response).get("style-src", policy(response)["default-src"])
        images = policy(response).get("img-src", policy(response)["default-src"])

        assert found.scripts == [], url
        assert "data:" in images or found.data_urls == [], url
        assert found.attributes == [], url
        assert [style for style in found.styles if sha256_source(style) not in styles] == [], url


def test_the_api_docs_start_swagger_ui_from_a_file_of_this_server(superuser_client):
    page = superuser_client.get("/api/v1/docs/")
    script = superuser_client.get("/api/v1/docs/", {"script": ""})

    assert 'src="/api/v1/docs/?script="' in page.content.decode()
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
    assert "data:" in policy(page)["img-src"]


# Caching ----------------------------------------------------------------------------------------------------


def test_nothing_shown_to_a_signed_in_person_is_stored(superuser_client, governed):
    for url in [*pages(governed), "/audit/export/?project=" + governed["model"].project.slug]:
        cache_control = superuser_client.get(url).get("Cache-Control", "")

        assert "no-store" in cache_control, url
        assert "private" in cache_control, url


def test_api_answers_to_a_token_are_private_and_not_stored(api):
    response = api.get("/api/v1/projects/")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


def test_downloads_keep_their_own_caching_private_to_the_client(api, governed):
    """The bytes under a digest never change: the client's own cache may keep them and revalidate by ETag."""
    response = api.get(f"/api/v1/artifact-versions/{governed['version'].pk}/download/")

    assert response.status_code == 200
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
    assert response["ETag"]


# The API and the portal's session --------------------------------------------------------------------------


@pytest.fixture
def signed_in_browser() -> Client:
    """A browser signed in to the portal, with the CSRF cookie a portal page gives it; CSRF is checked as in
    production (Django's test client skips it by default)."""
    browser = Client(enforce_csrf_checks=True)
    browser.get("/accounts/login/")
    browser.force_login(UserFactory(is_superuser=True))
    return browser


def test_the_session_reads_the_api(signed_in_browser):
    assert signed_in_browser.get("/api/v1/projects/").status_code == 200


def test_a_session_write_without_the_csrf_token_is_a_403_naming_csrf(signed_in_browser):
    response = signed_in_browser.post(TREE_HEADS, {}, content_type="application/json")

    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "CSRF" in response.json()["detail"]


def test_a_session_write_with_the_csrf_token_works(signed_in_browser):
    token = signed_in_browser.cookies["csrftoken"].value

    response = signed_in_browser.post(TREE_HEADS, {}, content_type="application/json", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 201, response.content


def test_a_bearer_token_needs_no_csrf_token():
    client = Client(enforce_csrf_checks=True)

    response = client.post(TREE_HEADS, HTTP_AUTHORIZATION=f"Bearer {token_for(UserFactory(is_superuser=True))}")

    assert response.status_code == 201, response.content


def test_the_schema_says_the_session_needs_the_csrf_token_to_write(api):
    schemes = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["components"]

    assert "CSRF token" in schemes["securitySchemes"]["cookieAuth"]["description"]
