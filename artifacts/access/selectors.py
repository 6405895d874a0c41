"""Reads of who holds which role: the grants on an object, a project's maintainers, a user's own roles."""

from django.contrib.auth import get_user_model
from django.db.models import F, Q, QuerySet

from artifacts.access.roles import Role
from artifacts.models import Artifact, Project, RoleGrant


def role_grants_on(obj: Project | Artifact) -> QuerySet[RoleGrant]:
    """The grants made on a project (project-wide ones) or on one artifact, newest first."""
    grants = RoleGrant.objects.select_related("user", "group", "project", "granted_by")
    if isinstance(obj, Project):
        return grants.filter(project_id=obj.pk, artifact__isnull=True)
    return grants.filter(artifact_id=obj.pk)


def project_maintainers(project: Project) -> QuerySet:
    """Active users holding a project-wide maintainer grant on `project`, directly or through a group."""
    grants = RoleGrant.objects.filter(project_id=project.pk, artifact__isnull=True, role=Role.MAINTAINER)
    user_model = get_user_model()
    return user_model.objects.filter(
        Q(pk__in=grants.filter(user__isnull=False).values("user_id"))
        | Q(groups__in=grants.filter(group__isnull=False).values("group_id")),
        is_active=True,
    ).distinct()


def role_grants_held_by(user) -> QuerySet[RoleGrant]:
    """The grants `user` holds, directly or through a group, by project slug, artifact name (project-wide first)
    and role."""
    return (
        RoleGrant.objects.filter(Q(user_id=user.pk) | Q(group__in=user.groups.all()))
        .select_related("project", "artifact", "group")
        .order_by("project__slug", F("artifact__name").asc(nulls_first=True), "role")
    )
