"""The portal's dashboard: what waits for the signed-in user, and the health of what they may see (integrity,
lineage, compliance with the production policy, storage) with the latest activity. Every number comes from a
selector that filters by the access rule (governance/portal/selectors.py, and governance/lifecycle/accounting.py for
storage accounting, which the storage API reads too); the page's queries do not grow with the data."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.urls import path
from django.utils import timezone

from governance.audit import selectors as audit_selectors
from governance.lifecycle import accounting
from governance.portal import context as portal
from governance.portal import selectors as portal_selectors
from governance.portal.views.lifecycle import growth_bars

#: The dashboard lists the longest-waiting requests and the latest entries; the promotions and audit pages list all.
AWAITING_SHOWN = 20
ACTIVITY_SHOWN = 15
STORAGE_DAYS = 30
#: The storage panel lists the projects storing most; each project's lifecycle page has its own figures.
STORAGE_PROJECTS_SHOWN = 10

# The storage chart's drawing area, in SVG user units (the SVG scales to its container's width).
# Narrow enough that its labels stay legible when it shrinks to a phone's width.
CHART_WIDTH, CHART_HEIGHT = 480, 220
CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_BOTTOM = 84, 14, 12, 44


def _share(part: int, whole: int) -> int | None:
    """`part` of `whole` as a whole percentage, rounded down so that 99.6% never shows as a complete 100%."""
    return None if whole == 0 else part * 100 // whole


@dataclass(frozen=True)
class StoragePoint:
    day: date
    total: int
    added: int
    x: float
    y: float


def _storage_series(before: int, added_by_day: dict[date, int], first_day: date) -> list[tuple[date, int, int]]:
    """(day, cumulative bytes at the end of that day, bytes added that day) for each of the chart's days."""
    series, total = [], before
    for offset in range(STORAGE_DAYS):
        day = first_day + timedelta(days=offset)
        added = added_by_day.get(day, 0)
        total += added
        series.append((day, total, added))
    return series


def _storage_chart(series: list[tuple[date, int, int]]) -> dict:
    """The storage chart's geometry, drawn by the template as an inline SVG: each day's point, the line and the
    area under it, and three labelled levels on the bytes axis (nothing, half the peak, the peak)."""
    peak = max(total for _, total, _ in series) or 1
    plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    baseline = CHART_TOP + plot_height
    step = plot_width / (len(series) - 1)
    points = [
        StoragePoint(
            day=day,
            total=total,
            added=added,
            x=round(CHART_LEFT + index * step, 1),
            y=round(baseline - total / peak * plot_height, 1),
        )
        for index, (day, total, added) in enumerate(series)
    ]
    line = " ".join(f"{point.x},{point.y}" for point in points)
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_LEFT,
        "right": CHART_WIDTH - CHART_RIGHT,
        "top": CHART_TOP,
        "baseline": baseline,
        "level_label_x": CHART_LEFT - 6,
        "day_label_y": baseline + 16,
        "x_title": {"x": CHART_LEFT + plot_width / 2, "y": CHART_HEIGHT - 4},
        "y_title": {"x": -(CHART_TOP + plot_height / 2), "y": 14},
        "points": points,
        "line": line,
        "area": f"{CHART_LEFT},{baseline} {line} {points[-1].x},{baseline}",
        "levels": [
            {"y": round(baseline - fraction * plot_height, 1), "label": filesizeformat(peak * fraction)}
            for fraction in (0, 0.5, 1)
        ],
        "day_labels": [points[0], points[len(points) // 2], points[-1]],
    }


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    today = timezone.localdate()
    first_day = today - timedelta(days=STORAGE_DAYS - 1)
    since = timezone.make_aware(datetime.combine(first_day, time.min))

    awaiting = list(portal_selectors.dashboard_awaiting(user)[: AWAITING_SHOWN + 1])
    blobs = portal_selectors.dashboard_blob_totals(user, since=since)
    lineage = portal_selectors.dashboard_lineage(user)
    production = portal_selectors.dashboard_production_compliance(user)
    compliant = sum(1 for row in production if row.compliant)
    series = _storage_series(
        blobs["bytes_before"], portal_selectors.dashboard_bytes_added_by_day(user, since=since), first_day
    )
    # The accounting's figures without its per-kind split, which the dashboard does not show (three queries fewer).
    storage_totals = accounting.storage_totals(user)
    reclaimable = accounting.storage_reclaimable(user)
    storage_growth = accounting.storage_growth(user)
    reclaimable_by_project = {plan.project_id: plan for plan in reclaimable.plans}
    storage_projects = accounting.storage_by_project(user, limit=STORAGE_PROJECTS_SHOWN + 1)
    audits = portal.audits(request)
    entries = audit_selectors.audit_entries_for(user) if audits else audit_selectors.audit_entries_by(user)

    return render(
        request,
        "portal/dashboard.html",
        {
            "awaiting": awaiting[:AWAITING_SHOWN],
            "awaiting_more": len(awaiting) > AWAITING_SHOWN,
            "blobs": blobs,
            "blob_count": blobs["verified"] + blobs["pending"] + blobs["corrupt"],
            "lineage": lineage,
            "lineage_share": _share(lineage["complete"], lineage["total"]),
            "production": production,
            "non_compliant": [row for row in production if not row.compliant],
            "compliant": compliant,
            "compliance_share": _share(compliant, len(production)),
            "storage": _storage_chart(series),
            "storage_first_day": first_day,
            "storage_days": STORAGE_DAYS,
            "storage_totals": storage_totals,
            "reclaimable": reclaimable,
            "storage_projects": [
                (row, reclaimable_by_project.get(row.project.pk)) for row in storage_projects[:STORAGE_PROJECTS_SHOWN]
            ],
            "storage_projects_more": len(storage_projects) > STORAGE_PROJECTS_SHOWN,
            "growth": growth_bars(storage_growth),
            "storage_accounted": storage_totals.versions > 0
            or reclaimable.plans
            or any(month.added_bytes or month.deleted_bytes for month in storage_growth),
            "audits": audits,
            "entries": list(entries[:ACTIVITY_SHOWN]),
        },
    )


urlpatterns = [path("", dashboard, name="dashboard")]
