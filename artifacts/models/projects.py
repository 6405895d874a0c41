from typing import Self

from django.db import models

from artifacts.access.querysets import ProjectScopedQuerySet
from artifacts.access.roles import meta_permissions
from artifacts.access.rule import User, visible_projects
from artifacts.models.artifacts import Artifact
from core.validators import slug_validator


class ProjectQuerySet(ProjectScopedQuerySet):
    project_path = "pk"

    def visible_to(self, user: User) -> Self:
        """Projects `user` may see: those they may view, and those holding an artifact they were granted a role on
        (rule 4: the project's name, not its contents). `where(user, verb)` is the project-wide verbs alone."""
        return self.filter(visible_projects(user, Artifact.objects.all()))


class Project(models.Model):
    """The unit of ownership: datasets, runs and artifacts belong to exactly one project, and so do permissions."""

    slug = models.SlugField(
        max_length=64,
        unique=True,
        validators=[slug_validator],
        help_text="URL name; cannot change once created.",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]
        permissions = meta_permissions("project")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(slug__regex=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"),
                name="project_slug_shape",
            ),
        ]

    def __str__(self) -> str:
        return self.slug
