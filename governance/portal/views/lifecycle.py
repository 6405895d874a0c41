"""The portal's lifecycle pages (issue 19): a project's storage accounting (stored, deduplication saved, archived,
reclaimable, per kind and by month), the retention rules in force, the legal holds in force and the plans the rules
produced, and one plan with each version it selected and what it does to it or what protects it.

Read only: plans are applied in the admin (linked for staff) and through the API. A project the user may not see
answers 404; inside a project, what they may not see (a restricted artifact's versions, holds and plan items) is
left out of every list and every figure, as in the API.
"""

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from artifacts.access.roles import Verb
from artifacts.access.rule import can
from artifacts.models import Project
from governance.lifecycle import accounting
from governance.lifecycle.models import LegalHold, RetentionPlan
from governance.portal import selectors

PLANS_PER_PAGE = 20
ITEMS_PER_PAGE = 50
#: The criteria a retention rule may carry, in the order a person reads them; any other key is shown after them.
RULE_CRITERIA = ("kinds", "run_statuses", "stages", "older_than_days", "keep_last_versions", "keep_last_runs")


@dataclass(frozen=True)
class GrowthBar:
    """One month of growth with the width of its bar, as a share of the busiest month (0-100)."""

    month: accounting.GrowthMonth
    added_width: float
    deleted_width: float

    @property
    def net_size(self) -> int:
        """The net change without its sign (the template writes the sign, as filesizeformat drops it)."""
        return abs(self.month.net_bytes)


def growth_bars(growth: list[accounting.GrowthMonth]) -> list[GrowthBar]:
    """Each month's bars, scaled to the month that published or deleted most; drawn as inline SVG, no script."""
    peak = max((max(month.added_bytes, month.deleted_bytes) for month in growth), default=0) or 1
    return [
        GrowthBar(
            month=month,
            added_width=round(month.added_bytes * 100 / peak, 1),
            deleted_width=round(month.deleted_bytes * 100 / peak, 1),
        )
        for month in growth
    ]


def _rule_criteria(rule: dict) -> list[tuple[str, str]]:
    """A rule's criteria as (name, value) rows, the known ones first; lists joined with commas."""
    names = [name for name in RULE_CRITERIA if name in rule]
    names += sorted(name for name in rule if name not in {*RULE_CRITERIA, "name", "action"})
    return [
        (name.replace("_", " "), ", ".join(map(str, rule[name])) if isinstance(rule[name], list) else str(rule[name]))
        for name in names
        if rule[name] not in (None, "", [])
    ]


def hold_scope(hold: LegalHold) -> str:
    """What a hold covers, in words."""
    if hold.artifact_version_id:
        return f"version {hold.artifact_version.number} of artifact {hold.artifact_version.artifact.name}"
    if hold.artifact_id:
        return f"artifact {hold.artifact.name}"
    if hold.dataset_version_id:
        return f"version {hold.dataset_version.number} of dataset {hold.dataset_version.dataset.name}"
    if hold.dataset_id:
        return f"dataset {hold.dataset.name}"
    return "the whole project"


def _project_or_404(request: HttpRequest, slug: str) -> Project:
    project = selectors.lifecycle_project(request.user, slug)
    if project is None:
        raise Http404(f"No project '{slug[:100]}'.")
    return project


@login_required
@require_GET
def project_lifecycle(request: HttpRequest, slug: str) -> HttpResponse:
    user = request.user
    project = _project_or_404(request, slug)
    report = accounting.storage_report(user, project)
    policy = selectors.retention_policy_in_force(user, project)
    holds = list(selectors.legal_holds_active(user, project))
    plans = Paginator(selectors.retention_plans(user, project), PLANS_PER_PAGE).get_page(request.GET.get("page"))
    newest_plan = report.reclaimable.plans[0] if report.reclaimable.plans else None
    context = {
        "project": project,
        "report": report,
        "newest_plan": newest_plan,
        "growth": growth_bars(report.growth),
        "policy": policy,
        "rules": [
            {"name": rule.get("name", ""), "action": rule.get("action", ""), "criteria": _rule_criteria(rule)}
            for rule in (policy.rules if policy else [])
            if isinstance(rule, dict)
        ],
        "holds": [(hold, hold_scope(hold)) for hold in holds],
        "page": plans,
        # Whether the project's own records are the user's to read (an artifact's grantees see only their bytes).
        "sees_project": can(user, Verb.VIEW, project),
        "manages": user.is_staff and can(user, Verb.MANAGE, project),
    }
    return render(request, "portal/lifecycle/project.html", context)


@login_required
@require_GET
def retention_plan(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    user = request.user
    project = _project_or_404(request, slug)
    plan = selectors.retention_plans(user, project).filter(pk=pk).first()
    if plan is None:
        raise Http404(f"No plan {pk} of project '{project.slug}'.")
    items = selectors.retention_plan_items(user, plan)
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    hidden = plan.items.count() - page.paginator.count
    context = {
        "project": project,
        "plan": plan,
        "page": page,
        "hidden": hidden,
        "still_reclaimable": plan.bytes_reclaimable if plan.state in accounting.PLAN_PENDING_STATES else 0,
        "pending": plan.state in accounting.PLAN_PENDING_STATES,
        "superseded": plan.state == RetentionPlan.State.SUPERSEDED,
        "manages": user.is_staff and can(user, Verb.MANAGE, project),
    }
    return render(request, "portal/lifecycle/plan.html", context)


urlpatterns = [
    path("projects/<slug:slug>/lifecycle/", project_lifecycle, name="project-lifecycle"),
    path("projects/<slug:slug>/lifecycle/plans/<int:pk>/", retention_plan, name="retention-plan"),
]
