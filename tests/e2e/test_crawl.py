"""Every link the portal renders leads to a portal page: signed in as the demo's auditor (ada) and as a reviewer
(sam), a breadth-first walk from the dashboard follows every same-origin link and GET form (the lineage picture's
links too, in the page and in the picture served alone), reaches every kind of page, meets no error, and never finds
a link into the JSON API."""

import re
import xml.etree.ElementTree as ET
from collections import Counter, deque
from urllib.parse import urljoin, urlsplit

import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser

#: The portal's kinds of page, by path.
PAGE_KINDS = {
    "dashboard": r"/",
    "models": r"/models/",
    "model": r"/models/\d+/",
    "compare": r"/models/\d+/compare/",
    "promotions": r"/promotions/",
    "promotion": r"/promotions/\d+/",
    "versions": r"/versions/\d+/",
    "lineage picture": r"/versions/\d+/lineage\.svg",
    "run": r"/runs/\d+/",
    "dataset": r"/datasets/\d+/",
    "dataset version": r"/datasets/versions/\d+/",
    "project": r"/projects/[-\w]+/",
    "lifecycle": r"/projects/[-\w]+/lifecycle/",
    "retention plan": r"/projects/[-\w]+/lifecycle/plans/\d+/",
    "search": r"/search/",
    "audit list": r"/audit/",
    "audit entry": r"/audit/\d+/",
    "audit verify": r"/audit/verify/",
    "access reviews": r"/access-reviews/",
    "access review report": r"/access-reviews/\d+/",
}
EVERYONE_REACHES = {
    "dashboard", "models", "model", "compare", "promotions", "promotion", "versions", "lineage picture", "run",
    "dataset", "dataset version", "project", "lifecycle", "search", "access reviews",
}  # fmt: skip
AUDITOR_ALSO_REACHES = {"audit list", "audit entry"}

#: Not followed: signing out ends the walk; downloads are files, not pages (their links are still checked); the
#: Django admin is not the portal.
NOT_FOLLOWED = re.compile(r"/accounts/logout/|/admin/|.*/download/|/audit/export/")
#: Pages of one kind differ in their records, not their links' kinds: a few of each show every kind of link, and
#: keep the walk short however much the demo holds (the audit log grows with every sign-in).
VISITS_PER_KIND = 6
SVG_LINK = "{http://www.w3.org/2000/svg}a"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

COLLECT = """() => {
  const anchors = [...document.querySelectorAll("a[href], svg a")];
  const links = anchors.map(a => ({href: a.getAttribute("href") || a.getAttribute("xlink:href") || "",
                                   download: a.hasAttribute("download")}));
  const forms = [...document.querySelectorAll("form")]
    .filter(form => (form.getAttribute("method") || "get").toLowerCase() === "get")
    .map(form => {
      // The attribute, not form.action: a field named "action" (the audit filter's) shadows the property.
      const url = new URL(form.getAttribute("action") || document.URL, document.baseURI);
      url.search = new URLSearchParams(new FormData(form)).toString();
      return url.href;
    });
  return {links, forms};
}"""


def page_kind(path: str) -> str | None:
    return next((kind for kind, pattern in PAGE_KINDS.items() if re.fullmatch(pattern, path)), None)


def svg_links(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)  # noqa: S314 (the portal's own picture, under test)
    return [anchor.get("href") or anchor.get(XLINK_HREF) or "" for anchor in root.iter(SVG_LINK)]


def crawl(page) -> tuple[Counter, list[str], list[str]]:
    """Walk the portal breadth-first from the dashboard: the kinds of page reached (visits per kind), the links into
    /api/ found (with the page that rendered them) and the pages that did not answer 200."""
    origin = urlsplit(page.url)._replace(path="/", query="", fragment="").geturl()
    queue, seen = deque(["/"]), {"/"}
    reached: Counter = Counter()
    api_links: list[str] = []
    failures: list[str] = []

    def found(where: str, href: str, *, follow: bool = True) -> None:
        absolute = urljoin(origin.rstrip("/") + where, href)
        parts = urlsplit(absolute)
        if f"{parts.scheme}://{parts.netloc}/" != origin:
            return
        if parts.path.startswith("/api/"):
            api_links.append(f"{where} → {href}")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if follow and target not in seen and not NOT_FOLLOWED.fullmatch(parts.path):
            seen.add(target)
            queue.append(target)

    while queue:
        where = queue.popleft()
        kind = page_kind(urlsplit(where).path) or f"other {urlsplit(where).path}"
        if reached[kind] >= VISITS_PER_KIND:
            continue
        reached[kind] += 1
        if kind == "lineage picture":
            response = page.request.get(where)
            if response.status != 200:
                failures.append(f"{where}: {response.status}")
                continue
            for href in svg_links(response.body()):
                found(where, href)
            continue
        response = page.goto(where)
        if response is None or response.status != 200:
            failures.append(f"{where}: {response.status if response else 'no response'}")
            continue
        rendered = page.evaluate(COLLECT)
        for link in rendered["links"]:
            found(where, link["href"], follow=not link["download"])
        for form_url in rendered["forms"]:
            found(where, form_url)
    return reached, api_links, failures


@pytest.mark.parametrize(
    ("username", "expected"), [("ada", EVERYONE_REACHES | AUDITOR_ALSO_REACHES), ("sam", EVERYONE_REACHES)]
)
def test_every_link_leads_to_a_portal_page_and_every_kind_of_page_is_reached(page, username, expected):
    sign_in(page, username)

    reached, api_links, failures = crawl(page)

    assert not api_links, "Links into the API:\n" + "\n".join(api_links)
    assert not failures, "Pages that did not answer 200:\n" + "\n".join(failures)
    assert expected <= set(reached), f"Never reached: {sorted(expected - set(reached))}; reached {dict(reached)}"
