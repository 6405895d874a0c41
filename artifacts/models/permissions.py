"""The django-guardian object permissions that role grants stand for, in direct foreign-key tables.

One table per object kind and grantee kind, which is what every permission query joins on: integer keys, indexed,
never Python-built lists. The access rule (artifacts.access.rule) reads these tables and nothing else of the
catalog, so the catalog's querysets can apply the rule; services keep them in step with `RoleGrant`.
"""

from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


class ProjectUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey("artifacts.Project", on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        # The unique (user, permission, content_object) index answers "which projects may this user X?"
        # from the index alone; this one answers "who may X this project?".
        indexes = [models.Index(fields=["content_object", "permission"], name="project_uperm_object")]


class ProjectGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey("artifacts.Project", on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        indexes = [models.Index(fields=["content_object", "permission"], name="project_gperm_object")]


class ArtifactUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey("artifacts.Artifact", on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        indexes = [models.Index(fields=["content_object", "permission"], name="artifact_uperm_object")]


class ArtifactGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey("artifacts.Artifact", on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        indexes = [models.Index(fields=["content_object", "permission"], name="artifact_gperm_object")]
