"""The Python client (clients/python) tested from the outside, against a real server process on the demo.

The client is its own distribution: `make venv` installs it into the checkout's virtualenv. When it is not
installed, its source folder is put on the path so these tests still run from a bare checkout with httpx present.
"""

import os
import signal
import socket
import subprocess
import sys
import time
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
    maintainer_token: str  # mara: maintains fraud-detection (imports stages, sets policies)


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory) -> Iterator[DemoServer]:
    var_dir = tmp_path_factory.mktemp("client-demo")
    env = live_server.environment(var_dir, DJANGO_DEBUG="true")
    live_server.load_demo(env)

    def token(user: str) -> str:
        return live_server.manage("issue_token", user, "--name", "client tests", "--quiet", env=env).strip()

    tokens = token("dana"), token("lena"), token("ada"), token("mara")
    with live_server.serving(env, log_path=var_dir / "server.log") as url:
        yield DemoServer(url, var_dir, *tokens)


MLFLOW = Path(sys.executable).with_name("mlflow")
STARTUP_SECONDS = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(demo_server: DemoServer, tmp_path_factory) -> Iterator[str]:
    """A real tracking server on loopback with a SQLite store, serving its default artifact store over HTTP
    (`mlflow-artifacts:/`, as a shared team server does); about ten seconds to start here, so one a session, shared by
    the plugin's, the importer's and the UI's tests.

    For experiments whose artifact location is `provenant+http://` the server itself lists and serves the files its
    UI shows, through the plugin: so, as a team's server would be, it runs with this checkout's client on its path
    and a Provenant token in its environment, a reader's (the UI only reads), and none of the developer's settings.
    """
    import httpx  # here, not at the top: without httpx this module skips the client's tests instead of failing

    folder = tmp_path_factory.mktemp("mlflow-server")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PROVENANT_", "MLFLOW_"))} | {
        "PYTHONPATH": str(CLIENT_SOURCE),
        "PROVENANT_TOKEN": demo_server.viewer_token,
        "XDG_CACHE_HOME": str(folder / "cache"),
        "XDG_CONFIG_HOME": str(folder / "config"),
    }
    port = free_port()
    log = (folder / "server.log").open("wb")
    command = [
        str(MLFLOW), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    # A session of its own, so the server and the workers it forks are stopped together.
    server = subprocess.Popen(
        command, cwd=folder, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(autouse=True)
def client_environment(monkeypatch, tmp_path) -> Path:
    """No PROVENANT_* setting of the developer's shell, and a config and cache folder of the test's own."""
    for name in list(os.environ):
        if name.startswith("PROVENANT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path
