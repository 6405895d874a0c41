"""Modules name the models they use with real imports: `apps.get_model(...)` hides a dependency from readers and
from import-linter (.importlinter), and so hides a layering mistake. Migrations must use it (they see historical
models), and so does core/triggers.py, whose migration operations read the model from the migration's state."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "artifacts", "governance", "config", "benchmarks")
LOOKUP = "apps.get_model("
ALLOWED = {Path("core/triggers.py")}


def test_no_module_looks_a_model_up_by_name():
    modules = [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]
    assert modules, "no source module found"
    lookups = [
        path.relative_to(ROOT)
        for path in modules
        if "migrations" not in path.parts and LOOKUP in path.read_text() and path.relative_to(ROOT) not in ALLOWED
    ]
    assert lookups == []
