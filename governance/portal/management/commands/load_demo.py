import ipaddress
from argparse import ArgumentTypeError
from collections import defaultdict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from artifacts.demo import ADMIN_PASSWORD, ADMIN_USERNAME, PROJECT_SLUG, DemoOutcome, load_demo
from artifacts.models import Project, RoleGrant
from core.audit.recorder import tree_head_sign
from core.errors import DomainError
from governance.portal.demo import MAINTAINER, SECOND_REVIEWER, RegistryDemo, load_registry_demo

SHOWN_METRICS = ("accuracy", "precision", "recall", "auc", "log_loss")
#: Addresses a server listens on for every interface: a browser reaches it on the loopback.
EVERY_INTERFACE = {"", "0.0.0.0", "::", "[::]"}  # noqa: S104 (only compared with, never bound)


def port_number(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
        raise ArgumentTypeError(f"a port is a number from 1 to 65535, not {text!r}")
    return int(text)


def base_url(host: str, port: int) -> str:
    """Where a browser on this machine finds a server `runserver host:port` started."""
    if host in EVERY_INTERFACE:
        host = "127.0.0.1"
    try:
        if ipaddress.ip_address(host.strip("[]")).version == 6:
            host = f"[{host.strip('[]')}]"
    except ValueError:
        pass  # a host name, such as localhost
    return f"http://{host}:{port}"


def team_of(project: Project) -> list[str]:
    """The demo's admin and everyone who holds a role in `project`, read from its grants (a group's through its
    members), each with their roles, in the order they were granted."""
    roles: dict[str, list[str]] = defaultdict(list)
    if get_user_model().objects.filter(username=ADMIN_USERNAME, is_superuser=True).exists():
        roles[ADMIN_USERNAME].append("superuser")
    grants = RoleGrant.objects.filter(project=project).select_related("user", "group", "artifact").order_by("pk")
    for grant in grants:
        on = f" on artifact {grant.artifact.name}" if grant.artifact_id else ""
        if grant.user_id:
            roles[grant.user.get_username()].append(f"{grant.role}{on}")
        else:
            for member in grant.group.user_set.order_by("pk"):
                roles[member.get_username()].append(f"{grant.role}{on} via group {grant.group.name}")
    return [f"{name} ({', '.join(held)})" for name, held in roles.items()]


class Command(BaseCommand):
    help = (
        f"Load the '{PROJECT_SLUG}' demo (datasets, runs, artifacts and lineage) and an '{ADMIN_USERNAME}' "
        "superuser with a published password. Runs only with DJANGO_DEBUG=true. Safe to run again: an existing "
        "demo or admin is left as it is."
    )

    def add_arguments(self, parser) -> None:
        # `make run` passes the address it serves on (its HOST and PORT), so the links printed are the ones that work.
        parser.add_argument("--host", default="127.0.0.1", help="The host the server listens on (default 127.0.0.1).")
        parser.add_argument(
            "--port", type=port_number, default=8000, help="The port the server listens on (default 8000)."
        )

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            # The admin's password is printed and fixed in the code, so anyone can log in: never on a real deployment.
            raise CommandError(
                "load_demo creates a superuser with a well-known password; run it with DJANGO_DEBUG=true."
            )
        try:
            outcome = load_demo()
            # After the demo's commit: its blobs are verified by then in the embedded mode, so the promotions pass
            # their integrity gate (with a broker they wait, approved, and apply once the worker verifies them).
            admin = get_user_model().objects.get(username=ADMIN_USERNAME)
            registry = load_registry_demo(outcome.project, admin, ADMIN_PASSWORD)
        except DomainError as error:
            raise CommandError(f"Could not load the demo: {error.message}") from error
        self._report(outcome, base_url(options["host"], options["port"]))
        self._report_registry(registry)
        # The demo's acts are in the audit log; a signed head lets an auditor verify an export of it at once.
        if head := tree_head_sign(only_if_grown=True):
            self.stdout.write(f"Audit:    {head.tree_size} entries, tree head signed (root {head.root_hash[:16]}…)")

    def _report(self, outcome: DemoOutcome, url: str) -> None:
        project = outcome.project
        if outcome.loaded:
            self.stdout.write(self.style.SUCCESS(f"Loaded the demo project '{project.slug}'."))
            for run in outcome.runs:
                shown = ", ".join(f"{name} {run.metrics[name]:.4f}" for name in SHOWN_METRICS if name in run.metrics)
                self.stdout.write(f"  run {run.external_id}: {shown}")
            self.stdout.write(f"  blobs: {outcome.blobs_verified} of {outcome.blobs_total} verified")
        else:
            self.stdout.write(f"The demo project '{project.slug}' is already loaded; nothing changed.")
        if outcome.admin_has_demo_password:
            credentials = f"username {ADMIN_USERNAME}, password {ADMIN_PASSWORD}"
        else:
            credentials = f"username {ADMIN_USERNAME}, with the password you set (the existing user was left alone)"
        portal = url + reverse("portal:dashboard")
        self.stdout.write(f"Portal:   {portal}  (reviewers and auditors: sign in as a team member below)")
        self.stdout.write(f"Admin:    {url}{reverse('admin:index')}  ({credentials})")
        # Members made by the demo share its published password; it is shown only when the admin's is too.
        password = f"; password {ADMIN_PASSWORD}" if outcome.admin_has_demo_password else ""
        self.stdout.write(f"Team:     {', '.join(team_of(project))}{password}")
        self.stdout.write(f"API docs: {url}{reverse('api:docs')}")

    def _report_registry(self, registry: RegistryDemo) -> None:
        model = registry.model
        stages = ", ".join(f"v{v.number} {v.stage}" for v in model.versions.order_by("number"))
        self.stdout.write(f"Registry: model {model.name}: {stages}")
        self.stdout.write(
            f"  reviewers rui and {SECOND_REVIEWER}; maintainer {MAINTAINER} sets the promotion policies and has an "
            "access review to complete"
        )
        if registry.waiting is not None:
            self.stdout.write(
                f"  promotion #{registry.waiting.pk} (v{registry.waiting.model_version.number} to "
                f"{registry.waiting.target_stage}) awaits a second approval: sign in as {SECOND_REVIEWER} (reviewer)"
            )
