"""The Python client (clients/python) tested from the outside, against a real server process on the demo.

The client is its own distribution: `make venv` installs it into the checkout's virtualenv. When it is not
installed, its source folder is put on the path so these tests still run from a bare checkout with httpx present.
"""

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import live_server

CLIENT_SOURCE = live_server.ROOT / "clients" / "python" / "src"
if str(CLIENT_SOURCE) not in sys.path:
    sys.path.insert(0, str(CLIENT_SOURCE))

# Under CI the client's tests never skip: a venv without the client is a broken build, not a reason to pass.
if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("httpx", reason="the client needs httpx: install clients/python (make venv does)")

PROJECT = "fraud-detection"


@dataclass(frozen=True)
class DemoServer:
    """A server on a fresh demo: its base URL (without /api/v1), its var dir, and tokens of demo users."""

    url: str
    var_dir: Path
    contributor_token: str  # dana: may publish in fraud-detection
    viewer_token: str  # lena: may only read it
    auditor_token: str  # ada: reads its audit log


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory) -> Iterator[DemoServer]:
    var_dir = tmp_path_factory.mktemp("client-demo")
    env = live_server.environment(var_dir, DJANGO_DEBUG="true")
    live_server.load_demo(env)

    def token(user: str) -> str:
        return live_server.manage("issue_token", user, "--name", "client tests", "--quiet", env=env).strip()

    tokens = token("dana"), token("lena"), token("ada")
    with live_server.serving(env, log_path=var_dir / "server.log") as url:
        yield DemoServer(url, var_dir, *tokens)


@pytest.fixture(autouse=True)
def client_environment(monkeypatch, tmp_path) -> Path:
    """No PROVENANT_* setting of the developer's shell, and a config and cache folder of the test's own."""
    for name in list(os.environ):
        if name.startswith("PROVENANT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path
