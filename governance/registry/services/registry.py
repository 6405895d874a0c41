"""The registry's writes that move no stage: registered models and their cards, versions, aliases, and policies.

Stages move only in governance/registry/services/promotions.py. Every write here locks the model's row first (FOR NO KEY
UPDATE, see core/audit/recorder.py), the same row every promotion locks, so numbering, aliases and stage
moves of one model happen one at a time.
"""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Model
from django.utils import timezone

from artifacts.access.roles import Verb
from artifacts.access.rule import can
from artifacts.models import ArtifactVersion, Project
from core.audit.actions import AuditAction
from core.changes import ChangeSet, diff, given
from core.errors import Conflict, InvalidInput, NotAllowed
from core.licenses import allowed_licenses_clean
from core.validators import name_validator
from governance.registry.gates import allowed_formats_clean, declared_directions_clean, metric_thresholds_clean
from governance.registry.models import TARGET_STAGES, ModelAlias, ModelVersion, PromotionPolicy, RegisteredModel, Stage
from governance.registry.selectors import REFERENCE_STAGES, policy_current

MAX_CARD_CHARS = 100_000

POLICY_FIELDS = [
    "approvals_required",
    "creator_may_approve",
    "require_verified_blob",
    "require_complete_lineage",
    "require_model_card",
    "metric_thresholds",
    "allowed_licenses",
    "block_vulnerable_dependencies",
    "block_unsafe_formats",
    "allowed_formats",
    "require_trusted_signature",
    "min_hours_in_production",
    "request_ttl_hours",
    "previous_production_to",
]


def model_lock(model_id: int) -> RegisteredModel:
    """The model's row, locked until the transaction ends, with its project: every registry write starts here."""
    return (
        RegisteredModel.objects.select_for_update(of=("self",), no_key=True).select_related("project").get(pk=model_id)
    )


def _clean_name(name: str, field: str = "name") -> None:
    try:
        name_validator(name)
    except ValidationError as error:
        raise InvalidInput(error.messages[0], field=field) from None


def _clean_card(text: str | None) -> None:
    if text is not None and len(text) > MAX_CARD_CHARS:
        raise InvalidInput(f"A model card is at most {MAX_CARD_CHARS:,} characters.", field="model_card")


def _require_contributor(user: AbstractBaseUser | None, obj: Model, what: str) -> None:
    """Registry records are contributors' work (on the project, or on the artifact for its versions); a write with
    no user is the system's own."""
    if user is not None and not can(user, Verb.CONTRIBUTE, obj):
        noun = obj._meta.verbose_name
        raise NotAllowed(
            f"{what} needs the contributor or maintainer role on {noun} '{obj}'"
            + (" or its project." if noun == "artifact" else ".")
        )


MAX_IMPORTED_FROM_CHARS = 500


def imported_from_clean(imported_from: str) -> str:
    """Where an imported stage or alias came from: required, one line, at most MAX_IMPORTED_FROM_CHARS."""
    imported_from = (imported_from or "").strip()
    if not imported_from:
        raise InvalidInput(
            "Say where it was imported from (the registry and its version, e.g. "
            "'mlflow http://mlflow:5000 fraud-scorer version 3').",
            field="imported_from",
        )
    if len(imported_from) > MAX_IMPORTED_FROM_CHARS or not imported_from.isprintable():
        raise InvalidInput(
            f"`imported_from` is one line of at most {MAX_IMPORTED_FROM_CHARS} printable characters.",
            field="imported_from",
        )
    return imported_from


def _usernames(users: Iterable[AbstractBaseUser]) -> list[str]:
    return sorted(user.get_username() for user in users)


@transaction.atomic
def registered_model_create(
    *,
    project: Model,
    name: str,
    created_by: AbstractBaseUser,
    description: str = "",
    model_card: str = "",
    owners: Iterable[AbstractBaseUser] = (),
    metric_directions: dict | None = None,
) -> RegisteredModel:
    _require_contributor(created_by, project, "Registering a model")
    _clean_name(name)
    _clean_card(model_card)
    directions = declared_directions_clean(metric_directions or {})
    owners = list(owners)
    model = RegisteredModel(
        project=project,
        name=name,
        description=description,
        model_card=model_card,
        metric_directions=directions,
        created_by=created_by,
    )
    try:
        with transaction.atomic():
            model.save(force_insert=True)
    except IntegrityError:
        raise Conflict(f"Project '{project.slug}' already has a model named '{name}'.", field="name") from None
    model.owners.set(owners)
    with ChangeSet() as changes:
        changes.audit(
            AuditAction.REGISTERED_MODEL_CREATED,
            obj=model,
            actor=created_by,
            changes={
                "name": name,
                "owners": _usernames(owners),
                "model_card_chars": len(model_card),
                **({"metric_directions": directions} if directions else {}),
            },
        )
    return model


@transaction.atomic
def registered_model_update(
    *,
    registered_model: RegisteredModel,
    changed_by: AbstractBaseUser | None,
    description: str | None = None,
    model_card: str | None = None,
    owners: Iterable[AbstractBaseUser] | None = None,
    metric_directions: dict | None = None,
) -> RegisteredModel:
    """Describe a model, rewrite its card, change its owners or declare which way its metrics are better; what
    equals the stored value records nothing.

    The card's text is not logged (the log keeps no free-form text); its length before and after is.
    """
    _clean_card(model_card)
    if metric_directions is not None:
        metric_directions = declared_directions_clean(metric_directions)
    model = model_lock(registered_model.pk)
    _require_contributor(changed_by, model.project, f"Changing model '{model.name}'")
    with ChangeSet() as changes:
        changed = changes.update(
            model,
            **given(description=description, model_card=model_card, metric_directions=metric_directions),
        )
        if "model_card" in changed:
            changed["model_card_chars"] = [len(text) for text in changed.pop("model_card")]
        if owners is not None:
            owners = list(owners)
            before = _usernames(model.owners.all())
            if _usernames(owners) != before:
                model.owners.set(owners)
                changed["owners"] = [before, _usernames(owners)]
        if changed:
            changes.audit(AuditAction.REGISTERED_MODEL_UPDATED, obj=model, actor=changed_by, changes=changed)
    return model


@transaction.atomic
def model_version_register(
    *, registered_model: RegisteredModel, artifact_version: Model, created_by: AbstractBaseUser
) -> tuple[ModelVersion, bool]:
    """Register an artifact version of the model's project as the model's next version, in stage `none`.

    Idempotent: registering the same artifact version again answers the existing model version (and False).
    """
    model = model_lock(registered_model.pk)
    artifact_version = ArtifactVersion.objects.select_related("artifact", "blob").get(pk=artifact_version.pk)
    _require_contributor(created_by, artifact_version.artifact, f"Registering a version of '{model.name}'")
    if artifact_version.artifact.project_id != model.project_id:
        raise InvalidInput(
            f"Artifact version {artifact_version} belongs to another project than model '{model.name}'; register "
            f"versions of project '{model.project.slug}' only.",
            field="artifact_version",
        )
    if existing := model.versions.filter(artifact_version=artifact_version).first():
        return existing, False
    number = (model.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    version = ModelVersion.objects.create(
        registered_model=model, number=number, artifact_version=artifact_version, created_by=created_by
    )
    version.registered_model = model
    with ChangeSet() as changes:
        changes.audit(
            AuditAction.MODEL_VERSION_REGISTERED,
            obj=version,
            actor=created_by,
            changes={
                "number": number,
                "artifact_version": str(artifact_version),
                "digest": artifact_version.blob.digest,
            },
        )
    return version, True


@transaction.atomic
def model_alias_set(
    *,
    registered_model: RegisteredModel,
    name: str,
    model_version: ModelVersion,
    set_by: AbstractBaseUser,
    imported_from: str = "",
) -> tuple[ModelAlias, bool]:
    """Point alias `name` at `model_version`, creating it or moving it; pointing it where it is records nothing.

    `imported_from` (`provenant import mlflow`) says the move copies another registry's alias: kept on the alias
    until a person moves it, and said in the audit entry."""
    _clean_name(name)
    if imported_from:
        imported_from = imported_from_clean(imported_from)
    if len(name) > 64:
        raise InvalidInput("An alias is at most 64 characters.", field="name")
    # A reference (`fraud-scorer@production`, `fraud-scorer@3`) reads these as a stage or a version number: an alias
    # spelled so could never be named by one.
    if name.isdigit() or name in REFERENCE_STAGES:
        meaning = "version number" if name.isdigit() else "stage"
        raise InvalidInput(
            f"'{name}' reads as a {meaning} in a reference (model@{name}); choose another alias.", field="name"
        )
    model = model_lock(registered_model.pk)
    _require_contributor(set_by, model.project, f"Moving an alias of '{model.name}'")
    if model_version.registered_model_id != model.pk:
        raise InvalidInput(f"Version {model_version} is not a version of model '{model.name}'.", field="version")
    alias = model.aliases.select_related("model_version__artifact_version__artifact").filter(name=name).first()
    if (
        alias is not None
        and set_by is not None
        and not can(set_by, Verb.CONTRIBUTE, alias.model_version.artifact_version.artifact)
    ):
        # It points at a version this person may not touch (a restricted artifact's): what it points at is not
        # theirs to know, nor to move.
        raise Conflict(
            f"Model '{model.name}' has an alias '{name}' you may not move; choose another name.", field="name"
        )
    if alias is not None and alias.model_version_id == model_version.pk:
        return alias, False
    before = None if alias is None else alias.model_version.number
    now = timezone.now()
    with ChangeSet() as changes:
        if alias is None:
            alias = ModelAlias.objects.create(
                registered_model=model,
                name=name,
                model_version=model_version,
                set_by=set_by,
                set_at=now,
                imported_from=imported_from,
            )
        else:
            changes.update(alias, model_version=model_version, set_by=set_by, set_at=now, imported_from=imported_from)
        alias.registered_model = model
        changes.audit(
            AuditAction.MODEL_ALIAS_SET,
            obj=alias,
            actor=set_by,
            changes={
                "alias": name,
                "version": [before, model_version.number],
                **({"imported_from": imported_from} if imported_from else {}),
            },
        )
    return alias, before is None


@transaction.atomic
def model_alias_delete(*, alias: ModelAlias, deleted_by: AbstractBaseUser) -> None:
    model = model_lock(alias.registered_model_id)
    _require_contributor(deleted_by, model.project, f"Removing an alias of '{model.name}'")
    alias = model.aliases.select_related("model_version__artifact_version__artifact").filter(pk=alias.pk).first()
    if alias is None:
        raise Conflict("This alias was already removed.")
    if deleted_by is not None and not can(deleted_by, Verb.CONTRIBUTE, alias.model_version.artifact_version.artifact):
        raise NotAllowed(f"You may not remove alias '{alias.name}' of '{model.name}'.")
    alias.registered_model = model
    version = alias.model_version.number
    with ChangeSet() as changes:
        # Described before the row goes: a deleted instance has lost its id.
        changes.audit(
            AuditAction.MODEL_ALIAS_DELETED,
            obj=alias,
            actor=deleted_by,
            changes={"alias": alias.name, "version": [version, None]},
        )
        alias.delete()


# Policies -------------------------------------------------------------------------------------------------------


def promotion_policy_clean(stage: str, values: dict[str, Any]) -> dict[str, Any]:
    """`values` for a policy of `stage`, checked and in their stored shape; InvalidInput naming the field at fault.
    Forms call it too, to show the fault beside the field."""
    if stage not in TARGET_STAGES:
        raise InvalidInput(f"Policies are set for {', '.join(TARGET_STAGES)}, not '{stage}'.", field="stage")
    unknown = set(values) - set(POLICY_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown policy fields: {', '.join(sorted(unknown))}.", field=sorted(unknown)[0])
    if "metric_thresholds" in values:
        values["metric_thresholds"] = metric_thresholds_clean(
            [] if values["metric_thresholds"] is None else values["metric_thresholds"]
        )
    if "allowed_licenses" in values:
        values["allowed_licenses"] = allowed_licenses_clean(
            [] if values["allowed_licenses"] is None else values["allowed_licenses"]
        )
    if "allowed_formats" in values:
        values["allowed_formats"] = allowed_formats_clean(
            [] if values["allowed_formats"] is None else values["allowed_formats"]
        )
    approvals = values.get("approvals_required")
    if approvals is not None and not 1 <= approvals <= 20:
        raise InvalidInput("A promotion needs between 1 and 20 approvals.", field="approvals_required")
    ttl = values.get("request_ttl_hours")
    if ttl is not None and not 1 <= ttl <= 24 * 90:
        raise InvalidInput("Requests expire after 1 to 2,160 hours (90 days).", field="request_ttl_hours")
    hours = values.get("min_hours_in_production")
    if hours is not None and stage != Stage.PRODUCTION:
        raise InvalidInput(
            "Only the production policy keeps a minimum time in production.", field="min_hours_in_production"
        )
    if hours is not None and not 1 <= hours <= 24 * 365:
        raise InvalidInput("The minimum time in production is 1 to 8,760 hours.", field="min_hours_in_production")
    previous = values.get("previous_production_to")
    if previous is not None and previous not in PromotionPolicy.PreviousProduction.values:
        raise InvalidInput(
            "The replaced production version goes to 'archived' or 'staging'.", field="previous_production_to"
        )
    return values


@transaction.atomic
def promotion_policy_set(
    *, project: Model, stage: str, changed_by: AbstractBaseUser, note: str = "", **values: Any
) -> tuple[PromotionPolicy, bool]:
    """Save the next version of a stage's policy: the current one with `values` changed. Maintainers only.

    Saving what is in force already saves nothing and records nothing (answers the current version and False).
    Open requests are judged under the new version from their next decision on.
    """
    if not can(changed_by, Verb.MANAGE, project):
        raise NotAllowed(f"Changing the promotion policies of project '{project.slug}' needs the maintainer role.")
    values = promotion_policy_clean(stage, dict(values))
    # The project's row lock queues concurrent changes, so each is judged against the version before it.
    list(Project.objects.select_for_update(no_key=True).filter(pk=project.pk).values_list("pk", flat=True))
    current = policy_current(project, stage)
    proposed = {field: values.get(field, getattr(current, field)) for field in POLICY_FIELDS}
    changed = diff(current, **proposed)
    if current.version and not changed:
        return current, False
    if not current.version:
        # The first saved version names every field, the built-in default it replaces as the value before.
        changed = {field: [getattr(current, field), value] for field, value in proposed.items()}
    with ChangeSet() as changes:
        policy = PromotionPolicy.objects.create(
            project=project,
            stage=stage,
            version=current.version + 1,
            note=note,
            changed_by=changed_by,
            changed_at=timezone.now(),
            **proposed,
        )
        changes.audit(
            AuditAction.PROMOTION_POLICY_CHANGED,
            obj=policy,
            actor=changed_by,
            changes={"stage": stage, "version": [current.version, policy.version], **changed},
        )
    return policy, True
