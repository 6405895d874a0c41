"""Reads for governance: role grants as people review them."""

from django.db.models import Model, QuerySet

from governance.models import RoleGrant


def role_grants_on(obj: Model) -> QuerySet[RoleGrant]:
    """The grants made on a project (project-wide ones) or on one artifact, newest first."""
    grants = RoleGrant.objects.select_related("user", "group", "project", "granted_by")
    if obj._meta.model_name == "project":
        return grants.filter(project_id=obj.pk, artifact__isnull=True)
    return grants.filter(artifact_id=obj.pk)
