"""Reads for governance: role grants and access reviews as people review them."""

from django.db.models import Count, Model, Q, QuerySet

from governance.models import AccessReviewCampaign, AccessReviewItem, RoleGrant


def role_grants_on(obj: Model) -> QuerySet[RoleGrant]:
    """The grants made on a project (project-wide ones) or on one artifact, newest first."""
    grants = RoleGrant.objects.select_related("user", "group", "project", "granted_by")
    if obj._meta.model_name == "project":
        return grants.filter(project_id=obj.pk, artifact__isnull=True)
    return grants.filter(artifact_id=obj.pk)


def access_review_report(campaign: AccessReviewCampaign, user) -> QuerySet[AccessReviewItem]:
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
