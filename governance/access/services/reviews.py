"""Access reviews: open a campaign over the grants in scope, record each decision, complete the campaign.

Who reviews what is settled when the campaign opens, item by item:

1. The candidates are the reviewers named when opening it or, by default, the project's maintainers: active
   users holding a project-wide maintainer grant on it, directly or through a group.
2. Nobody reviews their own grant, nor a grant to a group they are in. Of the other candidates, the one with the
   fewest items so far in this campaign takes it (ties: by username), so the work is shared.
3. When no other candidate is left (the grantee is the project's only maintainer), the campaign's opener takes it
   or, for a campaign the schedule opened, the first active superuser (by id) who does not hold the grant.
4. When even they hold it (a one-person installation), it goes to them anyway, marked as a self-review that the
   admin and the report show: an auditor then sees a review nobody else could do, rather than no review.

A campaign is refused when its scope holds no grant, or when nobody at all can review a project's grants.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max, Model, QuerySet
from django.utils import timezone

from artifacts.access.roles import ROLE_VERBS, Role, Verb
from artifacts.access.rule import is_unrestricted
from artifacts.access.services import role_revoke
from artifacts.models import ArtifactVersion, DatasetVersion, RoleGrant, Run, UploadSession
from core.audit.actions import AuditAction
from core.changes import ChangeSet
from core.errors import Conflict, DomainError, InvalidInput, NotAllowed
from core.models import AuditEntry
from governance.access.events import access_review_completed_events
from governance.access.models import AccessReviewCampaign, AccessReviewItem
from governance.registry.models import ModelVersion, PromotionDecision, PromotionRequest

Decision = AccessReviewItem.Decision
MAX_COMMENT_CHARS = 10_000

# Where a user's activity in a project is recorded besides the audit log: (model, who, when, the path from it to its
# project's id). The log records all of these acts too; the rows themselves also count, so data that reached the
# catalog without an entry (an import, a fixture) still shows its author at work. Reviewers publish nothing: their
# decisions on promotions show they use the role (which is why access reviews sit above the registry in the layers).
ACTIVITY_SOURCES = (
    (Run, "created_by_id", "created_at", "project_id"),
    (DatasetVersion, "created_by_id", "created_at", "dataset__project_id"),
    (ArtifactVersion, "created_by_id", "created_at", "artifact__project_id"),
    (UploadSession, "created_by_id", "created_at", "project_id"),
    (ModelVersion, "created_by_id", "created_at", "registered_model__project_id"),
    (PromotionRequest, "requested_by_id", "requested_at", "registered_model__project_id"),
    (PromotionDecision, "reviewer_id", "decided_at", "request__registered_model__project_id"),
)

#: Roles whose holders may read the audit log, so an export of it is their use of the role.
AUDITING_ROLES = [role for role, verbs in ROLE_VERBS.items() if Verb.AUDIT in verbs]


def _scope_label(project: Model | None) -> str:
    return f"project {project.slug}" if project is not None else "all projects"


def _activity(grants: QuerySet[RoleGrant], project: Model | None) -> Iterator[tuple[int, int, datetime]]:
    """(project id, user id, latest time) of each kind of activity of the users holding `grants`, one grouped query
    per kind.

    Everything the audit log records a person doing in a project is use of their role there: downloads, uploads,
    publishing, a promotion asked for or decided, a policy or retention rule changed, a legal hold placed, a grant
    given, an access review decided. An export of the audit log names no project (it covers every one the person
    audits), so it counts for each project where they hold a role that reads the log. Reading the log on screen is
    not recorded, so it cannot count.
    """
    grantees = grants.filter(user__isnull=False).values("user_id")
    for model, who, when, project_path in ACTIVITY_SOURCES:
        records = model.objects.filter(**{f"{who}__in": grantees})
        if project is not None:
            records = records.filter(**{project_path: project.pk})
        for row in records.order_by().values(project_path, who).annotate(at=Max(when)):
            yield row[project_path], row[who], row["at"]
    acts = AuditEntry.objects.filter(actor_user_id__in=grantees, project_id__isnull=False)
    if project is not None:
        acts = acts.filter(project_id=project.pk)
    for row in acts.order_by().values("project_id", "actor_user_id").annotate(at=Max("recorded_at")):
        yield row["project_id"], row["actor_user_id"], row["at"]
    auditors = grants.filter(user__isnull=False, role__in=AUDITING_ROLES).values_list("project_id", "user_id")
    audited_projects: dict[int, set[int]] = defaultdict(set)
    for project_id, user_id in auditors:
        audited_projects[user_id].add(project_id)
    exports = AuditEntry.objects.filter(action=AuditAction.AUDIT_LOG_EXPORTED, actor_user_id__in=audited_projects)
    for row in exports.order_by().values("actor_user_id").annotate(at=Max("recorded_at")):
        for project_id in audited_projects[row["actor_user_id"]]:
            yield project_id, row["actor_user_id"], row["at"]


def _last_activity(grants: QuerySet[RoleGrant], project: Model | None) -> dict[tuple[int, int], datetime]:
    """(project id, user id) → when the user last did anything in that project that shows they use their role
    there (`_activity`), for every user holding a grant in `grants`. One grouped query per kind of activity for the
    whole campaign, whatever its size.
    """
    latest: dict[tuple[int, int], datetime] = {}
    for project_id, user_id, at in _activity(grants, project):
        if (project_id, user_id) not in latest or at > latest[project_id, user_id]:
            latest[project_id, user_id] = at
    return latest


class _ReviewerAssignment:
    """The rule in this module's docstring, with what it needs loaded in a few queries up front."""

    def __init__(
        self,
        *,
        grants: QuerySet[RoleGrant],
        reviewers: Sequence[AbstractBaseUser] | None,
        opened_by: AbstractBaseUser | None,
    ) -> None:
        user_model = get_user_model()
        self.named = sorted(reviewers, key=lambda u: u.get_username()) if reviewers is not None else None
        self.maintainers: dict[int, list[AbstractBaseUser]] = defaultdict(list)
        if self.named is None:
            maintainer_grants = grants.filter(artifact__isnull=True, role=Role.MAINTAINER)
            pairs = {
                *maintainer_grants.filter(user__isnull=False).values_list("project_id", "user_id"),
                *maintainer_grants.filter(group__user__isnull=False).values_list("project_id", "group__user"),
            }
            users = user_model.objects.filter(pk__in={user_id for _, user_id in pairs}, is_active=True).in_bulk()
            for project_id, user_id in pairs:
                if user_id in users:
                    self.maintainers[project_id].append(users[user_id])
            for candidates in self.maintainers.values():
                candidates.sort(key=lambda u: u.get_username())
        if opened_by is not None:
            self.fallbacks = [opened_by]
        else:
            self.fallbacks = list(user_model.objects.filter(is_superuser=True, is_active=True).order_by("pk"))
        everyone = {u.pk for u in [*(self.named or ()), *self.fallbacks]}
        everyone |= {u.pk for candidates in self.maintainers.values() for u in candidates}
        self.groups_of: dict[int, set[int]] = defaultdict(set)
        memberships = user_model.groups.through.objects.filter(user_id__in=everyone)
        for user_id, group_id in memberships.values_list("user_id", "group_id"):
            self.groups_of[user_id].add(group_id)
        self.load: Counter[int] = Counter()

    def _holds(self, user: AbstractBaseUser, grant: RoleGrant) -> bool:
        return grant.user_id == user.pk or grant.group_id in self.groups_of[user.pk]

    def _take(self, user: AbstractBaseUser) -> AbstractBaseUser:
        self.load[user.pk] += 1
        return user

    def reviewer_for(self, grant: RoleGrant) -> tuple[AbstractBaseUser, bool]:
        """The reviewer of `grant`, and whether that is a self-review."""
        candidates = self.named if self.named is not None else self.maintainers[grant.project_id]
        others = [user for user in candidates if not self._holds(user, grant)]
        if others:
            return self._take(min(others, key=lambda u: (self.load[u.pk], u.get_username()))), False
        for user in self.fallbacks:
            if not self._holds(user, grant):
                return self._take(user), False
        anyone = [*candidates, *self.fallbacks]
        if anyone:
            return self._take(anyone[0]), True
        raise InvalidInput(
            f"Nobody can review the grants on project {grant.project.slug}: it has no active maintainer and there "
            "is no superuser. Name the reviewers, or give someone the maintainer role first.",
            field="reviewers",
        )


def _grantee_label(grant: RoleGrant) -> str:
    """Who holds the grant, a service account named as one: a pipeline's grants are reviewed like anyone's, and
    the reviewer sees that no person answers for them but the project's maintainers."""
    if grant.user_id and hasattr(grant.user, "service_account"):
        return f"service account {grant.user.get_username()}"
    return grant.grantee_label


def _snapshot(grant: RoleGrant, **fields) -> AccessReviewItem:
    return AccessReviewItem(
        grant=grant,
        grantee_user_id=grant.user_id,
        grantee_group_id=grant.group_id,
        grantee_label=_grantee_label(grant)[:200],
        role=grant.role,
        project_id=grant.project_id,
        artifact_id=grant.artifact_id,
        object_label=grant.scope_label[:300],
        granted_at=grant.granted_at,
        granted_by_label=grant.granted_by.get_username() if grant.granted_by_id else "",
        **fields,
    )


@transaction.atomic
def campaign_open(
    *,
    project: Model | None,
    due_at: datetime,
    opened_by: AbstractBaseUser | None,
    reviewers: Sequence[AbstractBaseUser] | None = None,
    title: str = "",
    scheduled: bool = False,
) -> AccessReviewCampaign:
    """Open a review of every grant on `project` (its project-wide and artifact grants), or on every project
    when `project` is None, with an item per grant assigned by the rule above.

    `reviewers` replaces each project's maintainers as the candidates. Whoever calls this decides who may open
    a campaign; the admin lets superusers open any, and a project's maintainers and auditors open its own.
    """
    now = timezone.now()
    if due_at <= now:
        raise InvalidInput("The due date must be in the future.", field="due_at")
    if reviewers is not None:
        reviewers = list(reviewers)
        if not reviewers:
            raise InvalidInput("Name at least one reviewer, or none to have each project's maintainers review.")
        if inactive := sorted(user.get_username() for user in reviewers if not user.is_active):
            raise InvalidInput(f"Inactive users cannot review: {', '.join(inactive)}.", field="reviewers")
    in_scope = RoleGrant.objects.all() if project is None else RoleGrant.objects.filter(project_id=project.pk)
    grants = list(
        in_scope.select_related(
            "user__service_account", "group", "project", "artifact__project", "granted_by"
        ).order_by("project__slug", "pk")
    )
    if not grants:
        raise InvalidInput(f"There is no grant on {_scope_label(project)} to review.", field="project")
    assignment = _ReviewerAssignment(grants=in_scope, reviewers=reviewers, opened_by=opened_by)
    activity = _last_activity(in_scope, project)
    default_title = f"{'Scheduled access' if scheduled else 'Access'} review of {_scope_label(project)}, {now:%Y-%m-%d}"
    campaign = AccessReviewCampaign.objects.create(
        project=project,
        title=(title.strip() or default_title)[:200],
        due_at=due_at,
        opened_by=opened_by,
        opened_at=now,
        scheduled=scheduled,
    )
    items = []
    for grant in grants:
        reviewer, self_review = assignment.reviewer_for(grant)
        last_activity_at = activity.get((grant.project_id, grant.user_id)) if grant.user_id else None
        items.append(
            _snapshot(
                grant,
                campaign=campaign,
                last_activity_at=last_activity_at,
                reviewer=reviewer,
                self_review=self_review,
            )
        )
    AccessReviewItem.objects.bulk_create(items)
    with ChangeSet() as changes:
        changes.audit(
            AuditAction.ACCESS_REVIEW_OPENED,
            obj=campaign,
            actor=opened_by,
            changes={
                "title": campaign.title,
                "scope": _scope_label(project),
                "due_at": due_at,
                "scheduled": scheduled,
                "items": len(items),
                "self_reviews": sum(item.self_review for item in items),
            },
        )
    return campaign


def campaign_open_scheduled() -> AccessReviewCampaign | None:
    """Open the schedule's review of every project, due in PROVENANT_ACCESS_REVIEW_DUE_DAYS.

    Returns None, opening nothing, while the last campaign the schedule opened is still open (a late review is
    finished, not buried under a new one) or when there is no grant to review.
    """
    open_scheduled = AccessReviewCampaign.objects.filter(scheduled=True, state=AccessReviewCampaign.State.OPEN)
    if open_scheduled.exists() or not RoleGrant.objects.exists():
        return None
    due_at = timezone.now() + timedelta(days=settings.PROVENANT_ACCESS_REVIEW_DUE_DAYS)
    try:
        return campaign_open(project=None, due_at=due_at, opened_by=None, scheduled=True)
    except IntegrityError:
        # Another run of the schedule opened it first (the one-open-scheduled-campaign constraint).
        if open_scheduled.exists():
            return None
        raise


def _checked_comment(decision: str, comment: str) -> str:
    if decision not in (Decision.KEEP, Decision.REVOKE):
        raise InvalidInput("Decide 'keep' or 'revoke'.", field="decision")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_CHARS or "\x00" in comment:
        raise InvalidInput(
            f"A comment is at most {MAX_COMMENT_CHARS:,} characters, without NUL characters.", field="comment"
        )
    if decision == Decision.REVOKE and not comment:
        raise InvalidInput("Say why the grant is revoked: a revocation needs a comment.", field="comment")
    return comment


def _campaign_completed(changes: ChangeSet, campaign: AccessReviewCampaign) -> None:
    """The campaign's last item was decided. Call inside that decision's transaction and change set, holding the
    campaign's lock.

    Every completion passes here, whichever path decided the last item, and its audit entry is recorded here, in
    that same transaction: exactly once, and never without the completion; so is its `access_review.completed`
    event.
    """
    completed = changes.update(campaign, state=AccessReviewCampaign.State.COMPLETED, completed_at=timezone.now())
    access_review_completed_events(changes, campaign)
    changes.audit(AuditAction.ACCESS_REVIEW_COMPLETED, obj=campaign, changes=completed)


@transaction.atomic
def item_decide(
    *, item: AccessReviewItem, decision: str, comment: str, decided_by: AbstractBaseUser
) -> AccessReviewItem:
    """Keep or revoke the grant an item stands for; a revocation takes effect at once, through `role_revoke`.

    Refused, leaving the item pending: a decision by anyone but its reviewer or a superuser, an item already
    decided, a revocation without a comment, and a revocation `role_revoke` refuses (the project's last
    maintainer). A grant revoked elsewhere meanwhile is no refusal: the decision is recorded, and that fact too.
    The campaign completes with its last decision.
    """
    comment = _checked_comment(decision, comment)
    # Every decision locks its campaign first, then the item, then (role_revoke) the grants: one order, so no
    # deadlock, and the decision of the last item sees all the others and completes the campaign.
    campaign = (
        AccessReviewCampaign.objects.select_for_update(of=("self",)).select_related("project").get(pk=item.campaign_id)
    )
    item = (
        AccessReviewItem.objects.select_for_update(of=("self",))
        .select_related("reviewer", "decided_by", "project")
        .get(pk=item.pk)
    )
    if item.is_decided:
        raise Conflict(
            f"The review of {item} was already decided: {item.get_decision_display().lower()}, by "
            f"{item.decided_by.get_username()} at {item.decided_at:%Y-%m-%d %H:%M} UTC."
        )
    if not decided_by.is_active or (decided_by.pk != item.reviewer_id and not is_unrestricted(decided_by)):
        raise NotAllowed(
            f"The review of {item} is assigned to {item.reviewer.get_username()}; only they or a superuser decide it."
        )
    reviewed_grant_id = item.grant_id
    grant = RoleGrant.objects.filter(pk=item.grant_id).first() if item.grant_id else None
    with ChangeSet() as changes:
        if decision == Decision.REVOKE and grant is not None:
            try:
                role_revoke(grant=grant, revoked_by=decided_by)
            except Conflict:
                if RoleGrant.objects.filter(pk=grant.pk).exists():
                    raise
                grant = None  # revoked elsewhere between our look and role_revoke's lock
            else:
                item.grant = None  # the revocation set the item's grant to NULL in the database
        decided = changes.update(
            item,
            decision=decision,
            comment=comment,
            decided_by=decided_by,
            decided_at=timezone.now(),
            grant_already_revoked=grant is None,
        )
        completed = not campaign.items.pending().exists()
        changes.audit(
            AuditAction.ACCESS_REVIEW_ITEM_DECIDED,
            obj=item,
            actor=decided_by,
            changes={
                "campaign": campaign.pk,
                "decision": decided["decision"],
                "comment": comment,
                "grant": reviewed_grant_id,
                "grant_already_revoked": item.grant_already_revoked,
            },
        )
        if completed:
            _campaign_completed(changes, campaign)
    return item


@dataclass(frozen=True)
class Refusal:
    item: AccessReviewItem
    reason: str


@dataclass(frozen=True)
class BulkDecision:
    decided: list[AccessReviewItem]
    refused: list[Refusal]


def items_decide(
    *, items: Iterable[AccessReviewItem], decision: str, comment: str, decided_by: AbstractBaseUser
) -> BulkDecision:
    """Give several items the same decision, each in its own transaction: one refusal (another reviewer's
    item, a project's last maintainer) does not hold back the others, and each refusal says why.

    Input that would be refused for every item (no decision, a revocation without a comment) refuses the
    whole call before any item is touched.
    """
    _checked_comment(decision, comment)
    decided, refused = [], []
    for item in items:
        try:
            decided.append(item_decide(item=item, decision=decision, comment=comment, decided_by=decided_by))
        except DomainError as error:
            refused.append(Refusal(item=item, reason=error.message))
    return BulkDecision(decided=decided, refused=refused)
