"""Roles, and the object permissions each one stands for.

A role is granted on a project (it reaches everything in the project except restricted artifacts) or on a
single artifact (it reaches that artifact alone). What a role lets its holder do is the same set of verbs on
either kind of object; the verbs are django-guardian permissions named `<verb>_project` and `<verb>_artifact`.
"""

from django.db import models


class Verb(models.TextChoices):
    VIEW = "view", "Read metadata and download bytes"
    CONTRIBUTE = "contribute", "Publish datasets, runs and versions"
    REVIEW = "review", "Approve or reject promotions"
    MANAGE = "manage", "Manage settings, webhooks and members"
    AUDIT = "audit", "Read the audit trail"


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    CONTRIBUTOR = "contributor", "Contributor"
    REVIEWER = "reviewer", "Reviewer"
    MAINTAINER = "maintainer", "Maintainer"
    AUDITOR = "auditor", "Auditor"


ROLE_VERBS: dict[str, frozenset[str]] = {
    Role.VIEWER: frozenset({Verb.VIEW}),
    Role.CONTRIBUTOR: frozenset({Verb.VIEW, Verb.CONTRIBUTE}),
    # Reviewing is kept apart from publishing: a reviewer approves what others made.
    Role.REVIEWER: frozenset({Verb.VIEW, Verb.REVIEW}),
    Role.MAINTAINER: frozenset({Verb.VIEW, Verb.CONTRIBUTE, Verb.MANAGE}),
    Role.AUDITOR: frozenset({Verb.VIEW, Verb.AUDIT}),
}

#: The custom permissions each object kind declares in its Meta (`view_*` is Django's default).
EXTRA_VERBS = [Verb.CONTRIBUTE, Verb.REVIEW, Verb.MANAGE, Verb.AUDIT]


def codename(verb: str, model_name: str) -> str:
    return f"{verb}_{model_name}"


def meta_permissions(model_name: str) -> list[tuple[str, str]]:
    """The `Meta.permissions` of a model that roles can be granted on."""
    return [(codename(verb, model_name), f"{verb.label} ({model_name})") for verb in EXTRA_VERBS]


def role_codenames(roles: set[str] | frozenset[str], model_name: str) -> set[str]:
    """Every permission codename that `roles` grant on an object of `model_name`."""
    return {codename(verb, model_name) for role in roles for verb in ROLE_VERBS[role]}


class Scope(models.TextChoices):
    """What a token may do, at most: a cap on its owner's roles, never a grant of its own."""

    READ = "read", "Read metadata and download bytes"
    WRITE = "write", "Read, and publish datasets, runs and versions"
    REVIEW = "review", "Read, and approve or reject promotions"
    ADMIN = "admin", "Everything its owner's roles allow"


SCOPE_VERBS: dict[str, frozenset[str]] = {
    # Reading the audit trail is reading: an auditor's pipeline reads its projects' entries with a read token. The
    # whole log's export stays a global permission, which only an admin token restricted to no project carries.
    Scope.READ: frozenset({Verb.VIEW, Verb.AUDIT}),
    Scope.WRITE: frozenset({Verb.VIEW, Verb.CONTRIBUTE}),
    Scope.REVIEW: frozenset({Verb.VIEW, Verb.REVIEW}),
    Scope.ADMIN: frozenset(Verb.values),
}
