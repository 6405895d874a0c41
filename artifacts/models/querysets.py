"""`visible_to(user)` for every model a user can reach: the one filter the API, the admin and exports apply.

Each delegates to the access rule in artifacts.access.rule, so the rule is written once.
"""

from django.apps import apps
from django.db import models
from django.db.models import Exists, OuterRef

from artifacts.access.roles import Verb
from artifacts.access.rule import artifact_ids_where, artifacts_where, projects_where, visible_projects


class ProjectQuerySet(models.QuerySet):
    def visible_to(self, user) -> "ProjectQuerySet":
        return self.filter(visible_projects(user))

    def where(self, user, verb: str) -> "ProjectQuerySet":
        """Projects on which `user` holds `verb` project-wide."""
        return self.filter(projects_where(user, verb))


class InProjectQuerySet(models.QuerySet):
    """For records that live in a project as a whole (datasets, runs, blobs, uploads)."""

    project_field = "project_id"

    def visible_to(self, user):
        return self.where(user, Verb.VIEW)

    def where(self, user, verb: str):
        return self.filter(projects_where(user, verb, self.project_field))


class DatasetVersionQuerySet(InProjectQuerySet):
    project_field = "dataset__project_id"


class BlobQuerySet(models.QuerySet):
    def visible_to(self, user) -> "BlobQuerySet":
        """Blobs some project the user may read holds (bytes are shared; the claims on them are not)."""
        project_blob = apps.get_model("artifacts", "ProjectBlob")
        return self.filter(Exists(project_blob.objects.visible_to(user).filter(blob=OuterRef("pk"))))


class ArtifactQuerySet(models.QuerySet):
    def visible_to(self, user) -> "ArtifactQuerySet":
        return self.where(user, Verb.VIEW)

    def where(self, user, verb: str) -> "ArtifactQuerySet":
        return self.filter(artifacts_where(user, verb))


class ArtifactVersionQuerySet(models.QuerySet):
    def visible_to(self, user) -> "ArtifactVersionQuerySet":
        return self.where(user, Verb.VIEW)

    def where(self, user, verb: str) -> "ArtifactVersionQuerySet":
        return self.filter(artifact_ids_where(user, verb, "artifact_id"))
