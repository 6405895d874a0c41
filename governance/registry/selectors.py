"""Reads of the model registry: models, versions, promotion requests and stages at a moment, the policy in force,
where a request stands now, and what a reference (`fraud-scorer@production`) names. Nothing here writes, and nothing
sets attributes on the objects it is given: what a read computes comes back as a value (`Standing`, `Resolution`)."""

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Model, OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from artifacts.access.roles import Verb
from artifacts.access.rule import User, can
from artifacts.models import Artifact, ArtifactVersion, Project
from core.errors import InvalidInput, NotFound
from core.validators import DIGEST_PREFIX, name_validator, parse_digest
from governance.registry.gates import gates_evaluate, gates_failing, gates_pass
from governance.registry.models import (
    TARGET_STAGES,
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
            queryset=versions.filter(stage="production").only(
                "id", "number", "registered_model_id", "artifact_version_id"
            ),
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
#: reviewers who did not make the bytes, verified bytes, full lineage and a model card. The supply-chain gates
#: (allowed licenses and formats, no vulnerable dependency, no unsafe format finding, a trusted signature) are off
#: until a maintainer turns them on: they need data (declared licenses, imported OSV records, trusted keys) a new
#: installation does not have yet, or a choice only the project can make.
DEFAULT_POLICIES: dict[str, dict[str, bool | int]] = {
    Stage.STAGING: {
        "approvals_required": 1,
        "creator_may_approve": True,
        "require_verified_blob": True,
        "require_complete_lineage": False,
        "require_model_card": False,
        "block_vulnerable_dependencies": False,
        "block_unsafe_formats": False,
        "require_trusted_signature": False,
    },
    Stage.PRODUCTION: {
        "approvals_required": 2,
        "creator_may_approve": False,
        "require_verified_blob": True,
        "require_complete_lineage": True,
        "require_model_card": True,
        "block_vulnerable_dependencies": False,
        "block_unsafe_formats": False,
        "require_trusted_signature": False,
    },
    Stage.ARCHIVED: {
        "approvals_required": 1,
        "creator_may_approve": True,
        "require_verified_blob": False,
        "require_complete_lineage": False,
        "require_model_card": False,
        "block_vulnerable_dependencies": False,
        "block_unsafe_formats": False,
        "require_trusted_signature": False,
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


# References --------------------------------------------------------------------------------------------------------

#: The forms a reference takes, as a refusal tells them.
REFERENCE_FORMS = (
    "<name>@<version number>, <model>@<stage>, <model>@<alias> (model: or artifact: before the name reads it as "
    "that alone), or a digest sha256:<64 hexadecimal characters>"
)
MAX_REFERENCE_CHARS = 300
MAX_ALIAS_CHARS = 64
#: The stages a reference may name after '@'; every other word there is an alias.
REFERENCE_STAGES = frozenset(stage.value for stage in TARGET_STAGES)
#: How a reference reached its artifact version.
RESOLVED_THROUGH = ("digest", "artifact_version", "model_version", "stage", "alias")
#: Candidates an ambiguous reference names, at most.
MAX_CANDIDATES_NAMED = 5
HEX_DIGEST = re.compile(r"[0-9A-Fa-f]{64}")
VERSION_NUMBER = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class Reference:
    """A reference as written, parsed: a digest (lowercase hex), or a name and what picks one of its versions after
    '@' (a number, a stage or an alias), the name read as a model's, an artifact's, or either (`reading` None)."""

    text: str
    digest: str = ""
    name: str = ""
    selector: str = ""
    reading: str | None = None

    @property
    def number(self) -> int | None:
        return int(self.selector) if VERSION_NUMBER.fullmatch(self.selector) else None

    @property
    def stage(self) -> str | None:
        return self.selector if self.selector in REFERENCE_STAGES else None

    @property
    def kinds(self) -> str:
        """What the name may be, in words: "model or artifact", "model", "artifact"."""
        return self.reading or "model or artifact"


def reference_parse(text: str) -> Reference:
    """Parse a reference (see REFERENCE_FORMS), or raise InvalidInput saying what is wrong and what would do.

    A number after '@' is a version number, a stage name (staging, production, archived) a stage, any other name an
    alias: aliases that look like a number or a stage cannot be set (services.registry.model_alias_set), so no
    reference means two things.
    """
    written = text.strip()
    if not written:
        raise InvalidInput(f"Name what to resolve: {REFERENCE_FORMS}.", field="ref")
    if len(written) > MAX_REFERENCE_CHARS:
        raise InvalidInput(f"A reference is at most {MAX_REFERENCE_CHARS} characters.", field="ref")
    if written.lower().startswith(DIGEST_PREFIX) or HEX_DIGEST.fullmatch(written):
        try:
            return Reference(text=written, digest=parse_digest(written))
        except ValidationError as error:
            raise InvalidInput(error.messages[0], field="ref") from None
    reading, colon, rest = written.partition(":")
    if not colon:
        reading, rest = None, written
    elif reading not in ("model", "artifact"):
        raise InvalidInput(
            f"'{reading[:30]}:' is not a kind of name: write model:<name>@… or artifact:<name>@…, or a digest "
            "sha256:<hex>.",
            field="ref",
        )
    name, at, selector = rest.rpartition("@")
    if not at or not selector:
        named = (name or rest)[:128]
        raise InvalidInput(
            f"Say which version of '{named}' after '@': {named}@3 (a version number), {named}@production (a stage) "
            f"or {named}@champion (an alias).",
            field="ref",
        )
    _check_name(name, f"'{name[:128]}' is not a name")
    if selector.isascii() and selector.isdigit():
        if not VERSION_NUMBER.fullmatch(selector) or int(selector) == 0:
            raise InvalidInput("A version number is a whole number from 1, at most 18 digits.", field="ref")
    else:
        _check_name(selector, f"'{selector[:64]}' after '@' is neither a version number, a stage nor an alias")
        if len(selector) > MAX_ALIAS_CHARS:
            raise InvalidInput(f"An alias is at most {MAX_ALIAS_CHARS} characters.", field="ref")
    return Reference(text=written, name=name, selector=selector, reading=reading)


def _check_name(value: str, what: str) -> None:
    try:
        name_validator(value)
    except ValidationError as error:
        raise InvalidInput(f"{what}: {error.messages[0]}", field="ref") from None


@dataclass(frozen=True)
class Resolution:
    """What a reference names in a project: one artifact version, and the model version the registry reached it
    through (with the alias, for an alias), or None when the registry was not read."""

    reference: Reference
    project: Project
    through: str
    artifact_version: ArtifactVersion
    model_version: ModelVersion | None = None
    alias: str | None = None


def reference_resolve(*, project: Project, reference: Reference, user: User) -> Resolution:
    """The artifact version `reference` names in `project`, as `user` sees it, or NotFound naming what was looked for.

    What is read, by form:
    - a digest: the project's artifact version with those bytes;
    - `<name>@<number>`: version <number> of the model called <name>, and version <number> of the artifact called
      <name>; where both exist and are different versions, the reference is ambiguous (`model:<name>@<number>` or
      `artifact:<name>@<number>` picks one);
    - `<name>@<stage>` and `<name>@<alias>`: stages and aliases belong to registered models, so a model called <name>
      answers with its version in that stage or under that alias. Where no model has the name, an artifact called
      <name> answers with its version that a model of the project holds in that stage or under that alias
      (`preprocessor@champion` for the preprocessor artifact registered as some model's champion).
    Several candidates (two versions in staging, two models calling versions of one artifact `champion`, the same
    bytes published twice) are ambiguous, and answer NotFound with code `ambiguous_reference` naming them: a
    reference that names one version today must not silently name another tomorrow. Whatever `user` may not see is
    read as absent, in the same words, so a refusal never tells that it exists.
    """
    if reference.digest:
        return _resolve_digest(project, reference, user)
    model = artifact = None
    if reference.reading != "artifact":
        model = RegisteredModel.objects.visible_to(user).filter(project=project, name=reference.name).first()
    if reference.reading != "model":
        artifact = Artifact.objects.visible_to(user).filter(project=project, name=reference.name).first()
    if model is None and artifact is None:
        raise NotFound(f"Project '{project.slug}' has no {reference.kinds} named '{reference.name}'.", field="ref")
    if reference.number is not None:
        return _resolve_number(project, reference, user, model, artifact)
    if model is not None:
        return _resolve_in_model(project, reference, user, model)
    return _resolve_through_models(project, reference, user, artifact)


def _artifact_versions(user: User) -> QuerySet:
    """The artifact versions `user` sees, with what an answer shows (project, artifact, blob, creator)."""
    return ArtifactVersion.objects.visible_to(user).select_related("artifact__project", "blob", "created_by")


def _model_versions(user: User) -> QuerySet:
    """The model versions `user` sees, with their model and artifact version as an answer shows them."""
    return ModelVersion.objects.visible_to(user).select_related(
        "registered_model",
        "created_by",
        "artifact_version__artifact__project",
        "artifact_version__blob",
        "artifact_version__created_by",
    )


def _ambiguous(reference: Reference, project: Project, candidates: str, advice: str) -> NotFound:
    return NotFound(
        f"'{reference.text}' is ambiguous in project '{project.slug}': {candidates}. {advice}",
        field="ref",
        code="ambiguous_reference",
    )


def _resolve_digest(project: Project, reference: Reference, user: User) -> Resolution:
    digest = f"{DIGEST_PREFIX}{reference.digest}"
    found = list(
        _artifact_versions(user)
        .filter(artifact__project=project, blob__digest=reference.digest)
        .order_by("artifact__name", "number")[: MAX_CANDIDATES_NAMED + 1]
    )
    if not found:
        raise NotFound(f"Project '{project.slug}' has no artifact version with the digest {digest}.", field="ref")
    if len(found) > 1:
        named = ", ".join(f"{v.artifact.name}@{v.number}" for v in found[:MAX_CANDIDATES_NAMED])
        raise _ambiguous(
            reference,
            project,
            f"these bytes are several versions ({named})",
            f"Name one as <artifact>@<number>, or read the bytes at /api/v1/projects/{project.slug}/blobs/{digest}.",
        )
    return Resolution(reference=reference, project=project, through="digest", artifact_version=found[0])


def _resolve_number(
    project: Project, reference: Reference, user: User, model: RegisteredModel | None, artifact: Artifact | None
) -> Resolution:
    number, name = reference.number, reference.name
    in_model = _model_versions(user).filter(registered_model=model, number=number).first() if model else None
    in_artifact = _artifact_versions(user).filter(artifact=artifact, number=number).first() if artifact else None
    if in_model is not None and in_artifact is not None and in_model.artifact_version_id != in_artifact.pk:
        raise _ambiguous(
            reference,
            project,
            f"version {number} of model '{name}' is {in_model.artifact_version}, version {number} of artifact "
            f"'{name}' another",
            f"Write model:{name}@{number} or artifact:{name}@{number}.",
        )
    if in_model is not None:
        return Resolution(
            reference=reference,
            project=project,
            through="model_version",
            artifact_version=in_model.artifact_version,
            model_version=in_model,
        )
    if in_artifact is not None:
        return Resolution(
            reference=reference, project=project, through="artifact_version", artifact_version=in_artifact
        )
    kinds = " or ".join(kind for kind, found in (("model", model), ("artifact", artifact)) if found is not None)
    raise NotFound(f"Project '{project.slug}' has no version {number} of {kinds} '{name}'.", field="ref")


def _resolve_in_model(project: Project, reference: Reference, user: User, model: RegisteredModel) -> Resolution:
    versions = _model_versions(user).filter(registered_model=model)
    name, stage = reference.name, reference.stage
    if stage is None:
        found = versions.filter(aliases__name=reference.selector).first()
        if found is None:
            raise NotFound(
                f"Model '{name}' of project '{project.slug}' has no alias '{reference.selector}'.", field="ref"
            )
        return Resolution(
            reference=reference,
            project=project,
            through="alias",
            artifact_version=found.artifact_version,
            model_version=found,
            alias=reference.selector,
        )
    in_stage = list(versions.filter(stage=stage).order_by("-number")[: MAX_CANDIDATES_NAMED + 1])
    if not in_stage:
        raise NotFound(f"Model '{name}' of project '{project.slug}' has no version in {stage}.", field="ref")
    if len(in_stage) > 1:
        numbers = ", ".join(str(v.number) for v in in_stage[:MAX_CANDIDATES_NAMED])
        raise _ambiguous(
            reference,
            project,
            f"model '{name}' has several versions in {stage} ({numbers})",
            f"Name one by its number, as {name}@{in_stage[0].number}.",
        )
    found = in_stage[0]
    return Resolution(
        reference=reference,
        project=project,
        through="stage",
        artifact_version=found.artifact_version,
        model_version=found,
    )


def _resolve_through_models(project: Project, reference: Reference, user: User, artifact: Artifact) -> Resolution:
    """`<artifact>@<stage or alias>`: the artifact's version that the project's models hold there."""
    versions = _model_versions(user).filter(registered_model__project=project, artifact_version__artifact=artifact)
    stage, alias = reference.stage, None if reference.stage else reference.selector
    held = versions.filter(stage=stage) if stage else versions.filter(aliases__name=alias)
    found = list(held.order_by("registered_model__name", "number")[: MAX_CANDIDATES_NAMED + 1])
    where = f"in {stage}" if stage else f"under the alias '{alias}'"
    if not found:
        raise NotFound(
            f"No model of project '{project.slug}' holds a version of artifact '{reference.name}' {where} (stages "
            "and aliases belong to registered models).",
            field="ref",
        )
    if len(found) > 1:
        named = ", ".join(f"{v.registered_model.name}@{v.number}" for v in found[:MAX_CANDIDATES_NAMED])
        raise _ambiguous(
            reference,
            project,
            f"several models hold versions of artifact '{reference.name}' {where} ({named})",
            f"Name the model instead, as {found[0].registered_model.name}@{reference.selector}.",
        )
    return Resolution(
        reference=reference,
        project=project,
        through="stage" if stage else "alias",
        artifact_version=found[0].artifact_version,
        model_version=found[0],
        alias=alias,
    )


def decision_needs_step_up(promotion: PromotionRequest) -> bool:
    """Whether approving or rejecting `promotion` asks for a fresh authentication (core/accounts.py): a decision on
    what production serves, a promotion to it or the review of an emergency rollback."""
    return promotion.target_stage == Stage.PRODUCTION or promotion.kind == PromotionRequest.Kind.ROLLBACK_REVIEW
