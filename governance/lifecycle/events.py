"""What lifecycle's events say: legal holds placed and released. Given to the change's ChangeSet, which writes them
through core.outbox."""

from django.contrib.auth.models import AbstractBaseUser

from core.audit.recorder import format_time
from core.changes import ChangeSet
from core.outbox import api_url
from governance.lifecycle.models import LegalHold
from governance.lifecycle.selectors import hold_scope


def legal_hold_document(hold: LegalHold) -> dict:
    scope = hold_scope(hold)
    target = None if scope == "project" else getattr(hold, scope)
    return {
        "id": hold.pk,
        "scope": scope,
        "target": None if target is None else {"id": target.pk, "label": str(target)},
        "reason": hold.reason,
        "placed_by": hold.placed_by.get_username(),
        "placed_at": format_time(hold.placed_at),
        "active": hold.released_at is None,
        "released_by": hold.released_by.get_username() if hold.released_by_id else None,
        "released_at": format_time(hold.released_at) if hold.released_at else None,
        "release_reason": hold.release_reason,
        "url": api_url("legalhold-detail", hold.pk),
    }


def legal_hold_event(changes: ChangeSet, event_type: str, hold: LegalHold, *, actor: AbstractBaseUser) -> None:
    """`legal_hold.placed` or `legal_hold.released`, with the hold as it now stands."""
    changes.event(event_type, project=hold.project, actor=actor, data={"legal_hold": legal_hold_document(hold)})
