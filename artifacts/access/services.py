"""Role grants, and the guardian object permissions they stand for: the one way access is given or taken."""

from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from artifacts.access.roles import Role, role_codenames
from artifacts.models import Artifact, Project, RoleGrant
from core.audit.actions import AuditAction
from core.changes import ChangeSet
from core.errors import Conflict, InvalidInput


def _grantee_filter(*, user: AbstractBaseUser | None, group: Group | None) -> dict:
    return {"user": user, "group__isnull": True} if user is not None else {"group": group, "user__isnull": True}


def _scope_filter(obj: Model) -> dict:
    if isinstance(obj, Project):
        return {"project_id": obj.pk, "artifact__isnull": True}
    return {"artifact_id": obj.pk}


def _sync_object_permissions(obj: Model, *, user: AbstractBaseUser | None, group: Group | None) -> None:
    """Make the grantee's guardian permissions on `obj` exactly those its remaining role grants stand for."""
    roles = set(
        RoleGrant.objects.filter(**_scope_filter(obj), **_grantee_filter(user=user, group=group)).values_list(
            "role", flat=True
        )
    )
    wanted = Permission.objects.filter(
        content_type=ContentType.objects.get_for_model(obj),
        codename__in=role_codenames(roles, obj._meta.model_name),
    )
    if user is not None:
        table, grantee = get_user_obj_perms_model(obj), {"user": user}
    else:
        table, grantee = get_group_obj_perms_model(obj), {"group": group}
    held = table.objects.filter(content_object=obj, **grantee)
    held.exclude(permission__in=wanted).delete()
    have = set(held.values_list("permission_id", flat=True))
    table.objects.bulk_create(
        [
            table(content_object=obj, permission=permission, **grantee)
            for permission in wanted
            if permission.pk not in have
        ]
    )


def _check_grantee(user: AbstractBaseUser | None, group: Group | None) -> None:
    if (user is None) == (group is None):
        raise InvalidInput("Grant a role to one user or one group.", field="user")
    if user is not None and not user.is_active:
        raise InvalidInput(f"User {user.get_username()} is inactive; activate the account first.", field="user")


@transaction.atomic
def role_grant(
    *,
    obj: Model,
    role: str,
    granted_by: AbstractBaseUser | None,
    user: AbstractBaseUser | None = None,
    group: Group | None = None,
) -> tuple[RoleGrant, bool]:
    """Give `role` on a project or an artifact to a user or a group; granting what is held already changes
    nothing, records nothing and answers the existing grant.

    For a grant on an artifact, load its project with it (the log names the project).
    """
    if role not in Role.values:
        raise InvalidInput(f"Unknown role '{role}'. Roles: {', '.join(Role.values)}.", field="role")
    _check_grantee(user, group)
    if not isinstance(obj, Project | Artifact):
        raise InvalidInput(f"Roles are granted on projects and artifacts, not on {obj._meta.verbose_name}.")
    on_project = isinstance(obj, Project)
    existing = RoleGrant.objects.filter(**_scope_filter(obj), **_grantee_filter(user=user, group=group), role=role)
    if grant := existing.first():
        return grant, False
    try:
        with transaction.atomic():
            grant = RoleGrant.objects.create(
                project=obj if on_project else obj.project,
                artifact=None if on_project else obj,
                user=user,
                group=group,
                role=role,
                granted_by=granted_by,
                granted_at=timezone.now(),
            )
    except IntegrityError:
        # A concurrent request granted the same role first: that grant is the answer.
        return existing.get(), False
    _sync_object_permissions(obj, user=user, group=group)
    with ChangeSet() as changes:
        changes.audit(AuditAction.ROLE_GRANT_GRANTED, obj=grant, actor=granted_by, changes=_grant_facts(grant))
    return grant, True


def _grant_facts(grant: RoleGrant) -> dict:
    return {
        "role": grant.role,
        "grantee": grant.grantee_label,
        "user": grant.user_id,
        "group": grant.group_id,
        "on": grant.scope_label,
        "granted_by": grant.granted_by.get_username() if grant.granted_by_id else None,
        "granted_at": grant.granted_at,
    }


def _lock_grant(grant: RoleGrant) -> RoleGrant | None:
    """Lock the grant, and first, if it is a project-wide maintainer grant, every such grant of its project.

    Two maintainers revoking each other at once then queue on the same rows in the same order (no deadlock),
    and the second sees that the first left only one maintainer.
    """
    if grant.artifact_id is None and grant.role == Role.MAINTAINER:
        maintainers = RoleGrant.objects.filter(project_id=grant.project_id, artifact__isnull=True, role=Role.MAINTAINER)
        list(maintainers.select_for_update().order_by("pk").values_list("pk", flat=True))
    locked = RoleGrant.objects.select_for_update(of=("self",)).select_related(
        "project", "artifact__project", "user", "group", "granted_by"
    )
    return locked.filter(pk=grant.pk).first()


def _is_last_maintainer(grant: RoleGrant) -> bool:
    if grant.artifact_id is not None or grant.role != Role.MAINTAINER:
        return False
    maintainers = RoleGrant.objects.filter(project_id=grant.project_id, artifact__isnull=True, role=Role.MAINTAINER)
    return not maintainers.exclude(pk=grant.pk).exists()


@transaction.atomic
def role_revoke(*, grant: RoleGrant, revoked_by: AbstractBaseUser | None) -> None:
    """Take a role away; its permissions go with it at once (whatever other grants still give stays)."""
    grant = _lock_grant(grant)
    if grant is None:
        raise Conflict("This grant was already revoked.")
    if _is_last_maintainer(grant):
        raise Conflict(
            f"{grant.grantee_label.capitalize()} is the last maintainer of project {grant.project.slug}; "
            "grant the role to someone else first, so the project is never left without one."
        )
    obj = grant.artifact or grant.project
    user, group = grant.user, grant.group
    with ChangeSet() as changes:
        # Described before the row goes, so the entry names it by its id.
        changes.audit(AuditAction.ROLE_GRANT_REVOKED, obj=grant, actor=revoked_by, changes=_grant_facts(grant))
        grant.delete()
        _sync_object_permissions(obj, user=user, group=group)
