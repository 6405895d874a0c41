"""Who holds which role on which object.

`RoleGrant` is the record a person reads and reviews: a role, given to a user or a group, on a project or
on one artifact, by someone, at some time. The permissions it stands for are stored as django-guardian
object permissions in direct foreign-key tables (artifacts.models.permissions). Services keep the two in step;
nothing else writes either.
"""

from typing import Self

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q

from artifacts.access.roles import Role
from artifacts.access.rule import User, is_unrestricted
from artifacts.models.artifacts import ArtifactScopedQuerySet
from artifacts.models.projects import Project


class RoleGrantQuerySet(ArtifactScopedQuerySet):
    """A grant is on its artifact, or, with no artifact, on its project: `where(user, verb)` asks for the verb on
    that. `visible_to` lists more: every grant on a project the user may see, so a member sees who else holds a
    role there."""

    project_path = "project_id"
    artifact_path = "artifact_id"

    def visible_to(self, user: User) -> Self:
        """Grants on the projects `user` may see (every grant for a superuser)."""
        if is_unrestricted(user):
            return self
        return self.filter(project_id__in=Project.objects.visible_to(user).values("pk"))


class RoleGrant(models.Model):
    """A role held by a user or a group on a project, or on one artifact of it."""

    project = models.ForeignKey(
        "artifacts.Project",
        on_delete=models.CASCADE,
        related_name="role_grants",
        help_text="The project granted on, or the artifact's project for a grant on one artifact.",
    )
    artifact = models.ForeignKey(
        "artifacts.Artifact",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="role_grants",
        help_text="Empty for a project-wide grant.",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="role_grants"
    )
    group = models.ForeignKey(Group, on_delete=models.CASCADE, null=True, blank=True, related_name="role_grants")
    role = models.CharField(max_length=16, choices=Role.choices)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    granted_at = models.DateTimeField()

    objects = RoleGrantQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True) | Q(user__isnull=True, group__isnull=False),
                name="role_grant_one_grantee",
            ),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="role_grant_role_known"),
            # One row per (object, grantee, role): granting again is a no-op, not a duplicate to review twice.
            models.UniqueConstraint(
                fields=["project", "user", "role"],
                condition=Q(artifact__isnull=True, user__isnull=False),
                name="role_grant_project_user_once",
            ),
            models.UniqueConstraint(
                fields=["project", "group", "role"],
                condition=Q(artifact__isnull=True, group__isnull=False),
                name="role_grant_project_group_once",
            ),
            models.UniqueConstraint(
                fields=["artifact", "user", "role"],
                condition=Q(artifact__isnull=False, user__isnull=False),
                name="role_grant_artifact_user_once",
            ),
            models.UniqueConstraint(
                fields=["artifact", "group", "role"],
                condition=Q(artifact__isnull=False, group__isnull=False),
                name="role_grant_artifact_group_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} for {self.grantee_label} on {self.scope_label}"

    @property
    def grantee(self):
        return self.user if self.user_id else self.group

    @property
    def grantee_label(self) -> str:
        return f"user {self.user.get_username()}" if self.user_id else f"group {self.group.name}"

    @property
    def scope_label(self) -> str:
        return f"artifact {self.artifact}" if self.artifact_id else f"project {self.project.slug}"
