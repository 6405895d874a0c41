"""Reads for access reviews (a campaign's report, its counts and its CSV) and for the tokens a user manages."""

from collections.abc import Iterator

from django.db.models import Count, Q, QuerySet

from artifacts.access.roles import Verb
from artifacts.access.rule import User, is_unrestricted, restricted_project_id
from artifacts.models import Project
from core.exports import csv_lines
from governance.access.models import AccessReviewCampaign, AccessReviewItem, ApiToken, ServiceAccount


def tokens_manageable_by(user: User) -> QuerySet[ApiToken]:
    """The tokens `user` may list and revoke (governance.access.services.tokens says whose): their own, and
    those of the service accounts of projects they maintain; every one for a superuser. A request made with a
    project-restricted token sees only tokens restricted to that project and those of its service accounts.
    Newest first."""
    tokens = ApiToken.objects.select_related("user", "project", "user__service_account__project")
    if not user.is_active:
        return tokens.none()
    if not is_unrestricted(user):
        maintained = Project.objects.where(user, Verb.MANAGE).values("pk")
        tokens = tokens.filter(Q(user_id=user.pk) | Q(user__service_account__project__in=maintained))
    if (project_id := restricted_project_id(user)) is not None:
        tokens = tokens.filter(Q(project_id=project_id) | Q(user__service_account__project_id=project_id))
    return tokens.order_by("-pk")


def service_accounts_manageable_by(user: User) -> QuerySet[ServiceAccount]:
    """The service accounts `user` manages: those of the projects they maintain (every one for a superuser),
    within the reach of the token the request was made with."""
    return ServiceAccount.objects.where(user, Verb.MANAGE).select_related("user", "project").order_by("user__username")


def projects_reviewable_by(user: User) -> QuerySet[Project]:
    """The projects `user` may open an access review of: any for a superuser; for others those they maintain or
    audit (the campaign form's rule, and what its project picker offers)."""
    if is_unrestricted(user):
        return Project.objects.all()
    return Project.objects.filter(
        Project.objects.access_condition(user, Verb.MANAGE) | Project.objects.access_condition(user, Verb.AUDIT)
    )


def access_review_report(campaign: AccessReviewCampaign, user: User) -> QuerySet[AccessReviewItem]:
    """A campaign's items as its report lists them, by project and grantee: those `user` may see (all of them
    for a superuser), with the people each row names."""
    items = AccessReviewItem.objects.visible_to(user).filter(campaign=campaign)
    return items.select_related("campaign", "project", "reviewer", "decided_by").order_by(
        "project__slug", "grantee_label", "object_label", "pk"
    )


def access_review_counts(items: QuerySet[AccessReviewItem]) -> dict[str, int]:
    """How many of `items` there are, reviewed (kept or revoked), pending, kept, revoked and flagged unused, in
    one query. `total` is every item, reviewed or not: a report labels each count with what it counts."""
    decision = AccessReviewItem.Decision
    return items.aggregate(
        total=Count("pk"),
        reviewed=Count("pk", filter=~Q(decision=decision.PENDING)),
        pending=Count("pk", filter=Q(decision=decision.PENDING)),
        kept=Count("pk", filter=Q(decision=decision.KEEP)),
        revoked=Count("pk", filter=Q(decision=decision.REVOKE)),
        unused=Count("pk", filter=AccessReviewItem.unused_condition()),
    )


# The report's CSV columns, one row per item.
REPORT_COLUMNS = (
    "project",
    "grantee",
    "role",
    "on",
    "granted_at",
    "granted_by",
    "last_activity_at",
    "unused",
    "reviewer",
    "self_review",
    "decision",
    "comment",
    "decided_by",
    "decided_at",
    "grant_already_revoked",
)


def access_review_report_csv(campaign: AccessReviewCampaign, user: User) -> Iterator[str]:
    """The report as CSV lines, the rows `access_review_report` gives `user`, read a chunk at a time: the admin's
    download and the portal's are this one export."""
    rows = (
        (
            item.project.slug,
            item.grantee_label,
            item.role,
            item.object_label,
            item.granted_at,
            item.granted_by_label,
            item.last_activity_at,
            item.is_unused,
            item.reviewer.get_username(),
            item.self_review,
            item.decision,
            item.comment,
            item.decided_by.get_username() if item.decided_by_id else "",
            item.decided_at,
            item.grant_already_revoked,
        )
        for item in access_review_report(campaign, user).iterator(chunk_size=1000)
    )
    return csv_lines(REPORT_COLUMNS, rows)
