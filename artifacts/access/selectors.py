"""Reads of who holds which role: the grants on an object, a project's maintainers."""

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

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
