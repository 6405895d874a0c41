"""Running the standalone tools as their users do: a few files copied alone into an empty folder, and a Python in
which importing Django fails, so a tool that reached for the server, even indirectly, would fail its test.

Used by the tests of the audit verifier (the client's provenant_client/audit_verify.py) and
examples/webhook_receiver.py.
"""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Isolated mode (-I) keeps the current folder and the environment's PYTHONPATH off the path; `django` set to None
# in sys.modules makes any `import django` raise. Only the interpreter's own finders are kept: the checkout's
# editable install (`pip install -e`, as `make venv` does it) adds one that would serve any of the repository's
# modules to the copied files, hiding an import of something not copied. The script then runs as
# `python SCRIPT ARGS...` would run it.
_WITHOUT_DJANGO = (
    "import sys; sys.argv = sys.argv[1:]; sys.modules['django'] = None; "
    "sys.meta_path[:] = [f for f in sys.meta_path if f.__module__.startswith('_frozen_importlib')]; "
    "import runpy; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def copied_alone(folder: Path, *paths: str) -> Path:
    """Copy the checkout's files at `paths` (relative to its root, folders kept) into `folder`, and nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / path, folder / path)
    return folder


def without_django(script: Path, *args: str | Path) -> list[str]:
    """The command that runs `script` with `args` in this test run's Python, with Django unimportable."""
    return [sys.executable, "-I", "-c", _WITHOUT_DJANGO, str(script), *map(str, args)]


def module_without_django(folder: Path, module: str, *args: str | Path) -> list[str]:
    """The command that runs `python -m module ARGS...` with `folder` first on the path (where its package was
    copied alone), in this test run's Python, with Django unimportable."""
    launcher = _WITHOUT_DJANGO.replace(
        "runpy.run_path(sys.argv[0], run_name='__main__')",
        f"sys.path.insert(0, {str(folder)!r}); runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)",
    )
    return [sys.executable, "-I", "-c", launcher, module, *map(str, args)]
