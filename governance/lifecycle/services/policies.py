"""Retention policies: a project's rules, changed by maintainers as a new version each time, audited.

Versioned as promotion policies are (governance/registry/services/registry.py, promotion_policy_set): a version is
never edited (a trigger refuses it), and saving what is in force saves and records nothing.
"""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from artifacts.access.roles import Verb
from artifacts.access.rule import can
from artifacts.models import Project
from core.audit.actions import AuditAction
from core.changes import ChangeSet
from core.errors import InvalidInput, NotAllowed
from governance.lifecycle.models import RetentionPolicy
from governance.lifecycle.rules import rules_stored
from governance.lifecycle.selectors import retention_policy_current

MAX_NOTE_CHARS = 10_000


@transaction.atomic
def retention_policy_set(
    *,
    project: Project,
    changed_by: AbstractBaseUser,
    rules: Any = None,
    auto_apply: bool | None = None,
    note: str = "",
) -> tuple[RetentionPolicy, bool]:
    """Save the next version of `project`'s retention policy: the current one with `rules` and `auto_apply` changed
    where given (None keeps the value in force). Maintainers only.

    The rules are checked (governance.lifecycle.rules, InvalidInput naming the rule and field at fault) and stored
    in their cleaned shape, so two spellings of the same rules are one version. Saving what is in force answers the
    current version and False. Plans made earlier keep the version they were made under; the next plan uses this one.
    """
    if not can(changed_by, Verb.MANAGE, project):
        raise NotAllowed(f"Changing the retention rules of project '{project.slug}' needs the maintainer role.")
    if len(note) > MAX_NOTE_CHARS:
        raise InvalidInput(f"A note is at most {MAX_NOTE_CHARS:,} characters.", field="note")
    cleaned = None if rules is None else rules_stored(rules)
    # The project's row lock queues concurrent changes, so each is judged against the version before it.
    list(Project.objects.select_for_update(no_key=True).filter(pk=project.pk).values_list("pk", flat=True))
    current = retention_policy_current(project)
    proposed = {
        "rules": current.rules if cleaned is None else cleaned,
        "auto_apply": current.auto_apply if auto_apply is None else auto_apply,
    }
    changed = {field: [getattr(current, field), value] for field, value in proposed.items()}
    if current.version:
        changed = {field: values for field, values in changed.items() if values[0] != values[1]}
        if not changed:
            return current, False
    with ChangeSet() as changes:
        policy = RetentionPolicy.objects.create(
            project=project,
            version=current.version + 1,
            note=note,
            changed_by=changed_by,
            changed_at=timezone.now(),
            **proposed,
        )
        changes.audit(
            AuditAction.RETENTION_POLICY_CHANGED,
            obj=policy,
            actor=changed_by,
            changes={"version": [current.version, policy.version], **changed, **({"note": note} if note else {})},
        )
    return policy, True
