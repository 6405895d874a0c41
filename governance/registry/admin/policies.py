"""Promotion policies in the admin: every saved version of every stage's policy, the next one added by a
maintainer of the project through the registry services; a saved version is never edited."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from artifacts.access.roles import Verb
from artifacts.models import Project
from core.admin import ServiceWrittenAdmin
from core.errors import DomainError
from governance.registry import selectors
from governance.registry.models import PromotionPolicy
from governance.registry.services.registry import (
    POLICY_FIELDS,
    promotion_policy_clean,
    promotion_policy_set,
)


class PromotionPolicyForm(forms.ModelForm):
    """The next version of one stage's policy in a project one maintains: every field of the policy, as it should
    be from now on."""

    class Meta:
        model = PromotionPolicy
        fields = ("project", "stage", *POLICY_FIELDS, "note")

    def clean(self) -> dict[str, Any]:
        """The service's own checks, so a fault (a malformed threshold, a minimum time in production on another
        stage's policy) is an error beside its field with everything typed kept."""
        cleaned = super().clean()
        if stage := cleaned.get("stage"):
            values = {field: cleaned[field] for field in POLICY_FIELDS if field in cleaned}
            try:
                cleaned.update(promotion_policy_clean(stage, values))
            except DomainError as error:
                self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(ServiceWrittenAdmin):
    """Every saved version of every stage's policy. A saved version is never edited: a maintainer adds the next one
    (promotion_policy_set, audited), best started from the one in force by its "next version" link, which fills the
    form with it. A stage with no saved version is judged under the built-in default (version 0)."""

    form = PromotionPolicyForm
    list_display = (
        "project",
        "stage",
        "version",
        "in_force",
        "approvals_required",
        "creator_may_approve",
        "gates",
        "changed_by",
        "changed_at",
        "next_version",
    )
    list_filter = ("stage", ("project", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("project", "changed_by")
    search_fields = ("project__slug", "note")
    fields = ("project", "stage", *POLICY_FIELDS, "note")

    def get_queryset(self, request: HttpRequest) -> QuerySet[PromotionPolicy]:
        newest = PromotionPolicy.objects.filter(project=OuterRef("project"), stage=OuterRef("stage")).order_by(
            "-version"
        )
        return super().get_queryset(request).annotate(newest_version=Subquery(newest.values("version")[:1]))

    def get_readonly_fields(self, request: HttpRequest, obj: PromotionPolicy | None = None) -> tuple[str, ...]:
        return (*self.fields, "changed_by", "changed_at") if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: PromotionPolicy | None = None) -> list[str]:
        if obj is None:
            return list(self.fields)
        return ["project", "stage", "version", *POLICY_FIELDS, "note", "changed_by", "changed_at"]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """`?project=<id>&stage=<stage>` fills the form with the policy in force there, so a maintainer changes
        what they mean to and nothing else by accident (the model's defaults are not any stage's policy)."""
        initial = super().get_changeform_initial_data(request)
        project_id, stage = str(initial.get("project", "")), initial.get("stage")
        if project_id.isdigit() and stage in dict(PromotionPolicy._meta.get_field("stage").choices):
            project = Project.objects.where(request.user, Verb.MANAGE).filter(pk=project_id).first()
            if project is not None:
                current = selectors.policy_current(project, stage)
                initial |= {field: getattr(current, field) for field in POLICY_FIELDS}
        return initial

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "project":
            field.queryset = field.queryset.where(request.user, Verb.MANAGE)
        return field

    def has_change_permission(self, request: HttpRequest, obj: PromotionPolicy | None = None) -> bool:
        """A policy version is never edited: the next version is added instead."""
        return False

    def create(self, request: HttpRequest, data: dict[str, Any]) -> PromotionPolicy:
        policy, created = promotion_policy_set(
            project=data["project"],
            stage=data["stage"],
            changed_by=request.user,
            note=data["note"],
            **{field: data[field] for field in POLICY_FIELDS},
        )
        if not created:
            self.message_user(
                request, f"{policy} is in force already with these settings; nothing changed.", level=messages.WARNING
            )
        return policy

    @admin.display(boolean=True, description="in force")
    def in_force(self, policy: PromotionPolicy) -> bool:
        return policy.version == policy.newest_version

    @admin.display(description="gates")
    def gates(self, policy: PromotionPolicy) -> str:
        turned_on = [
            name
            for name, on in (
                ("integrity", policy.require_verified_blob),
                ("lineage", policy.require_complete_lineage),
                ("model card", policy.require_model_card),
                (f"{len(policy.metric_thresholds)} metric(s)", bool(policy.metric_thresholds)),
                (f"{len(policy.allowed_licenses or [])} allowed license(s)", bool(policy.allowed_licenses)),
                ("no vulnerable dependency", policy.block_vulnerable_dependencies),
                ("no unsafe format finding", policy.block_unsafe_formats),
                (f"formats {', '.join(policy.allowed_formats or [])}", bool(policy.allowed_formats)),
                ("trusted signature", policy.require_trusted_signature),
                (f"{policy.min_hours_in_production} h in production", policy.min_hours_in_production is not None),
            )
            if on
        ]
        return ", ".join(turned_on) or "none"

    @admin.display(description="")
    def next_version(self, policy: PromotionPolicy) -> SafeString | str:
        if policy.version != policy.newest_version:
            return ""
        url = reverse("admin:registry_promotionpolicy_add")
        return format_html(
            '<a href="{}?{}">next version…</a>', url, urlencode({"project": policy.project_id, "stage": policy.stage})
        )
