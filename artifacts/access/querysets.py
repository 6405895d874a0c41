"""One queryset base for every model whose rows live in a project: `visible_to(user)` and `where(user, verb)`.

A model declares the path from its rows to their project's id (`project_id` unless it says otherwise) and inherits
both, so the access rule (artifacts.access.rule) is applied the same way by the API, the portal, the admin and
exports, and `can()` asks a single object the same question. Records that belong to one artifact declare the path
to it instead (artifacts.models.artifacts.ArtifactScopedQuerySet, kept next to the artifact table it reads), so
restricted artifacts and grants on one artifact reach them. The few models seen more widely than they are acted on
(a project's name, a webhook's endpoints) override `visible_to` and say why.
"""

from typing import ClassVar, Self

from django.db import models
from django.db.models import Exists, Q

from artifacts.access.roles import Verb
from artifacts.access.rule import User, projects_where


class ProjectScopedQuerySet(models.QuerySet):
    """Rows of a project: a role on the project gives its verbs on them (rule 2)."""

    #: The lookup from a row to its project's id: `pk` for a project, `dataset__project_id` for a dataset version.
    project_path: ClassVar[str | None] = "project_id"

    def access_condition(self, user: User, verb: str) -> Q | Exists:
        """The condition a row meets when `user` holds `verb` on it, to filter, exclude or combine with another."""
        return projects_where(user, verb, self.project_path)

    def where(self, user: User, verb: str) -> Self:
        """The rows on which `user` holds `verb`."""
        return self.filter(self.access_condition(user, verb))

    def visible_to(self, user: User) -> Self:
        """The rows `user` may see: those they may view."""
        return self.where(user, Verb.VIEW)
