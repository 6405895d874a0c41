"""Portal pages for access reviews: the items waiting for my decision, kept or revoked in bulk, the campaigns I
can see with their progress, and a campaign's report.

The portal owns these decisions (the admin shows the items as a record and links here). They go through
`items_decide`, so its rules (only the item's reviewer or a superuser decides it, once; a revocation says why; a
project keeps a maintainer) hold here without being repeated. Items and campaigns are read through their
`visible_to(user)` querysets, and counts cover only the items the reader may see, as the report does.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods

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


def _decide(request: HttpRequest) -> bool:
    """Apply the posted decision to the checked items; say what was done and what was refused, and why.
    Returns whether the input was accepted (False: nothing was decided, the page shows the form again)."""
    decision, comment = request.POST.get("decision", ""), request.POST.get("comment", "")
    ids = _ids(request.POST.getlist("items"))
    if not ids:
        messages.error(request, "Select at least one grant to keep or revoke.")
        return False
    # Not only the user's own items: another reviewer's item is refused by the service, which says whose it is.
    items = list(AccessReviewItem.objects.visible_to(request.user).filter(pk__in=ids).order_by("pk"))
    try:
        outcome = items_decide(items=items, decision=decision, comment=comment, decided_by=request.user)
    except DomainError as error:  # refused for every item (no decision, a revocation without a comment)
        messages.error(request, error.message)
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
    """My pending items with Keep / Revoke for the checked ones, and the campaigns I can see."""
    campaign_id = _campaign_param(request)
    if request.method == "POST" and _decide(request):
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
        "selected": set(_ids(request.POST.getlist("items"))) if request.method == "POST" else set(),
        "comment": request.POST.get("comment", "") if request.method == "POST" else "",
    }
    return render(request, "portal/reviews/list.html", context)


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
    }
    return render(request, "portal/reviews/report.html", context)


urlpatterns = [
    path("access-reviews/", access_reviews, name="access-reviews"),
    path("access-reviews/<int:pk>/", access_review_report, name="access-review-report"),
]
