"""Portal pages for access reviews: the items waiting for my decision, kept or revoked in bulk, the campaigns I
can see with their progress, and a campaign's report.

The portal owns these decisions (the admin shows the items as a record and links here). They go through
`items_decide`, so its rules (only the item's reviewer or a superuser decides it, once; a revocation says why; a
project keeps a maintainer) hold here without being repeated. Items and campaigns are read through their
`visible_to(user)` querysets, and counts cover only the items the reader may see, as the report does.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from core.accounts import require_step_up
from core.errors import DomainError
from core.validators import MAX_ID
from governance.access import selectors
from governance.access.models import AccessReviewCampaign, AccessReviewItem
from governance.access.services.reviews import items_decide

Decision = AccessReviewItem.Decision
ITEMS_PER_PAGE = 100
CAMPAIGNS_SHOWN = 50
#: At most this many refusals are spelled out after a bulk decision; the rest are counted.
REFUSALS_SHOWN = 10


def my_pending_items(user, campaign_id: int | None = None):
    """The items waiting for `user`'s decision, soonest due first. Joined: the campaign (its title and due
    date) and the project, shown on every row."""
    items = AccessReviewItem.objects.visible_to(user).filter(reviewer_id=user.pk).pending()
    if campaign_id is not None:
        items = items.filter(campaign_id=campaign_id)
    return items.select_related("campaign", "project").order_by(
        "campaign__due_at", "campaign_id", "project__slug", "grantee_label", "pk"
    )


def campaigns_with_progress(user) -> tuple[list[AccessReviewCampaign], bool]:
    """The newest campaigns `user` may see, each with `total`, `decided` and `mine` (pending for `user`) among
    the items they may see, and whether older ones were left out. Two queries whatever the number of campaigns:
    the campaigns, then every count at once, grouped by campaign."""
    campaigns = list(
        AccessReviewCampaign.objects.visible_to(user)
        .select_related("project")
        .order_by("-opened_at", "-id")[: CAMPAIGNS_SHOWN + 1]
    )
    more = len(campaigns) > CAMPAIGNS_SHOWN
    campaigns = campaigns[:CAMPAIGNS_SHOWN]
    counts = {
        row["campaign_id"]: row
        for row in AccessReviewItem.objects.visible_to(user)
        .filter(campaign_id__in=[campaign.pk for campaign in campaigns])
        .order_by()
        .values("campaign_id")
        .annotate(
            total=Count("pk"),
            decided=Count("pk", filter=~Q(decision=Decision.PENDING)),
            mine=Count("pk", filter=Q(decision=Decision.PENDING, reviewer_id=user.pk)),
        )
    }
    for campaign in campaigns:
        row = counts.get(campaign.pk, {})
        campaign.total, campaign.decided, campaign.mine = row.get("total", 0), row.get("decided", 0), row.get("mine", 0)
        campaign.percent = round(100 * campaign.decided / campaign.total) if campaign.total else 100
    return campaigns, more


def _ids(values: list[str]) -> list[int]:
    return sorted({int(value) for value in values if value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID})


def _campaign_param(request: HttpRequest) -> int | None:
    ids = _ids([request.GET.get("campaign", "")])
    return ids[0] if ids else None


def _chosen_ids(request: HttpRequest) -> list[int]:
    """The items a bulk decision is about: the ticked rows or, with "all on this page" ticked (the header box, which
    works without JavaScript), every row the page showed; never rows the reviewer was not shown."""
    if request.POST.get("all_shown"):
        return _ids(request.POST.getlist("shown"))
    return _ids(request.POST.getlist("items"))


def _decide(request: HttpRequest) -> bool:
    """Apply the posted decision to the chosen items; say what was done and what was refused, and why.
    Returns whether the input was accepted (False: nothing was decided, the page shows the form again)."""
    decision, comment = request.POST.get("decision", ""), request.POST.get("comment", "")
    ids = _chosen_ids(request)
    if decision == Decision.REVOKE and ids:
        require_step_up(request)  # revoking grants in bulk: a fresh authentication first (core/accounts.py)
    if not ids:
        messages.error(request, "Select at least one grant to keep or revoke.")
        return False
    # Not only the user's own items: another reviewer's item is refused by the service, which says whose it is.
    items = list(AccessReviewItem.objects.visible_to(request.user).filter(pk__in=ids).order_by("pk"))
    try:
        outcome = items_decide(items=items, decision=decision, comment=comment, decided_by=request.user)
    except DomainError as error:  # refused for every item (no decision, a revocation without a comment)
        messages.error(request, f"Nothing was decided, and nothing is selected any more: {error.message}")
        return False
    if outcome.decided:
        done = "Kept" if decision == Decision.KEEP else "Revoked"
        messages.success(request, f"{done} {len(outcome.decided)} grant{'s' if len(outcome.decided) != 1 else ''}.")
    for refusal in outcome.refused[:REFUSALS_SHOWN]:
        messages.warning(request, f"Not decided: {refusal.reason}")
    if len(outcome.refused) > REFUSALS_SHOWN:
        messages.warning(request, f"… and {len(outcome.refused) - REFUSALS_SHOWN} more not decided.")
    if missing := len(ids) - len(items):
        messages.warning(request, f"Not decided: {missing} selected item(s) no longer exist or are not yours to see.")
    return True


@require_http_methods(["GET", "POST"])
@login_required
def access_reviews(request: HttpRequest) -> HttpResponse:
    """My pending items with Keep / Revoke for the chosen ones, and the campaigns I can see.

    A refused decision shows the page again (400) with every row unticked, whatever was posted: the choice was made
    for that decision, and a reviewer who then presses the other button must not apply it to rows still ticked from
    the refused one (a revocation refused for want of a comment became a "keep" of the same grants that way). The
    comment typed is kept; it is in plain sight.
    """
    campaign_id = _campaign_param(request)
    refused = request.method == "POST" and not _decide(request)
    if request.method == "POST" and not refused:
        url = reverse("portal:access-reviews")
        return redirect(f"{url}?campaign={campaign_id}" if campaign_id else url)
    # Paged by count: a reviewer's pending items are a short list next to the log, and page numbers help them.
    page = Paginator(my_pending_items(request.user, campaign_id), ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    campaigns, more_campaigns = campaigns_with_progress(request.user)
    context = {
        "page": page,
        "campaign_id": campaign_id,
        "campaigns": campaigns,
        "more_campaigns": more_campaigns,
        "comment": request.POST.get("comment", "") if refused else "",
    }
    return render(request, "portal/reviews/list.html", context, status=400 if refused else 200)


@require_GET
@login_required
def access_review_report(request: HttpRequest, pk: int) -> HttpResponse:
    """A campaign's report as a page: counts, and every item the reader may see with its flags and decision."""
    campaign = get_object_or_404(
        AccessReviewCampaign.objects.visible_to(request.user).select_related("project", "opened_by"), pk=pk
    )
    visible = AccessReviewItem.objects.visible_to(request.user).filter(campaign=campaign)
    context = {
        "campaign": campaign,
        "counts": selectors.access_review_counts(visible),
        "items": selectors.access_review_report(campaign, request.user),
        "unused_days": settings.PROVENANT_ACCESS_REVIEW_UNUSED_DAYS,
        "may_download_csv": _may_download_csv(request, campaign),
    }
    return render(request, "portal/reviews/report.html", context)


def _may_download_csv(request: HttpRequest, campaign: AccessReviewCampaign) -> bool:
    """Whoever the admin would give the CSV to: staff with the view permission on access reviews (asked of the
    admin itself, so the two cannot drift apart)."""
    campaign_admin = admin.site.get_model_admin(AccessReviewCampaign)
    return admin.site.has_permission(request) and campaign_admin.has_view_permission(request, campaign)


@require_GET
@login_required
def access_review_report_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """The report as CSV: the admin's export (`report_csv_view`, which reads the campaign through the access rule
    again), for the same people; anyone else, 404, as for a campaign they may not see."""
    campaign = get_object_or_404(AccessReviewCampaign.objects.visible_to(request.user), pk=pk)
    if not _may_download_csv(request, campaign):
        raise Http404("No such access review.")
    return admin.site.get_model_admin(AccessReviewCampaign).report_csv_view(request, str(campaign.pk))


urlpatterns = [
    path("access-reviews/", access_reviews, name="access-reviews"),
    path("access-reviews/<int:pk>/", access_review_report, name="access-review-report"),
    path("access-reviews/<int:pk>/report.csv", access_review_report_csv, name="access-review-report-csv"),
]
