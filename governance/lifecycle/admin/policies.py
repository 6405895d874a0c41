"""Retention policies in the admin: every saved version of every project's rules, the next one added by a maintainer
through retention_policy_set (audited); a saved version is never edited."""

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
from core.admin import ServiceWrittenAdmin, json_block
from core.errors import DomainError
from governance.lifecycle.models import RetentionPolicy
from governance.lifecycle.rules import rules_stored
from governance.lifecycle.selectors import retention_policy_current
from governance.lifecycle.services.policies import retention_policy_set

FIELDS = ("project", "rules", "auto_apply", "note")


class RetentionPolicyForm(forms.ModelForm):
    """The next version of a project's rules, whole, as they should be from now on."""

    class Meta:
        model = RetentionPolicy
        fields = FIELDS
        help_texts = {
            "rules": 'A JSON list, tried in order: [{"name": "old-checkpoints", "action": "delete", "kinds": '
            '["checkpoint"], "older_than_days": 30}]. See governance/lifecycle/rules.py for every field.'
        }

    def clean(self) -> dict[str, Any]:
        """The rules' own checks, so a fault is shown beside the rules with everything typed kept."""
        cleaned = super().clean()
        if "rules" in cleaned:
            try:
                cleaned["rules"] = rules_stored(cleaned["rules"])
            except DomainError as error:
                self.add_error("rules", error.message)
        return cleaned


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(ServiceWrittenAdmin):
    """Every saved version of every project's rules. A saved version is never edited: a maintainer adds the next one,
    best started from the one in force by its "next version" link, which fills the form with it. A project with no
    saved version has no rules (version 0): nothing is selected."""

    form = RetentionPolicyForm
    list_display = ("project", "version", "in_force", "rule_count", "auto_apply", "changed_by", "changed_at", "next")
    list_filter = ("auto_apply", ("project", admin.RelatedOnlyFieldListFilter))
    # The project's slug and the author's name on every row: joined, not one query each.
    list_select_related = ("project", "changed_by")
    search_fields = ("project__slug", "note")
    fields = FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet[RetentionPolicy]:
        newest = RetentionPolicy.objects.filter(project=OuterRef("project")).order_by("-version")
        return super().get_queryset(request).annotate(newest_version=Subquery(newest.values("version")[:1]))

    def get_fields(self, request: HttpRequest, obj: RetentionPolicy | None = None) -> list[str]:
        if obj is None:
            return list(FIELDS)
        return ["project", "version", "rules_shown", "auto_apply", "note", "changed_by", "changed_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: RetentionPolicy | None = None) -> tuple[str, ...]:
        return tuple(self.get_fields(request, obj)) if obj is not None else ()

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """`?project=<id>` fills the form with the rules in force there, so a maintainer changes what they mean to."""
        initial = super().get_changeform_initial_data(request)
        project_id = str(initial.get("project", ""))
        if project_id.isdigit():
            project = Project.objects.where(request.user, Verb.MANAGE).filter(pk=project_id).first()
            if project is not None:
                current = retention_policy_current(project)
                initial |= {"rules": current.rules, "auto_apply": current.auto_apply}
        return initial

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "project":
            field.queryset = field.queryset.where(request.user, Verb.MANAGE)
        return field

    def has_change_permission(self, request: HttpRequest, obj: RetentionPolicy | None = None) -> bool:
        """A policy version is never edited: the next version is added instead."""
        return False

    def create(self, request: HttpRequest, data: dict[str, Any]) -> RetentionPolicy:
        policy, created = retention_policy_set(
            project=data["project"],
            changed_by=request.user,
            rules=data["rules"],
            auto_apply=data["auto_apply"],
            note=data["note"],
        )
        if not created:
            self.message_user(
                request, f"{policy} is in force already with these rules; nothing changed.", level=messages.WARNING
            )
        return policy

    @admin.display(boolean=True, description="in force")
    def in_force(self, policy: RetentionPolicy) -> bool:
        return policy.version == policy.newest_version

    @admin.display(description="rules")
    def rule_count(self, policy: RetentionPolicy) -> int:
        return len(policy.rules)

    @admin.display(description="rules")
    def rules_shown(self, policy: RetentionPolicy) -> SafeString:
        return json_block(policy.rules)

    @admin.display(description="")
    def next(self, policy: RetentionPolicy) -> SafeString | str:
        if policy.version != policy.newest_version:
            return ""
        url = reverse("admin:lifecycle_retentionpolicy_add")
        return format_html('<a href="{}?{}">next version…</a>', url, urlencode({"project": policy.project_id}))
