"""Legal holds: placed and released by a project's auditors and maintainers, with a reason, audited and announced.

While a hold is active nothing it covers is archived or deleted (the planner and apply ask
governance.lifecycle.selectors). A hold is never edited or deleted (triggers refuse it): releasing records who, when
and why, and the hold stays as the record of the matter.
"""

from datetime import UTC

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from artifacts.access.roles import Verb
from artifacts.access.rule import can
from artifacts.models import Artifact, ArtifactVersion, Dataset, DatasetVersion, Project
from core.audit.actions import AuditAction
from core.changes import ChangeSet
from core.errors import Conflict, InvalidInput, NotAllowed
from core.events import EventType
from governance.lifecycle.events import legal_hold_event
from governance.lifecycle.models import LegalHold
from governance.lifecycle.selectors import hold_scope

MAX_REASON_CHARS = 10_000


def _require_holder(user: AbstractBaseUser, project: Project, act: str) -> None:
    if not (can(user, Verb.AUDIT, project) or can(user, Verb.MANAGE, project)):
        raise NotAllowed(f"{act} legal holds on project '{project.slug}' needs the auditor or maintainer role.")


def _clean_reason(reason: str, field: str) -> str:
    if not reason or not reason.strip():
        raise InvalidInput("Say why: a legal hold's reason is part of its record.", field=field)
    if len(reason) > MAX_REASON_CHARS or "\x00" in reason:
        raise InvalidInput(f"A reason is at most {MAX_REASON_CHARS:,} characters, without NUL.", field=field)
    return reason


def _project_of(target: Model) -> int:
    if isinstance(target, Artifact | Dataset):
        return target.project_id
    if isinstance(target, ArtifactVersion):
        return target.artifact.project_id
    return target.dataset.project_id


@transaction.atomic
def legal_hold_place(
    *,
    project: Project,
    placed_by: AbstractBaseUser,
    reason: str,
    artifact: Artifact | None = None,
    artifact_version: ArtifactVersion | None = None,
    dataset: Dataset | None = None,
    dataset_version: DatasetVersion | None = None,
) -> LegalHold:
    """Hold the whole `project`, or the one artifact, dataset or version named (which must belong to it).

    Several holds may cover the same thing (separate matters are released separately). A version already deleted
    cannot be held: nothing of it is left to keep.
    """
    _require_holder(placed_by, project, "Placing")
    targets = {
        "artifact": artifact,
        "artifact_version": artifact_version,
        "dataset": dataset,
        "dataset_version": dataset_version,
    }
    named = {field: target for field, target in targets.items() if target is not None}
    if len(named) > 1:
        raise InvalidInput(
            f"A hold names one thing inside its project, or nothing for the whole project; this one names "
            f"{' and '.join(named)}: place one hold for each.",
            field=sorted(named)[1],
        )
    for field, target in named.items():
        if not can(placed_by, Verb.VIEW, target):
            # Worded as a missing one, as the API words an id the user may not see (a restricted artifact).
            raise InvalidInput(f"No {target._meta.verbose_name} with id {target.pk}.", field=field)
        if _project_of(target) != project.pk:
            raise InvalidInput(
                f"{target._meta.verbose_name.capitalize()} '{target}' is not in project '{project.slug}'.", field=field
            )
        if isinstance(target, ArtifactVersion | DatasetVersion) and hasattr(target, "tombstone"):
            raise Conflict(
                f"Version '{target}' was deleted on {target.tombstone.deleted_at:%Y-%m-%d}: nothing of it is left "
                "to hold.",
                field=field,
            )
    reason = _clean_reason(reason, "reason")
    # The project's row lock: applying a plan takes it (FOR SHARE at least) before it asks whether a version is
    # held, so a hold placed meanwhile is either seen by that check or waits until the act is over; never between.
    list(Project.objects.select_for_update(no_key=True).filter(pk=project.pk).values_list("pk", flat=True))
    with ChangeSet() as changes:
        hold = LegalHold.objects.create(
            project=project, placed_by=placed_by, placed_at=timezone.now(), reason=reason, **named
        )
        legal_hold_event(changes, EventType.LEGAL_HOLD_PLACED, hold, actor=placed_by)
        changes.audit(
            AuditAction.LEGAL_HOLD_PLACED,
            obj=hold,
            actor=placed_by,
            changes={
                "scope": hold_scope(hold),
                **{field: [None, target.pk] for field, target in named.items()},
                "reason": reason,
            },
        )
    return hold


@transaction.atomic
def legal_hold_release(*, hold: LegalHold, released_by: AbstractBaseUser, reason: str) -> LegalHold:
    """Release `hold`, saying why; what it covered is subject to the rules again (unless another hold covers it).

    Releasing a hold released already is a Conflict naming who released it and when.
    """
    hold = LegalHold.objects.select_for_update(of=("self",)).select_related("project").get(pk=hold.pk)
    _require_holder(released_by, hold.project, "Releasing")
    if hold.released_at is not None:
        raise Conflict(
            f"Legal hold {hold.pk} was released already, by {hold.released_by.get_username()} on "
            f"{hold.released_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({hold.release_reason}). Place a new hold if "
            "it is needed again."
        )
    reason = _clean_reason(reason, "reason")
    with ChangeSet() as changes:
        changed = changes.update(hold, released_by=released_by, released_at=timezone.now(), release_reason=reason)
        legal_hold_event(changes, EventType.LEGAL_HOLD_RELEASED, hold, actor=released_by)
        changes.audit(AuditAction.LEGAL_HOLD_RELEASED, obj=hold, actor=released_by, changes=changed)
    return hold
