"""The access rule, in one place, as conditions the database evaluates.

1. An active superuser may do everything.
2. A role on a project gives its verbs on the project and on everything in it: datasets, dataset versions,
   runs, blobs, upload sessions and artifacts, except restricted artifacts.
3. A role on an artifact gives its verbs on that artifact and its versions alone. It adds to what a project
   role gives (the union of both), and it is the only way to reach a restricted artifact. Contributing to
   one artifact includes uploading bytes into its project, to publish them there.
4. Holding any role on an artifact lets a user see the artifact's project (its name), not its contents.
5. A group's roles count for each of its members; a user's verbs are the union over all their grants.

Every condition is a subquery on the guardian permission tables keyed by integers, so a list filtered by
it is one SQL statement, whatever the number of grants. The catalog's querysets apply it to their rows
(artifacts.access.querysets.ProjectScopedQuerySet, from a declared path to each row's project or artifact), so this
module reads the permission tables and nothing else of the catalog: where a condition needs the artifact table,
the artifacts' queryset passes it in.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, Q, QuerySet

from artifacts.access.roles import Verb, codename
from artifacts.models.permissions import (
    ArtifactGroupObjectPermission,
    ArtifactUserObjectPermission,
    ProjectGroupObjectPermission,
    ProjectUserObjectPermission,
)

User = AbstractBaseUser | AnonymousUser
NOTHING = Q(pk__in=[])


def is_unrestricted(user: User) -> bool:
    return bool(user.is_active and user.is_superuser)


def _granted(user: User, verb: str, model_name: str, user_table, group_table) -> tuple[QuerySet, QuerySet]:
    name = codename(verb, model_name)
    by_user = user_table.objects.filter(user_id=user.pk, permission__codename=name)
    by_group = group_table.objects.filter(group__user=user.pk, permission__codename=name)
    return by_user.values("content_object_id"), by_group.values("content_object_id")


def projects_where(user: User, verb: str, field: str = "pk") -> Q:
    """`field` (a project id) is a project where `user` holds `verb` through a project-wide grant."""
    if is_unrestricted(user):
        return Q()
    if not user.is_active:
        return NOTHING
    by_user, by_group = _granted(user, verb, "project", ProjectUserObjectPermission, ProjectGroupObjectPermission)
    return Q(**{f"{field}__in": by_user}) | Q(**{f"{field}__in": by_group})


def artifacts_granted(user: User, verb: str, field: str = "pk") -> Q:
    """`field` (an artifact id) is an artifact on which `user` holds `verb` through a grant on it."""
    by_user, by_group = _granted(user, verb, "artifact", ArtifactUserObjectPermission, ArtifactGroupObjectPermission)
    return Q(**{f"{field}__in": by_user}) | Q(**{f"{field}__in": by_group})


def artifacts_where(user: User, verb: str) -> Q:
    """For an Artifact queryset: the artifacts on which `user` holds `verb` (rules 2 and 3)."""
    if is_unrestricted(user):
        return Q()
    if not user.is_active:
        return NOTHING
    return (projects_where(user, verb, "project_id") & Q(restricted=False)) | artifacts_granted(user, verb)


def artifact_ids_where(user: User, verb: str, field: str, artifacts: QuerySet) -> Q:
    """`field` (an artifact id) names an artifact on which `user` holds `verb` (rules 2 and 3).

    Four IN subqueries on `field`, OR-ed: the unrestricted artifacts of the projects granted to the user, those of
    the projects granted to their groups, the artifacts granted to the user, and those granted to their groups.
    PostgreSQL hashes each once per statement and tests rows against them. One IN over every artifact that passes
    artifacts_where (the same rule) is a join against a set whose size it cannot know instead: it read every
    artifact to build it, and, with one version per artifact, turned a newest-first page into a hash join and
    sort of every visible version (for a user who sees 6,718 of 10,000 versions: see benchmarks/README.md).
    `artifacts` is the artifact table the first two read.
    """
    if is_unrestricted(user):
        return Q()
    if not user.is_active:
        return NOTHING
    projects = _granted(user, verb, "project", ProjectUserObjectPermission, ProjectGroupObjectPermission)
    in_projects = [artifacts.filter(project_id__in=ids, restricted=False).values("pk") for ids in projects]
    return (
        Q(**{f"{field}__in": in_projects[0]})
        | Q(**{f"{field}__in": in_projects[1]})
        | artifacts_granted(user, verb, field)
    )


def visible_projects(user: User, artifacts: QuerySet) -> Q:
    """For a Project queryset: projects the user may see (rules 2 and 4), `artifacts` being the artifact table."""
    if is_unrestricted(user) or not user.is_active:
        return projects_where(user, Verb.VIEW)
    through_artifacts = artifacts.filter(artifacts_granted(user, Verb.VIEW)).values("project_id")
    return projects_where(user, Verb.VIEW) | Q(pk__in=through_artifacts)


def can(user: User, verb: str, obj: Model) -> bool:
    """Whether `user` holds `verb` on `obj`, as its model's project-scoped queryset says (`where(user, verb)`):
    one query, none for a superuser."""
    if is_unrestricted(user):
        return True
    if not user.is_active:
        return False
    manager = type(obj)._default_manager
    if not hasattr(manager, "where"):
        raise TypeError(f"No access rule applies to {obj._meta.verbose_name}: its queryset is not project-scoped.")
    return manager.where(user, verb).filter(pk=obj.pk).exists()


def can_upload(user: User, project: Model) -> bool:
    """Whether `user` may upload bytes into `project`: contributors to the project or to any of its artifacts
    (bytes are uploaded to a project, then published as a version of an artifact)."""
    if is_unrestricted(user):
        return True
    if not user.is_active:
        return False
    in_project = type(project)._default_manager.where(user, Verb.CONTRIBUTE).filter(pk=project.pk)
    on_artifact = project.artifacts.filter(artifacts_granted(user, Verb.CONTRIBUTE))
    return in_project.exists() or on_artifact.exists()
