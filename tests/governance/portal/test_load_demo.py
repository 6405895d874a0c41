"""What `manage.py load_demo` prints: every member of the demo team it made, with their roles as granted, and links
on the address `make run` serves (its HOST and PORT)."""

import io
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from artifacts import demo
from artifacts.access.services import role_grant
from artifacts.models import Project, RoleGrant
from governance.portal.management.commands.load_demo import base_url

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def debug(settings):
    settings.DEBUG = True


def load_demo(*args: str) -> str:
    out = io.StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


def team_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("Team:"))


def test_the_team_printed_is_everyone_holding_a_role_in_the_demo_project_with_that_role():
    output = load_demo()

    team = team_line(output)
    project = Project.objects.get(slug=demo.PROJECT_SLUG)
    granted = RoleGrant.objects.filter(project=project)
    members = {grant.user.username: grant.role for grant in granted.filter(user__isnull=False, artifact=None)}
    assert {"sam", "mara", "dana", "rui", "ada"} <= set(members)
    for username, role in members.items():
        assert re.search(rf"\b{username} \([^)]*\b{role}\b", team), f"{username} ({role}) missing from: {team}"
    assert "sam (reviewer)" in team
    assert "mara (maintainer)" in team
    assert "lena (viewer via group fraud-analysts)" in team
    assert "admin (superuser" in team
    assert team.endswith(f"; password {demo.ADMIN_PASSWORD}")


def test_a_member_granted_after_the_demo_loaded_is_printed_too():
    """The list is read from the grants, not from a list in the code."""
    load_demo()
    newcomer = get_user_model().objects.create_user("noor", password="x")
    role_grant(
        obj=Project.objects.get(slug=demo.PROJECT_SLUG),
        role="auditor",
        user=newcomer,
        granted_by=get_user_model().objects.get(username="admin"),
    )

    assert "noor (auditor)" in team_line(load_demo())


def test_links_default_to_the_address_make_run_serves_by_default():
    output = load_demo()

    assert "Portal:   http://127.0.0.1:8000/ " in output
    assert "Admin:    http://127.0.0.1:8000/admin/ " in output
    assert "API docs: http://127.0.0.1:8000/api/v1/docs/" in output


def test_links_use_the_port_and_host_given():
    output = load_demo("--host", "localhost", "--port", "8123")

    assert "Portal:   http://localhost:8123/ " in output
    assert "Admin:    http://localhost:8123/admin/ " in output
    assert "API docs: http://localhost:8123/api/v1/docs/" in output
    assert ":8000" not in output


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:9000"),  # noqa: S104 (an address runserver is given, not one bound here)
        ("::", "http://127.0.0.1:9000"),
        ("::1", "http://[::1]:9000"),
        ("192.168.1.5", "http://192.168.1.5:9000"),
        ("example.test", "http://example.test:9000"),
    ],
)
def test_a_server_on_every_interface_is_linked_on_the_loopback(host, url):
    assert base_url(host, 9000) == url


@pytest.mark.parametrize("port", ["0", "65536", "http", "-1"])
def test_a_port_that_is_not_one_is_refused(port):
    with pytest.raises(CommandError, match="a port is a number from 1 to 65535"):
        load_demo("--port", port)


def test_make_run_passes_its_host_and_port_to_load_demo_as_to_runserver():
    makefile = (Path(settings.BASE_DIR) / "Makefile").read_text()
    recipe = makefile[makefile.index("\nrun:") :].split("\n\n")[0]

    assert "manage.py load_demo --host $(HOST) --port $(PORT)" in recipe
    assert "manage.py runserver $(HOST):$(PORT)" in recipe
