"""Reads of who holds which role: the grants on an object, a project's maintainers."""

from django.apps import apps
from django.conf import settings
from django.db.models import Model, Q, QuerySet

from artifacts.access.roles import Role
from artifacts.models import RoleGrant


def role_grants_on(obj: Model) -> QuerySet[RoleGrant]:
    """The grants made on a project (project-wide ones) or on one artifact, newest first."""
    grants = RoleGrant.objects.select_related("user", "group", "project", "granted_by")
    if obj._meta.model_name == "project":
        return grants.filter(project_id=obj.pk, artifact__isnull=True)
    return grants.filter(artifact_id=obj.pk)


def project_maintainers(project: Model) -> QuerySet:
    """Active users holding a project-wide maintainer grant on `project`, directly or through a group."""
    grants = RoleGrant.objects.filter(project_id=project.pk, artifact__isnull=True, role=Role.MAINTAINER)
    user_model = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    return user_model.objects.filter(
        Q(pk__in=grants.filter(user__isnull=False).values("user_id"))
        | Q(groups__in=grants.filter(group__isnull=False).values("group_id")),
        is_active=True,
    ).distinct()
