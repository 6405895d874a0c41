"""Reads for governance: role grants and access reviews as people review them, and the audit log as auditors
read it (entries, signed tree heads, and the proofs that tie one to the other)."""

from django.apps import apps
from django.conf import settings
from django.db.models import Count, Exists, Max, Model, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate

from governance import audit_tree
from governance.errors import InvalidInput
from governance.models import AccessReviewCampaign, AccessReviewItem, AuditEntry, RoleGrant, SignedTreeHead
from governance.permissions import artifacts_granted, projects_where
from governance.roles import Role, Verb
from governance.services.audit import entry_document, tree_head_document


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


# The audit log ----------------------------------------------------------------------------------------------


def audit_entries_for(user) -> QuerySet[AuditEntry]:
    """The entries `user` may read, newest first. An entry has no relations to join: its actor, object and
    project are named by the columns themselves, so a page of them is one query whatever its length."""
    return AuditEntry.objects.visible_to(user).order_by("-seq")


def audits_anything(user) -> bool:
    """Whether `user` reads some of the log: the global "view audit entry" permission (superusers included), or
    the auditor role on a project or an artifact."""
    if not user.is_active:
        return False
    if user.has_perm("governance.view_auditentry"):
        return True
    project, artifact = apps.get_model("artifacts", "Project"), apps.get_model("artifacts", "Artifact")
    return (
        project.objects.filter(projects_where(user, Verb.AUDIT)).exists()
        or artifact.objects.filter(artifacts_granted(user, Verb.AUDIT)).exists()
    )


def latest_tree_head() -> SignedTreeHead | None:
    return SignedTreeHead.objects.order_by("-tree_size", "-signed_at").first()


def tree_head_covering(seq: int) -> SignedTreeHead | None:
    """The latest signed tree head whose tree holds entry `seq`."""
    return SignedTreeHead.objects.filter(tree_size__gt=seq).order_by("-tree_size", "-signed_at").first()


def tree_head_of_size(size: int) -> SignedTreeHead | None:
    """The latest head signed at exactly `size` entries (heads of one size all carry the same root)."""
    return SignedTreeHead.objects.filter(tree_size=size).order_by("-signed_at").first()


def _head_or_none(head: SignedTreeHead | None) -> dict | None:
    return tree_head_document(head) if head is not None else None


def audit_inclusion_proof(entry: AuditEntry, tree_size: int) -> dict:
    """The proof that `entry` is leaf `entry.seq` of the log's first `tree_size` entries, with that tree's root
    and the head signed at that size (if one was), so an auditor can check it without asking again."""
    size = audit_tree.log_size()
    if not entry.seq < tree_size <= size:
        raise InvalidInput(
            f"tree_size must be more than the entry's seq ({entry.seq}) and at most the log's size ({size}): "
            f"a tree of {tree_size} entries {'does not hold' if tree_size <= entry.seq else 'does not exist yet'}.",
            field="tree_size",
        )
    return {
        "seq": entry.seq,
        "tree_size": tree_size,
        "leaf_hash": bytes(entry.leaf_hash).hex(),
        "root_hash": audit_tree.root_at(tree_size).hex(),
        "audit_path": [digest.hex() for digest in audit_tree.inclusion_proof(entry.seq, tree_size)],
        "tree_head": _head_or_none(tree_head_of_size(tree_size)),
        "entry": entry_document(entry),
    }


def audit_consistency_proof(first: int, second: int) -> dict:
    """The proof that the log's first `first` entries are, unchanged, the start of its first `second` entries,
    with both roots and the heads signed at those sizes (if any)."""
    size = audit_tree.log_size()
    if not 0 <= first <= second <= size:
        raise InvalidInput(
            f"Sizes must satisfy 0 <= first <= second <= the log's size ({size}); got first={first}, second={second}.",
            field="second" if first <= second else "first",
        )
    return {
        "first": first,
        "second": second,
        "first_root": audit_tree.root_at(first).hex(),
        "second_root": audit_tree.root_at(second).hex(),
        "proof": [digest.hex() for digest in audit_tree.consistency_proof(first, second)],
        "first_head": _head_or_none(tree_head_of_size(first)),
        "second_head": _head_or_none(tree_head_of_size(second)),
    }


def project_maintainers(project: Model) -> QuerySet:
    """Active users holding a project-wide maintainer grant on `project`, directly or through a group."""
    grants = RoleGrant.objects.filter(project_id=project.pk, artifact__isnull=True, role=Role.MAINTAINER)
    user_model = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    return user_model.objects.filter(
        Q(pk__in=grants.filter(user__isnull=False).values("user_id"))
        | Q(groups__in=grants.filter(group__isnull=False).values("group_id")),
        is_active=True,
    ).distinct()


# The registry ------------------------------------------------------------------------------------------------------


def registered_model_list(user=None) -> QuerySet:
    """Models with what a list shows. Prefetched: owners, aliases with their versions and the production version
    (one query each for the page, not per model). With `user`, versions they may not see (a restricted artifact's)
    are left out of both, so neither a number nor an alias names them."""
    from governance.models import ModelAlias, ModelVersion, RegisteredModel

    versions = ModelVersion.objects.all() if user is None else ModelVersion.objects.visible_to(user)
    aliases = ModelAlias.objects.select_related("model_version", "set_by")
    if user is not None:
        aliases = aliases.filter(model_version__in=versions.values("pk"))
    return RegisteredModel.objects.select_related("project", "created_by").prefetch_related(
        "owners",
        Prefetch("aliases", queryset=aliases),
        Prefetch(
            "versions",
            queryset=versions.filter(stage="production").only("id", "number", "registered_model_id"),
            to_attr="production_versions",
        ),
    )


def model_version_list() -> QuerySet:
    """Versions with their artifact, digest, run and aliases (joined or prefetched, not one query per row)."""
    from governance.models import ModelVersion

    return ModelVersion.objects.select_related(
        "registered_model", "artifact_version__artifact", "artifact_version__blob", "created_by"
    ).prefetch_related("aliases")


def promotion_request_list() -> QuerySet:
    """Requests with their model, project, version and people joined: a page is one query."""
    from governance.models import PromotionRequest

    return PromotionRequest.objects.select_related(
        "registered_model__project", "model_version", "requested_by", "closed_by"
    )


def promotion_request_standing(request) -> None:
    """Set on `request` what a reviewer weighs now: `policy` (the stage's current one), `gates_now`,
    `approval_standing`, `approvals_counted` and `blocked_by` (nothing is written)."""
    from django.utils import timezone

    from governance.gates import gates_evaluate, gates_failing, gates_pass
    from governance.models import ModelVersion
    from governance.services.promotions import approval_standing
    from governance.services.registry import policy_current

    policy = policy_current(request.registered_model.project, request.target_stage)
    request.policy = policy
    version = request.model_version
    current = ModelVersion.objects.filter(registered_model_id=version.registered_model_id, stage="production").first()
    request.gates_now = gates_evaluate(
        policy, version, current_production=None if current == version else current, now=timezone.now()
    )
    request.approval_standing = approval_standing(request, policy)
    request.approvals_counted = sum(1 for approval in request.approval_standing if approval["counts"])
    if request.state != "open":
        request.blocked_by = ""
    elif request.approvals_counted < policy.approvals_required:
        request.blocked_by = f"{request.approvals_counted} of {policy.approvals_required} required approvals count."
    elif request.kind == "promotion" and not gates_pass(request.gates_now):
        request.blocked_by = f"Gates fail: {gates_failing(request.gates_now)}"
    else:
        request.blocked_by = ""


def model_stages_at(model, at, user=None) -> dict:
    """Which version was in each stage of `model` at time `at`, from the stage history alone: for every version its
    last move at or before `at` says where it was. With `user`, only the versions they may see are named."""
    from governance.models import StageTransition

    where: dict[int, tuple[int, str]] = {}
    moves = StageTransition.objects.all() if user is None else StageTransition.objects.visible_to(user)
    moves = (
        moves.filter(registered_model=model, changed_at__lte=at)
        .order_by("changed_at", "id")
        .values_list("model_version_id", "model_version__number", "to_stage")
    )
    for version_id, number, stage in moves:
        where[version_id] = (number, stage)
    numbers = {stage: sorted(n for n, s in where.values() if s == stage) for stage in ("staging", "archived")}
    production = [n for n, s in where.values() if s == "production"]
    return {"at": at, "production": production[0] if production else None, **numbers}


# The portal's dashboard --------------------------------------------------------------------------------------------


def dashboard_awaiting(user) -> QuerySet:
    """Open requests waiting for `user`'s decision (`PromotionRequest.objects.awaiting`) among those they may see,
    longest waiting first, with their model, project, version and requester joined: one query."""
    from governance.models import PromotionRequest

    return (
        PromotionRequest.objects.visible_to(user)
        .awaiting(user)
        .select_related("registered_model__project", "model_version", "requested_by")
        .order_by("requested_at", "pk")
    )


def dashboard_blob_totals(user, *, since) -> dict:
    """Over the blobs `user` may see, one query: how many are verified, pending and corrupt, when the last
    verification of any began (`last_verified_at`), their total size (`total_bytes`) and the size of those stored
    before `since` (`bytes_before`). A blob counts once however many projects hold it, as storage keeps it once."""
    blob = apps.get_model("artifacts", "Blob")
    state = blob.State
    return blob.objects.visible_to(user).aggregate(
        verified=Count("pk", filter=Q(state=state.VERIFIED)),
        pending=Count("pk", filter=Q(state=state.PENDING)),
        corrupt=Count("pk", filter=Q(state=state.CORRUPT)),
        last_verified_at=Max("verified_at"),
        total_bytes=Sum("size", default=0),
        bytes_before=Sum("size", default=0, filter=Q(created_at__lt=since)),
    )


def dashboard_bytes_added_by_day(user, *, since) -> dict:
    """The size of the blobs `user` may see stored on each day from `since` on (days in the current time zone;
    days with none are absent): one query, grouped in the database."""
    blob = apps.get_model("artifacts", "Blob")
    rows = (
        blob.objects.visible_to(user)
        .filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(added=Sum("size"))
        .order_by("day")
    )
    return {row["day"]: row["added"] for row in rows}


def dashboard_lineage(user) -> dict:
    """How many model versions `user` may see (`total`), and how many of them have complete lineage (`complete`):
    their artifact version names a producing run with a code commit and at least one input dataset version. That is
    the lineage gate's condition (governance/gates.py `_lineage`), counted in the database: one query."""
    from governance.models import ModelVersion

    run, run_input = apps.get_model("artifacts", "Run"), apps.get_model("artifacts", "RunDatasetInput")
    complete_run = (
        run.objects.filter(pk=OuterRef("artifact_version__run_id"))
        .exclude(code_commit="")
        .filter(Exists(run_input.objects.filter(run_id=OuterRef("pk"))))
    )
    return ModelVersion.objects.visible_to(user).aggregate(
        total=Count("pk"), complete=Count("pk", filter=Exists(complete_run))
    )


def _production_policies(project_ids: set[int]) -> dict:
    """Each project's current production policy, as `policy_current` answers it, for many projects in one query:
    the newest saved version, else the built-in default (version 0)."""
    from governance.models import PromotionPolicy
    from governance.services.registry import DEFAULT_POLICIES

    stage = "production"
    newest = PromotionPolicy.objects.filter(project_id=OuterRef("project_id"), stage=stage).order_by("-version")
    saved = PromotionPolicy.objects.filter(
        project_id__in=project_ids, stage=stage, version=Subquery(newest.values("version")[:1])
    )
    policies = {policy.project_id: policy for policy in saved}
    for project_id in project_ids - policies.keys():
        policies[project_id] = PromotionPolicy(project_id=project_id, stage=stage, version=0, **DEFAULT_POLICIES[stage])
    return policies


def dashboard_production_compliance(user) -> list:
    """The production versions `user` may see, each judged now by the gates of its project's current production
    policy: sets `gates_now`, `compliant` and `policy` on each. Three queries whatever their number: the versions
    with their model, blob and run; their runs' input dataset versions (the lineage gate asks whether there is
    one); the projects' policies. Non-compliant versions first, then by project and model."""
    from django.utils import timezone

    from governance.gates import gates_evaluate, gates_pass
    from governance.models import ModelVersion

    dataset_version = apps.get_model("artifacts", "DatasetVersion")
    versions = list(
        ModelVersion.objects.visible_to(user)
        .filter(stage="production")
        .select_related("registered_model__project", "artifact_version__blob", "artifact_version__run")
        .prefetch_related(
            Prefetch("artifact_version__run__input_dataset_versions", queryset=dataset_version.objects.only("pk"))
        )
        .order_by("registered_model__project__slug", "registered_model__name")
    )
    policies = _production_policies({version.registered_model.project_id for version in versions})
    now = timezone.now()
    for version in versions:
        version.policy = policies[version.registered_model.project_id]
        # The version is the production one, so no other's time in production is at stake.
        version.gates_now = gates_evaluate(version.policy, version, current_production=None, now=now)
        version.compliant = gates_pass(version.gates_now)
    return sorted(versions, key=lambda version: version.compliant)


def audit_entries_by(user) -> QuerySet[AuditEntry]:
    """The entries recording `user`'s own acts, newest first: what the dashboard shows someone who audits nothing."""
    return AuditEntry.objects.filter(actor_kind=AuditEntry.ActorKind.USER, actor_user_id=user.pk).order_by("-seq")


# The portal's artifact pages: what the registry and the audit log add ------------------------------------------

#: Verification results listed on a version's page, newest first.
PORTAL_VERIFICATIONS = 20
VERIFICATION_ACTIONS = ("blob.verified", "blob.corrupt")


def model_versions_on(artifact_version: Model, user) -> list:
    """The registered model versions that are `artifact_version`, with their model and its project."""
    from governance.models import ModelVersion

    registered = ModelVersion.objects.visible_to(user).filter(artifact_version=artifact_version)
    return list(registered.select_related("registered_model__project").order_by("registered_model__name", "number"))


def blob_verifications(blob: Model, user) -> list:
    """The verification results for `blob` in the audit log that `user` may read, newest first (none for most
    users: blobs belong to no single project, so only readers of the whole log see them)."""
    entries = audit_entries_for(user).filter(
        action__in=VERIFICATION_ACTIONS, object_type="blob", object_id=str(blob.pk)
    )
    return list(entries[:PORTAL_VERIFICATIONS])


def registered_models_named(query: str, user) -> QuerySet:
    """Models `user` may see whose name holds `query`, for the portal's search."""
    from governance.models import RegisteredModel

    return (
        RegisteredModel.objects.visible_to(user)
        .filter(name__icontains=query)
        .select_related("project")
        .order_by("name", "pk")
    )
