from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from artifacts.demo import (
    ADMIN_PASSWORD,
    ADMIN_URL,
    ADMIN_USERNAME,
    API_DOCS_URL,
    PORTAL_URL,
    PROJECT_SLUG,
    TEAM,
    VIEWER_GROUP,
    VIEWER_GROUP_MEMBERS,
    DemoOutcome,
    load_demo,
)
from core.audit.recorder import tree_head_sign
from core.errors import DomainError
from governance.portal.demo import MAINTAINER, SECOND_REVIEWER, RegistryDemo, load_registry_demo

SHOWN_METRICS = ("accuracy", "precision", "recall", "auc", "log_loss")


class Command(BaseCommand):
    help = (
        f"Load the '{PROJECT_SLUG}' demo (datasets, runs, artifacts and lineage) and an '{ADMIN_USERNAME}' "
        "superuser with a published password. Runs only with DJANGO_DEBUG=true. Safe to run again: an existing "
        "demo or admin is left as it is."
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
        self._report(outcome)
        self._report_registry(registry)
        # The demo's acts are in the audit log; a signed head lets an auditor verify an export of it at once.
        if head := tree_head_sign(only_if_grown=True):
            self.stdout.write(f"Audit:    {head.tree_size} entries, tree head signed (root {head.root_hash[:16]}…)")

    def _report(self, outcome: DemoOutcome) -> None:
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
        self.stdout.write(f"Portal:   {PORTAL_URL}  (reviewers and auditors: sign in as a team member below)")
        self.stdout.write(f"Admin:    {ADMIN_URL}  ({credentials})")
        team = ", ".join(f"{name} ({role})" for name, role in TEAM.items())
        viewers = ", ".join(VIEWER_GROUP_MEMBERS)
        # Members made by the demo share its published password; it is shown only when the admin's is too.
        password = f"; password {ADMIN_PASSWORD}" if outcome.admin_has_demo_password else ""
        self.stdout.write(f"Team:     {team}, {viewers} (viewer via group {VIEWER_GROUP}){password}")
        self.stdout.write(f"API docs: {API_DOCS_URL}")

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
