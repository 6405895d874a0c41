"""Reads of the model registry: models, versions, promotion requests and stages at a moment."""

from django.db.models import Model, Prefetch, QuerySet

from artifacts.access.rule import User

# The registry ------------------------------------------------------------------------------------------------------


def registered_model_list(user: User | None = None) -> QuerySet:
    """Models with what a list shows. Prefetched: owners, aliases with their versions and the production version
    (one query each for the page, not per model). With `user`, versions they may not see (a restricted artifact's)
    are left out of both, so neither a number nor an alias names them."""
    from governance.registry.models import ModelAlias, ModelVersion, RegisteredModel

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
    from governance.registry.models import ModelVersion

    return ModelVersion.objects.select_related(
        "registered_model", "artifact_version__artifact", "artifact_version__blob", "created_by"
    ).prefetch_related("aliases")


def promotion_request_list() -> QuerySet:
    """Requests with their model, project, version and people joined: a page is one query."""
    from governance.registry.models import PromotionRequest

    return PromotionRequest.objects.select_related(
        "registered_model__project", "model_version", "requested_by", "closed_by"
    )


def promotion_request_standing(request) -> None:
    """Set on `request` what a reviewer weighs now: `policy` (the stage's current one), `gates_now`,
    `approval_standing`, `approvals_counted` and `blocked_by` (nothing is written)."""
    from django.utils import timezone

    from governance.registry.gates import gates_evaluate, gates_failing, gates_pass
    from governance.registry.models import ModelVersion
    from governance.registry.services.promotions import approval_standing
    from governance.registry.services.registry import policy_current

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


def model_stages_at(model, at, user: User | None = None) -> dict:
    """Which version was in each stage of `model` at time `at`, from the stage history alone: for every version its
    last move at or before `at` says where it was. With `user`, only the versions they may see are named."""
    from governance.registry.models import StageTransition

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
    from governance.registry.models import ModelVersion

    registered = ModelVersion.objects.visible_to(user).filter(artifact_version=artifact_version)
    return list(registered.select_related("registered_model__project").order_by("registered_model__name", "number"))


def registered_models_named(query: str, user: User) -> QuerySet:
    """Models `user` may see whose name holds `query`, for the portal's search."""
    from governance.registry.models import RegisteredModel

    return (
        RegisteredModel.objects.visible_to(user)
        .filter(name__icontains=query)
        .select_related("project")
        .order_by("name", "pk")
    )
