"""The client runs in users' training images, Python 3.9 and up (clients/python/pyproject.toml): no interpreter that
old is at hand here, so its source is checked statically. vermin names the oldest Python each construct and each
standard-library name needs; ruff (target py39 in the client's pyproject) refuses newer syntax as well."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clients.conftest import CLIENT_SOURCE

# Under CI the check never skips: vermin is in the dev extras, so a venv without it is a broken build.
if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("vermin", reason="vermin checks the client against Python 3.9: `make venv` installs it")


def test_the_clients_source_needs_at_most_python_3_9():
    """Annotations are not evaluated (every module has `from __future__ import annotations`), so `int | None` in one
    is fine; anything that runs must exist in 3.9."""
    # The console script beside this interpreter (the venv's bin is not always on PATH); vermin has no __main__.
    vermin = Path(sys.executable).with_name("vermin")
    done = subprocess.run(
        [str(vermin), "--target=3.9-", "--violations", "--no-tips", str(CLIENT_SOURCE / "provenant_client")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
