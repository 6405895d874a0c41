"""A real server process on `make run`'s demo data, for tests that meet Provenant from the outside: the browser tests
(tests/e2e) and the README's examples (tests/test_readme.py).

Each server has a var dir of its own (SQLite file, blobs, secret and audit keys), never the test database, and is
configured only by the environment it is given: settings of this process (pytest-django's, a developer's shell's)
are not passed on.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 60
PROVENANT_SETTINGS = ("DJANGO_", "PROVENANT_", "DATABASE_URL", "CELERY_")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(var_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any of Provenant's settings, then `var_dir` and `settings`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(PROVENANT_SETTINGS)}
    return clean | {"PROVENANT_VAR_DIR": str(var_dir)} | settings


def manage(*args: str, env: dict[str, str]) -> str:
    """Run `manage.py` from the checkout; its output, or the test fails with it."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def load_demo(env: dict[str, str]) -> str:
    """Migrate and load the demo, as `make run` does (load_demo needs DJANGO_DEBUG=true); what it printed."""
    manage("migrate", "--noinput", env=env)
    return manage("load_demo", env=env)


@contextmanager
def process_on_a_free_port(argv: list[str], env: dict[str, str], *, log_path: Path) -> Iterator[int]:
    """Start `argv` from the checkout, with "{port}" in it replaced by a free loopback port and its output in
    `log_path`; yield the port once it accepts connections, and stop the process afterwards."""
    port = free_port()
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [part.replace("{port}", str(port)) for part in argv],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
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
                    pytest.fail(f"{argv[0]} did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
            yield port
        finally:
            server.terminate()
            server.wait(10)


@contextmanager
def serving(env: dict[str, str], *options: str, log_path: Path) -> Iterator[str]:
    """`runserver` on a free loopback port, with `options`, its output in `log_path`; yields its base URL once it
    accepts connections, and stops it afterwards."""
    argv = [sys.executable, "manage.py", "runserver", "127.0.0.1:{port}", "--noreload", *options]
    with process_on_a_free_port(argv, env, log_path=log_path) as port:
        yield f"http://127.0.0.1:{port}"


#: The WSGI app under granian, as deployed (README: Production), one worker.
GRANIAN = [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", "1", "--host", "127.0.0.1"]
GRANIAN += ["--port", "{port}", "config.wsgi:application"]
