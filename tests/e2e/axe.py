"""axe-core, the accessibility engine, run inside a Playwright page: the pinned copy that `make test` installs from
the npm registry (package-lock.json) into node_modules/, read from that file, never from a CDN.

Why `page.evaluate` of the file's text and not `page.add_script_tag(path=...)`: add_script_tag puts the source into
an inline <script> element, which the portal's Content-Security-Policy (script-src 'self') refuses, and the browser
tests fail on every refusal (tests/e2e/conftest.py). A script evaluated through the DevTools protocol is the test
driving the browser, not the page running a script, so the policy does not apply to it, and the page under test keeps
its real policy (a context with bypass_csp=True would hide a page that only works without it).
"""

import os
from pathlib import Path

import pytest

from tests import live_server

AXE_SCRIPT = live_server.ROOT / "node_modules" / "axe-core" / "axe.min.js"

#: WCAG 2.0, 2.1 and 2.2 at levels A and AA, and axe's best practices (landmarks, one h1, headings in order...).
RULE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def _source(path: Path = AXE_SCRIPT) -> str:
    """The engine's source. Missing (no npm where `make test` ran), the check skips, as the browser tests do without
    Chromium; under CI=true it fails, since .ci/run installs npm."""
    if not path.exists():
        message = f"{path} is missing: `make test` installs it with npm (npm ci, from package-lock.json)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path.read_text(encoding="utf-8")


def violations(page) -> list[dict]:
    """What axe finds wrong on the page as it stands, each with its rule id, impact and the nodes it concerns."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_source())
    return page.evaluate(
        """async (tags) => {
            const options = {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]};
            const results = await window.axe.run(document, options);
            return results.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary})),
            }));
        }""",
        RULE_TAGS,
    )


def describe(found: list[dict]) -> str:
    lines = []
    for violation in found:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            summary = " ".join((node["summary"] or "").split())
            lines.append(f"    {node['target']}: {summary}")
    return "\n".join(lines)


def assert_accessible(page) -> None:
    """Fail listing every violation axe finds on the page (rule, impact, the nodes and what is wrong with each)."""
    found = violations(page)
    assert not found, f"axe found {len(found)} kind(s) of violation on {page.url}:\n{describe(found)}"
