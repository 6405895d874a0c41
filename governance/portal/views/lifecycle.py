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
from governance.lifecycle import selectors as lifecycle_selectors
from governance.lifecycle.models import LegalHold, RetentionPlan
from governance.portal import selectors
from governance.portal.tables import sort_and_page

PLANS_PER_PAGE = 20
ITEMS_PER_PAGE = 50
#: The columns a plan's versions may be sorted by (?sort=key or ?sort=-key); "planned" is the order the rules chose
#: them in, and the largest first is one click on Size.
PLAN_ITEM_SORTS = {"planned": "pk", "action": "action", "rule": "rule", "size": "size", "state": "state"}
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


@dataclass(frozen=True)
class StoredBar:
    """One day of stored bytes from the daily snapshots, with its bars as a share of the largest day (0-100)."""

    day: accounting.StoredDay
    stored_width: float
    logical_width: float


def stored_bars(daily: list[accounting.StoredDay]) -> list[StoredBar]:
    """Each day's bars, newest first, scaled to the day with most logical bytes (which covers its stored bytes)."""
    peak = max((day.logical_bytes for day in daily), default=0) or 1
    return [
        StoredBar(
            day=day,
            stored_width=round(day.stored_bytes * 100 / peak, 1),
            logical_width=round(day.logical_bytes * 100 / peak, 1),
        )
        for day in reversed(daily)
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
    # The project's own figures from its newest snapshot when the user views the project as a whole; live over
    # the versions they may see otherwise (governance.lifecycle.accounting, "Reading the snapshots").
    overview = accounting.storage_overview(user, project)
    reclaimable = accounting.storage_reclaimable(user, project)
    # Bytes published and deleted per month read every version in scope: shown only while no snapshot exists, as
    # the daily snapshots then trace the stored bytes instead.
    growth = accounting.storage_growth(user, project) if overview.as_of is None else []
    sees_project = can(user, Verb.VIEW, project)
    policy = lifecycle_selectors.retention_policy_current(project) if sees_project else None
    holds = list(selectors.legal_holds_active(user, project))
    plans = Paginator(selectors.retention_plans(user, project), PLANS_PER_PAGE).get_page(request.GET.get("page"))
    newest_plan = reclaimable.plans[0] if reclaimable.plans else None
    context = {
        "project": project,
        "overview": overview,
        "reclaimable": reclaimable,
        "newest_plan": newest_plan,
        "growth": growth_bars(growth) if growth else [],
        "stored_days": stored_bars(overview.daily),
        "stored_days_span": accounting.GROWTH_DAYS,
        "policy": policy,
        "rules": [
            {"name": rule.get("name", ""), "action": rule.get("action", ""), "criteria": _rule_criteria(rule)}
            for rule in (policy.rules if policy else [])
            if isinstance(rule, dict)
        ],
        "holds": [(hold, hold_scope(hold)) for hold in holds],
        "page": plans,
        # Whether the project's own records are the user's to read (an artifact's grantees see only their bytes).
        "sees_project": sees_project,
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
    table = sort_and_page(request, items, allowed_sorts=PLAN_ITEM_SORTS, default="planned", per_page=ITEMS_PER_PAGE)
    page = table.page
    hidden = plan.items.count() - page.paginator.count
    context = {
        "project": project,
        "plan": plan,
        "page": page,
        "sorting": table.sorting,
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
