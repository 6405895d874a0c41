"""Reads of the model registry: models, versions, promotion requests and stages at a moment, the policy in force,
and where a request stands now. Nothing here writes, and nothing sets attributes on the objects it is given: what a
read computes comes back as a value (`Standing`)."""

from dataclasses import dataclass

from django.db.models import Model, OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from artifacts.access.roles import Verb
from artifacts.access.rule import User, can
from governance.registry.gates import gates_evaluate, gates_failing, gates_pass
from governance.registry.models import (
    ModelAlias,
    ModelVersion,
    PromotionDecision,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    Stage,
    StageTransition,
)

# The registry ------------------------------------------------------------------------------------------------------


def registered_model_list(user: User | None = None) -> QuerySet:
    """Models with what a list shows. Prefetched: owners, aliases with their versions and the production version
    (one query each for the page, not per model). With `user`, versions they may not see (a restricted artifact's)
    are left out of both, so neither a number nor an alias names them."""
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
    return ModelVersion.objects.select_related(
        "registered_model", "artifact_version__artifact", "artifact_version__blob", "created_by"
    ).prefetch_related("aliases")


def promotion_request_list() -> QuerySet:
    """Requests with their model, project, version and people joined: a page is one query."""
    return PromotionRequest.objects.select_related(
        "registered_model__project", "model_version", "requested_by", "closed_by"
    )


# Policies and a request's standing ---------------------------------------------------------------------------------


#: What a stage asks for while its project has saved no policy (version 0). Production asks the most: two
#: reviewers who did not make the bytes, verified bytes, full lineage and a model card.
DEFAULT_POLICIES: dict[str, dict[str, bool | int]] = {
    Stage.STAGING: {
        "approvals_required": 1,
        "creator_may_approve": True,
        "require_verified_blob": True,
        "require_complete_lineage": False,
        "require_model_card": False,
    },
    Stage.PRODUCTION: {
        "approvals_required": 2,
        "creator_may_approve": False,
        "require_verified_blob": True,
        "require_complete_lineage": True,
        "require_model_card": True,
    },
    Stage.ARCHIVED: {
        "approvals_required": 1,
        "creator_may_approve": True,
        "require_verified_blob": False,
        "require_complete_lineage": False,
        "require_model_card": False,
    },
}


def policy_current(project: Model, stage: str) -> PromotionPolicy:
    """The policy a request into `stage` is judged under now: the project's newest version, else the built-in
    default (unsaved, version 0)."""
    saved = PromotionPolicy.objects.filter(project=project, stage=stage).order_by("-version").first()
    if saved is not None:
        return saved
    return PromotionPolicy(project=project, stage=stage, version=0, **DEFAULT_POLICIES[stage])


def policies_current(project_ids: set[int], stage: str) -> dict[int, PromotionPolicy]:
    """Each project's policy for `stage` as `policy_current` answers it, for many projects in one query: the
    newest saved version, else the built-in default (version 0)."""
    newest = PromotionPolicy.objects.filter(project_id=OuterRef("project_id"), stage=stage).order_by("-version")
    saved = PromotionPolicy.objects.filter(
        project_id__in=project_ids, stage=stage, version=Subquery(newest.values("version")[:1])
    )
    policies = {policy.project_id: policy for policy in saved}
    for project_id in project_ids - policies.keys():
        policies[project_id] = PromotionPolicy(project_id=project_id, stage=stage, version=0, **DEFAULT_POLICIES[stage])
    return policies


def model_version_creators(version: ModelVersion) -> set[int]:
    """Who made a version: whoever published its bytes, and whoever registered them as the model's version."""
    return {version.artifact_version.created_by_id, version.created_by_id}


def approval_standing(request: PromotionRequest, policy: PromotionPolicy | None = None) -> list[dict]:
    """Every approval of `request`, each with whether it counts under `policy` (the stage's current one) and why
    not: a reviewer who has since lost the role, or the version's creator where the policy forbids it."""
    policy = policy or policy_current(request.registered_model.project, request.target_stage)
    artifact_version = request.model_version.artifact_version
    # A page that prefetched the decisions with their reviewers reads them from memory; a service that just added
    # one reads them afresh.
    prefetched = "decisions" in getattr(request, "_prefetched_objects_cache", {})
    every = request.decisions.all() if prefetched else request.decisions.select_related("reviewer")
    decisions = [d for d in every if d.decision == PromotionDecision.Decision.APPROVE]
    standing = []
    for decision in sorted(decisions, key=lambda d: (d.decided_at, d.pk)):
        reviewer = decision.reviewer
        reason = ""
        if reviewer.pk == request.requested_by_id:
            reason = "the requester's own approval never counts"
        elif not policy.creator_may_approve and reviewer.pk in model_version_creators(request.model_version):
            reason = "the policy does not let the version's creator approve it"
        elif not can(reviewer, Verb.REVIEW, artifact_version.artifact):
            reason = "no longer holds the reviewer role on this artifact or its project"
        standing.append(
            {
                "reviewer": reviewer.get_username(),
                "decided_at": decision.decided_at,
                "comment": decision.comment,
                "counts": not reason,
                "reason": reason,
            }
        )
    return standing


@dataclass(frozen=True)
class Standing:
    """What a reviewer weighs on a promotion request now, under its stage's current `policy`: the gates judged now,
    every approval with whether it counts, and what stands in the way ("" when nothing does, or the request is
    closed)."""

    policy: PromotionPolicy
    gates_now: list[dict]
    approvals: list[dict]
    approvals_counted: int
    blocked_by: str


def promotion_request_standing(request: PromotionRequest) -> Standing:
    """Where `request` stands now (nothing is written). Prefetch its decisions with their reviewers on a page."""
    policy = policy_current(request.registered_model.project, request.target_stage)
    version = request.model_version
    current = ModelVersion.objects.filter(registered_model_id=version.registered_model_id, stage="production").first()
    gates_now = gates_evaluate(
        policy, version, current_production=None if current == version else current, now=timezone.now()
    )
    approvals = approval_standing(request, policy)
    counted = sum(1 for approval in approvals if approval["counts"])
    blocked_by = ""
    if request.state == PromotionRequest.State.OPEN:
        if counted < policy.approvals_required:
            blocked_by = f"{counted} of {policy.approvals_required} required approvals count."
        elif request.kind == PromotionRequest.Kind.PROMOTION and not gates_pass(gates_now):
            blocked_by = f"Gates fail: {gates_failing(gates_now)}"
    return Standing(
        policy=policy, gates_now=gates_now, approvals=approvals, approvals_counted=counted, blocked_by=blocked_by
    )


# Stages at a moment -----------------------------------------------------------------------------------------------


def model_stages_at(model, at, user: User | None = None) -> dict:
    """Which version was in each stage of `model` at time `at`, from the stage history alone: for every version its
    last move at or before `at` says where it was. With `user`, only the versions they may see are named."""
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


def model_versions_on(artifact_version: Model, user: User) -> list:
    """The registered model versions that are `artifact_version`, with their model and its project."""
    registered = ModelVersion.objects.visible_to(user).filter(artifact_version=artifact_version)
    return list(registered.select_related("registered_model__project").order_by("registered_model__name", "number"))


def registered_models_named(query: str, user: User) -> QuerySet:
    """Models `user` may see whose name holds `query`, for the portal's search."""
    return (
        RegisteredModel.objects.visible_to(user)
        .filter(name__icontains=query)
        .select_related("project")
        .order_by("name", "pk")
    )
