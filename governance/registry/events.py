"""What the registry's events say: promotions and stage changes. Given to the change's ChangeSet, which writes them
through core.outbox."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Model

from artifacts.events import version_reference
from core.changes import ChangeSet
from core.events import EventType
from core.outbox import api_url


def model_version_document(version: Model) -> dict:
    return {
        "id": version.pk,
        "model": version.registered_model.name,
        "version": version.number,
        "stage": version.stage,
        "artifact_version": version_reference(version.artifact_version),
        "url": api_url("modelversion-detail", version.pk),
    }


def promotion_event(
    changes: ChangeSet,
    event_type: str,
    request: Model,
    *,
    approvals: int,
    actor: AbstractBaseUser | None,
    reason: str | None = None,
) -> None:
    """`promotion.requested`, `.approved` (each approval, with the count that now stands, and once more when a
    request approved earlier is applied), `.rejected`, or `.closed` (withdrawn, expired, invalidated: `reason`)."""
    changes.event(
        event_type,
        project=request.registered_model.project,
        actor=actor,
        data=({"reason": reason} if reason is not None else {})
        | {
            "promotion_request": {
                "id": request.pk,
                "kind": request.kind,
                "target_stage": request.target_stage,
                "state": request.state,
                "requested_by": request.requested_by.get_username(),
                "approvals": approvals,
                "approvals_required": request.approvals_required,
                "url": api_url("promotionrequest-detail", request.pk),
            },
            "model_version": model_version_document(request.model_version),
        },
    )


def stage_changed_event(
    changes: ChangeSet,
    version: Model,
    *,
    from_stage: str,
    cause: str,
    break_glass: bool,
    actor: AbstractBaseUser | None,
) -> None:
    """`cause` says why (promotion, replaced, rollback, imported), so a deployer can act on approved moves only."""
    changes.event(
        EventType.MODEL_VERSION_STAGE_CHANGED,
        project=version.registered_model.project,
        actor=actor,
        data={
            "model_version": model_version_document(version),
            "from_stage": from_stage,
            "to_stage": version.stage,
            "cause": cause,
            "break_glass": break_glass,
        },
    )
