"""The portal's dashboard: what waits for the signed-in user, and the health of what they may see (integrity,
lineage, compliance with the production policy, storage) with the latest activity. Every number comes from a
selector that filters by the access rule (governance/portal/selectors.py, and governance/lifecycle/accounting.py for
storage accounting, which the storage API reads too); the page's queries do not grow with the data."""

from dataclasses import dataclass
from datetime import UTC, date, timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.urls import path
from django.utils import timezone

from governance.audit import selectors as audit_selectors
from governance.lifecycle import accounting
from governance.portal import context as portal
from governance.portal import links
from governance.portal import selectors as portal_selectors
from governance.portal.views.lifecycle import growth_bars, stored_bars

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
    change: str  # since the previous snapshot day, signed: "+1.0 KB", "-200 bytes"
    x: float
    y: float


def _signed_size(change: int) -> str:
    return ("+" if change >= 0 else "-") + filesizeformat(abs(change))


def _storage_series(daily: list[accounting.StoredDay], first_day: date) -> list[tuple[date, int, int]]:
    """(day, bytes stored that day, change since the day before that has a snapshot) for each day of the chart's
    span that has a daily snapshot (a day without one is left out, so a gap shows as a straight segment)."""
    series, previous = [], None
    for stored in daily:
        if stored.day >= first_day:
            series.append((stored.day, stored.stored_bytes, stored.stored_bytes - (previous or 0)))
        previous = stored.stored_bytes
    return series


def _storage_chart(series: list[tuple[date, int, int]], first_day: date) -> dict:
    """The storage chart's geometry, drawn by the template as an inline SVG: each snapshot day's point placed by
    its date in the span, the line and the area under it, and three labelled levels on the bytes axis (nothing,
    half the peak, the peak). `series` has at least one day."""
    peak = max(total for _, total, _ in series) or 1
    plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    baseline = CHART_TOP + plot_height
    step = plot_width / (STORAGE_DAYS - 1)
    points = [
        StoragePoint(
            day=day,
            total=total,
            change=_signed_size(change),
            x=round(CHART_LEFT + (day - first_day).days * step, 1),
            y=round(baseline - total / peak * plot_height, 1),
        )
        for day, total, change in series
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
        "day_labels": [
            {"day": first_day + timedelta(days=offset), "x": round(CHART_LEFT + offset * step, 1)}
            for offset in (0, (STORAGE_DAYS - 1) // 2, STORAGE_DAYS - 1)
        ],
    }


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    # The daily snapshots' days are UTC days (governance.lifecycle.accounting.storage_daily).
    first_day = timezone.now().astimezone(UTC).date() - timedelta(days=STORAGE_DAYS - 1)

    awaiting = list(portal_selectors.dashboard_awaiting(user)[: AWAITING_SHOWN + 1])
    blobs = portal_selectors.dashboard_blob_totals(user)
    lineage = portal_selectors.dashboard_lineage(user)
    production = portal_selectors.dashboard_production_compliance(user)
    compliant = sum(1 for row in production if row.compliant)
    # Each project's newest storage snapshot (one indexed query), live only where none applies
    # (governance.lifecycle.accounting, "Reading the snapshots"); the chart draws the daily ones, so no request
    # reads every blob to trace the bytes over time.
    storage = accounting.storage_overview(user)
    series = _storage_series(storage.daily, first_day)
    reclaimable = accounting.storage_reclaimable(user)
    # Bytes published and deleted per month read every version in scope: only while no snapshot exists, as the
    # daily snapshots trace the stored bytes over time once there are some.
    storage_growth = accounting.storage_growth(user) if storage.as_of is None else []
    reclaimable_by_project = {plan.project_id: plan for plan in reclaimable.plans}
    storage_projects = storage.by_project
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
            "storage": _storage_chart(series, first_day) if series else None,
            "storage_first_day": first_day,
            "storage_days": STORAGE_DAYS,
            "storage_totals": storage.totals,
            "storage_as_of": storage.as_of,
            "reclaimable": reclaimable,
            "storage_projects": [
                (row, reclaimable_by_project.get(row.project.pk)) for row in storage_projects[:STORAGE_PROJECTS_SHOWN]
            ],
            "storage_projects_more": len(storage_projects) > STORAGE_PROJECTS_SHOWN,
            "growth": growth_bars(storage_growth) if storage_growth else [],
            "stored_days": stored_bars(storage.daily),
            "stored_days_span": accounting.GROWTH_DAYS,
            "storage_accounted": storage.totals.versions > 0
            or storage.daily
            or reclaimable.plans
            or any(month.added_bytes or month.deleted_bytes for month in storage_growth),
            "audits": audits,
            "entries": links.with_object_urls(entries[:ACTIVITY_SHOWN], user),
        },
    )


urlpatterns = [path("", dashboard, name="dashboard")]
