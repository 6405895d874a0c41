"""The deployment files under deploy/ (systemd units, the environment template) agree with the project as it is:
each unit runs the command README's Production section gives, on the address nginx proxies to, with modules that
import; the template names only variables the settings read and every one production needs. No systemd needed;
`systemd-analyze verify` runs too where it is installed.
"""

import importlib
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_settings import PRODUCTION

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
SERVICES = ("provenant-web.service", "provenant-worker.service", "provenant-beat.service")
ENV_TEMPLATE = DEPLOY / "provenant.env.example"
NGINX = DEPLOY / "nginx" / "provenant.conf"
README = ROOT / "README.md"
#: README's Production table row for each unit's process.
README_ROWS = {
    "provenant-web.service": "Web (several)",
    "provenant-worker.service": "Celery workers",
    "provenant-beat.service": "Celery beat (exactly one)",
}
#: Variables read by libraries rather than by the settings (boto3's credential chain).
READ_BY_LIBRARIES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit as {section: [(key, value), ...]}: keys may repeat (Environment=), order is kept, a trailing
    backslash continues the line, `#` and `;` start comments."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{path.name}: `{line}` before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: `{line}` is not KEY=value"
        current.append((key.strip(), value.strip()))
    assert not pending, f"{path.name} ends on a continued line"
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def single(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}= appears {len(found)} times, expected once"
    return found[0]


def unit_environment(unit: dict[str, list[tuple[str, str]]]) -> dict[str, str]:
    env = {}
    for assignment in values(unit, "Service", "Environment"):
        for item in shlex.split(assignment):
            name, _, value = item.partition("=")
            env[name] = value
    return env


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def readme_command(row: str) -> tuple[dict[str, str], list[str]]:
    """The command in README's Production table for `row`: its leading NAME=value assignments and its argv."""
    match = re.search(rf"^\| {re.escape(row)} \| `([^`]+)` \|$", readme_section("Production"), re.MULTILINE)
    assert match, f"README's Production table has no `{row}` row with a command"
    words = shlex.split(match.group(1))
    env = {}
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


def env_template() -> tuple[dict[str, str], set[str]]:
    """The template's set variables {name: value} and the names of its optional, commented-out ones (`#NAME=`)."""
    assigned: dict[str, str] = {}
    optional: set[str] = set()
    for number, line in enumerate(ENV_TEMPLATE.read_text().splitlines(), 1):
        if match := re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line):
            name, value = match.groups()
            assert name not in assigned, f"line {number}: {name} is set twice"
            assert " " not in value or value[0] in "\"'", f"line {number}: quote {name}'s value, it has spaces"
            assigned[name] = value.strip("\"'")
        elif match := re.fullmatch(r"#([A-Za-z_][A-Za-z0-9_]*)=.*", line):
            optional.add(match.group(1))
        else:
            assert not line or line.startswith("#"), f"line {number} is neither KEY=value nor a comment: {line!r}"
    return assigned, optional


def variables_the_settings_read() -> set[str]:
    names = set()
    call = re.compile(
        r"\b(?:env_\w+|_networks|get|getenv|setdefault)\(\s*\"([A-Z][A-Z0-9_]+)\"|environ\[\"([A-Z0-9_]+)\""
    )
    for path in (ROOT / "config").rglob("*.py"):
        for match in call.finditer(path.read_text()):
            names.add(match.group(1) or match.group(2))
    return names


def nginx_upstream() -> tuple[str, int]:
    block = re.search(r"upstream provenant \{(.*?)\}", NGINX.read_text(), re.DOTALL)
    assert block, "deploy/nginx/provenant.conf has no `upstream provenant` block"
    servers = re.findall(r"^\s*server ([\d.]+):(\d+);", block.group(1), re.MULTILINE)
    assert len(servers) == 1, servers
    return servers[0][0], int(servers[0][1])


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_as_provenant_from_the_checkout_with_the_shared_environment_hardened(name):
    unit = parse_unit(UNITS / name)
    assigned, _ = env_template()
    var_dir = assigned["PROVENANT_VAR_DIR"]
    checkout = single(unit, "Service", "WorkingDirectory")
    assert single(unit, "Service", "User") == "provenant"
    assert single(unit, "Service", "EnvironmentFile") == "/etc/provenant/provenant.env"
    assert single(unit, "Service", "Restart") == "on-failure"
    assert single(unit, "Service", "NoNewPrivileges") == "true"
    assert single(unit, "Service", "PrivateTmp") == "true"
    assert single(unit, "Service", "ProtectSystem") == "strict"
    # The one writable folder is the template's var folder, inside the checkout where nginx's alias expects it.
    assert single(unit, "Service", "ReadWritePaths").split() == [var_dir]
    assert var_dir == f"{checkout}/var"
    assert f"alias {var_dir}/blobs/;" in NGINX.read_text()
    # Graceful stop: the main process alone gets the signal and stops its own workers.
    assert single(unit, "Service", "KillMode") == "mixed"
    assert values(unit, "Service", "KillSignal") in ([], ["SIGTERM"])
    assert single(unit, "Unit", "PartOf") == "provenant.target"
    assert single(unit, "Install", "WantedBy") == "provenant.target"


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_the_command_readme_gives_with_the_checkouts_venv(name):
    unit = parse_unit(UNITS / name)
    readme_env, readme_argv = readme_command(README_ROWS[name])
    argv = shlex.split(single(unit, "Service", "ExecStart"))
    checkout = single(unit, "Service", "WorkingDirectory")
    # The checkout's venv (README: `python3.11 -m venv .venv && .venv/bin/pip install .`), where this project's
    # venv has the same executable.
    assert argv[0] == f"{checkout}/.venv/bin/{readme_argv[0]}"
    assert (Path(sys.executable).parent / readme_argv[0]).exists(), f"{readme_argv[0]} is not installed"
    expected = readme_argv[1:]
    if name == "provenant-web.service":
        # nginx on the same host proxies to loopback: the one difference from README's command.
        expected = [word if word != "0.0.0.0" else "127.0.0.1" for word in expected]  # noqa: S104
    assert argv[1:] == expected
    environment = unit_environment(unit)
    for variable, value in readme_env.items():
        assert environment.get(variable) == value, f"{name} must set {variable}={value} as README's command does"


def test_web_serves_a_wsgi_application_that_imports_on_the_address_nginx_proxies_to():
    unit = parse_unit(UNITS / "provenant-web.service")
    argv = shlex.split(single(unit, "Service", "ExecStart"))
    host, port = nginx_upstream()
    assert argv[argv.index("--host") + 1] == host
    assert int(argv[argv.index("--port") + 1]) == port
    assert int(argv[argv.index("--workers") + 1]) >= 2
    interface = argv[argv.index("--interface") + 1]
    module, _, attribute = argv[-1].partition(":")
    assert interface == "wsgi"
    assert module == "config.wsgi"
    application = getattr(importlib.import_module(module), attribute)
    assert callable(application)
    # Several granian workers count metrics in one folder, fresh at each start (README, PROMETHEUS_MULTIPROC_DIR).
    runtime = single(unit, "Service", "RuntimeDirectory")
    assert unit_environment(unit)["PROMETHEUS_MULTIPROC_DIR"] == f"/run/{runtime}"


def test_worker_and_beat_load_this_projects_celery_app_and_the_worker_consumes_its_queue(settings):
    from celery.app.utils import find_app

    from config import celery_app

    for name in ("provenant-worker.service", "provenant-beat.service"):
        argv = shlex.split(single(parse_unit(UNITS / name), "Service", "ExecStart"))
        assert find_app(argv[argv.index("-A") + 1]) is celery_app
    worker = shlex.split(single(parse_unit(UNITS / "provenant-worker.service"), "Service", "ExecStart"))
    queues = set(worker[worker.index("--queues") + 1].split(","))
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert {settings.CELERY_TASK_DEFAULT_QUEUE} | routed <= queues
    # Beat's state file is under var/, the one folder the units may write, not in the read-only checkout.
    assert Path(celery_app.conf.beat_schedule_filename).parent == Path(settings.VAR_DIR)


def test_worker_waits_for_running_tasks_that_are_acknowledged_only_when_they_end(settings):
    unit = parse_unit(UNITS / "provenant-worker.service")
    assert settings.CELERY_TASK_ACKS_LATE
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    assert int(single(unit, "Service", "TimeoutStopSec")) >= 600


def test_the_target_starts_web_and_worker_and_beat_only_where_enabled():
    target = parse_unit(UNITS / "provenant.target")
    wants = " ".join(values(target, "Unit", "Wants")).split()
    assert sorted(wants) == ["provenant-web.service", "provenant-worker.service"]
    assert "provenant-beat.service" not in (UNITS / "provenant.target").read_text().split("Wants=")[1].split("\n")[0]


def test_env_template_names_only_variables_the_settings_read_and_readme_documents():
    assigned, optional = env_template()
    read = variables_the_settings_read() | READ_BY_LIBRARIES
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme_section("Configuration")))
    for name in sorted(set(assigned) | optional):
        assert name in read, f"{name} in the template is read by nothing"
        assert name in documented, f"{name} in the template is not in README's Configuration"
    # The web unit sets these itself; the template must not override them (EnvironmentFile= wins over Environment=).
    assert not {"PROMETHEUS_MULTIPROC_DIR", "_RJEM_MALLOC_CONF"} & (set(assigned) | optional)


def test_env_template_sets_every_variable_production_needs_with_placeholders():
    assigned, _ = env_template()
    missing = set(PRODUCTION) - set(assigned)
    assert not missing, f"the template lacks production's {sorted(missing)}"
    assert assigned["DJANGO_DEBUG"] == "false"
    for secret in ("DJANGO_SECRET_KEY", "PROVENANT_METRICS_TOKEN", "DJANGO_EMAIL_HOST_PASSWORD"):
        assert assigned[secret].startswith("REPLACE"), f"{secret} must be a placeholder, not a secret"
    assert "REPLACE" in assigned["DATABASE_URL"]


def test_env_template_once_filled_in_passes_check_deploy(tmp_path):
    assigned, _ = env_template()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PROVENANT_", "DATABASE_", "CELERY_"))}
    env |= {name: value.replace("REPLACE", secrets.token_urlsafe(40)) for name, value in assigned.items()}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings", "PROVENANT_VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing_but_the_executables_of_a_checkout_not_installed_here():
    units = [str(UNITS / name) for name in (*SERVICES, "provenant.target")]
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=120, cwd=UNITS
    )
    expected = re.compile(
        r"provenant-\w+\.service: Command /srv/provenant/\.venv/bin/(granian|celery) is not executable"
    )
    other = [line for line in (result.stdout + result.stderr).splitlines() if line and not expected.match(line)]
    assert not other, "\n".join(other)
