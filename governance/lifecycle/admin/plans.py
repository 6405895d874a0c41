"""Retention plans in the admin: each plan with its totals and a link to its items, which are listed apart (a plan
may hold a million), and an action applying the selected plans through the lifecycle services. A plan is a record:
nothing here edits or deletes one."""

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import ViewOnlyMixin, VisibleOnlyAdmin, admin_link, changelist_link, human_size
from core.changes import ChangeSet
from core.jobs import enqueue_on_commit
from governance.lifecycle.jobs import APPLY_RETENTION_PLAN
from governance.lifecycle.models import RetentionPlan, RetentionPlanItem
from governance.lifecycle.selectors import plan_items_visible
from governance.lifecycle.services.plans import retention_plan_apply_start
from governance.registry.admin.actions import ReasonedActionsMixin


@admin.register(RetentionPlan)
class RetentionPlanAdmin(ReasonedActionsMixin, ViewOnlyMixin, VisibleOnlyAdmin):
    """Plans of the projects one reads, newest first. Applying one runs in the background; the service decides who
    may (the project's maintainers) and refuses a superseded plan."""

    list_display = (
        "plan",
        "project",
        "state",
        "trigger",
        "created_at",
        "versions_to_delete",
        "versions_to_archive",
        "versions_protected",
        "reclaimable",
        "applied_at",
    )
    list_display_links = ("plan",)
    list_filter = ("state", "trigger", ("project", admin.RelatedOnlyFieldListFilter))
    # The project and the people on every row: joined, not queried per row.
    list_select_related = ("project", "created_by", "applied_by")
    search_fields = ("project__slug",)
    fields = (
        "project",
        "policy_version",
        "state",
        "trigger",
        "created_by",
        "created_at",
        "applied_by",
        "apply_started_at",
        "applied_at",
        "versions_to_delete",
        "versions_to_archive",
        "versions_protected",
        "bytes_selected",
        "bytes_reclaimable",
        "items",
    )
    readonly_fields = fields
    actions = ["apply"]

    def has_apply_permission(self, request: HttpRequest) -> bool:
        """Applying is the one change a plan admits: it takes the model's change permission; which plans the person
        may apply is the service's rule (a maintainer of the plan's project)."""
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}")

    @admin.action(description="Apply selected plans", permissions=["apply"])
    def apply(self, request: HttpRequest, queryset: QuerySet[RetentionPlan]) -> None:
        def apply_one(plan: RetentionPlan) -> str:
            with transaction.atomic(), ChangeSet():
                plan, work = retention_plan_apply_start(plan=plan, applied_by=request.user)
                if work:
                    enqueue_on_commit(APPLY_RETENTION_PLAN, plan.pk, request.user.pk)
            return f"Applying {plan}." if work else f"{plan} was applied already."

        self.run_each(request, queryset.select_related("project"), apply_one)

    @admin.display(description="plan", ordering="pk")
    def plan(self, plan: RetentionPlan) -> str:
        return f"#{plan.pk}"

    @admin.display(description="reclaimable", ordering="bytes_reclaimable")
    def reclaimable(self, plan: RetentionPlan) -> str | None:
        return human_size(plan.bytes_reclaimable)

    @admin.display(description="items")
    def items(self, plan: RetentionPlan):
        return changelist_link(RetentionPlanItem, f"{plan.items.count()} items", plan__id__exact=plan.pk)


@admin.register(RetentionPlanItem)
class RetentionPlanItemAdmin(ViewOnlyMixin, VisibleOnlyAdmin):
    """Every version a plan's rules selected: what applying does to it and why, or what protects it."""

    list_display = ("item", "plan_link", "version", "action", "rule", "protected_by", "state", "outcome", "size")
    list_display_links = ("item",)
    list_filter = ("action", "state")
    # The plan, the version (with the names its label reads) and the blob on every row: joined, not per row.
    list_select_related = (
        "plan__project",
        "artifact_version__artifact__project",
        "dataset_version__dataset__project",
        "blob",
    )
    search_fields = ("rule", "protected_by", "outcome")
    fields = (
        "plan",
        "artifact_version",
        "dataset_version",
        "blob",
        "size",
        "action",
        "rule",
        "protected_by",
        "state",
        "outcome",
        "done_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[RetentionPlanItem]:
        return plan_items_visible(super().get_queryset(request), request.user)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # A plan's page links to its items (`?plan__id__exact=`); the plans are too many for a filter's list.
        return lookup == "plan__id__exact" or super().lookup_allowed(lookup, value, request)

    @admin.display(description="item", ordering="pk")
    def item(self, item: RetentionPlanItem) -> str:
        return f"#{item.pk}"

    @admin.display(description="plan", ordering="plan_id")
    def plan_link(self, item: RetentionPlanItem):
        return admin_link(item.plan)

    @admin.display(description="version")
    def version(self, item: RetentionPlanItem):
        return admin_link(item.artifact_version or item.dataset_version)
