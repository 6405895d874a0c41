"""Legal holds in the admin: every hold of the projects one audits or maintains, placed through legal_hold_place (the
add form) and released through legal_hold_release (an action asking for the reason); a hold is never edited."""

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from artifacts.access.roles import Verb
from core.accounts import require_step_up
from core.admin import ServiceWrittenAdmin, admin_link, yes_no_filter
from governance.lifecycle.models import HOLD_SCOPES, LegalHold
from governance.lifecycle.selectors import hold_scope
from governance.lifecycle.services.holds import MAX_REASON_CHARS, legal_hold_place, legal_hold_release
from governance.registry.admin.actions import ReasonedActionsMixin


@admin.register(LegalHold)
class LegalHoldAdmin(ReasonedActionsMixin, ServiceWrittenAdmin):
    """Holds on a project or on one thing in it, active and released. Placing one names the project and at most one
    artifact, dataset or version in it, with a reason; releasing asks for the reason too. The lifecycle services
    decide who may (the project's auditors and maintainers) and check what is held belongs to the project."""

    list_display = ("hold", "project", "scope", "held", "active", "placed_by", "placed_at", "released_at")
    list_display_links = ("hold",)
    list_filter = (
        yes_no_filter("active", lambda: Q(released_at__isnull=True)),
        ("project", admin.RelatedOnlyFieldListFilter),
    )
    # The project, the thing held (with what names it) and the people on every row: joined, not queried per row.
    list_select_related = (
        "project",
        "artifact__project",
        "artifact_version__artifact__project",
        "dataset__project",
        "dataset_version__dataset__project",
        "placed_by",
        "released_by",
    )
    raw_id_fields = HOLD_SCOPES
    search_fields = ("project__slug", "reason", "release_reason")
    fields = ("project", *HOLD_SCOPES, "reason")
    detail_fields = ("placed_by", "placed_at", "released_by", "released_at", "release_reason")
    identity_fields = fields
    actions = ["release"]

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "project":
            projects = field.queryset
            user = request.user
            field.queryset = projects.filter(
                projects.access_condition(user, Verb.AUDIT) | projects.access_condition(user, Verb.MANAGE)
            )
        return field

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None):
        if request.method == "POST":
            require_step_up(request)  # placing a legal hold: a fresh authentication first (core/accounts.py)
        return super().add_view(request, form_url, extra_context)

    def has_change_permission(self, request: HttpRequest, obj: LegalHold | None = None) -> bool:
        """A hold is never edited: it is released (the action) and another placed."""
        return False

    def has_release_permission(self, request: HttpRequest) -> bool:
        """Releasing is the only change a hold admits, so it takes the model's change permission; who may release
        which hold is the service's rule."""
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}")

    def create(self, request: HttpRequest, data: dict[str, Any]) -> LegalHold:
        return legal_hold_place(
            project=data["project"],
            placed_by=request.user,
            reason=data["reason"],
            **{scope: data.get(scope) for scope in HOLD_SCOPES},
        )

    @admin.action(description="Release selected holds", permissions=["release"])
    def release(self, request: HttpRequest, queryset: QuerySet[LegalHold]) -> TemplateResponse | None:
        require_step_up(request)  # lifting a legal hold: a fresh authentication first (core/accounts.py)

        def release_one(hold: LegalHold, reason: str) -> str:
            legal_hold_release(hold=hold, released_by=request.user, reason=reason)
            return f"Released {hold}."

        return self.ask_then_run(
            request,
            queryset,
            action="release",
            title="Release legal holds",
            submit="Release",
            form_kwargs={
                "label": "Reason",
                "help_text": "Why the holds are no longer needed. What they covered is subject to the retention "
                "rules again, unless another hold covers it.",
                "required": True,
                "max_length": MAX_REASON_CHARS,
            },
            run=release_one,
        )

    @admin.display(description="hold", ordering="pk")
    def hold(self, hold: LegalHold) -> str:
        return f"#{hold.pk}"

    @admin.display(description="scope")
    def scope(self, hold: LegalHold) -> str:
        return hold_scope(hold).replace("_", " ")

    @admin.display(description="held")
    def held(self, hold: LegalHold):
        scope = hold_scope(hold)
        return admin_link(hold.project if scope == "project" else getattr(hold, scope))

    @admin.display(boolean=True, description="active")
    def active(self, hold: LegalHold) -> bool:
        return hold.released_at is None
