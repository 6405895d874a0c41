"""Reads for access reviews: a campaign's report and its counts."""

from django.db.models import Count, Q, QuerySet

from artifacts.access.rule import User
from governance.access.models import AccessReviewCampaign, AccessReviewItem


def access_review_report(campaign: AccessReviewCampaign, user: User) -> QuerySet[AccessReviewItem]:
    """A campaign's items as its report lists them, by project and grantee: those `user` may see (all of them
    for a superuser), with the people each row names."""
    items = AccessReviewItem.objects.visible_to(user).filter(campaign=campaign)
    return items.select_related("campaign", "project", "reviewer", "decided_by").order_by(
        "project__slug", "grantee_label", "object_label", "pk"
    )


def access_review_counts(items: QuerySet[AccessReviewItem]) -> dict[str, int]:
    """How many of `items` there are, pending, kept, revoked and flagged unused, in one query."""
    decision = AccessReviewItem.Decision
    return items.aggregate(
        total=Count("pk"),
        pending=Count("pk", filter=Q(decision=decision.PENDING)),
        kept=Count("pk", filter=Q(decision=decision.KEEP)),
        revoked=Count("pk", filter=Q(decision=decision.REVOKE)),
        unused=Count("pk", filter=AccessReviewItem.unused_condition()),
    )
