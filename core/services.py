"""Helpers every service module uses to turn model validation into domain errors."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from core.errors import Conflict, InvalidInput
from core.validators import parse_digest


def validated(instance: models.Model, *, exclude: Iterable[str] = ()) -> None:
    """Run the model's field validators and constraints; turn the first problem into an InvalidInput."""
    try:
        instance.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise InvalidInput(" ".join(messages), field=None if field == "__all__" else field) from None


def digest_hex(value: str, field: str) -> str:
    try:
        return parse_digest(value)
    except ValidationError as error:
        raise InvalidInput(error.messages[0], field=field) from None


def insert_unique(instance: models.Model, *, taken: models.QuerySet, conflict: Conflict) -> None:
    """Insert `instance` unless `taken` shows its name is in use; raise `conflict` either way it is.

    The check gives the common case a clear answer; the unique constraint decides a race between two
    requests, whose loser gets the same Conflict instead of a database error.
    """
    if taken.exists():
        raise conflict
    try:
        with transaction.atomic():
            instance.save(force_insert=True)
    except IntegrityError:
        if taken.exists():
            raise conflict from None
        raise
