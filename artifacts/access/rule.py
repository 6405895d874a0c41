"""The access rule, in one place, as conditions the database evaluates.

1. An active superuser may do everything.
2. A role on a project gives its verbs on the project and on everything in it: datasets, dataset versions,
   runs, blobs, upload sessions and artifacts, except restricted artifacts.
3. A role on an artifact gives its verbs on that artifact and its versions alone. It adds to what a project
   role gives (the union of both), and it is the only way to reach a restricted artifact. Contributing to
   one artifact includes uploading bytes into its project, to publish them there.
4. Holding any role on an artifact lets a user see the artifact's project (its name), not its contents.
5. A group's roles count for each of its members; a user's verbs are the union over all their grants.
6. A request made with an API token does at most what the token's scope allows (roles.SCOPE_VERBS), and, if
   the token is restricted to a project, only in that project: the token caps its owner's roles, read at the
   time of use, and never adds to them. A read-scoped token sends no unsafe method at all (`method_allowed`).
   Permissions that are not about a project (creating projects, reading the whole audit log) need an
   admin-scoped token restricted to no project (`holds_global`).

How rule 6 reaches here: the bearer authentication binds the token's scope and project to the very user
instance the request is made as (`bind_credential`), and every function below reads it from the `user` it is
given. Bound to that instance, not to a thread or context variable, the cap applies to the caller alone: a
question asked about another user (a project's maintainers, a webhook's recipients, a reviewer) is answered
by their roles, and a portal session or a Celery task, which bind nothing, are answered by the roles alone.

Every condition is a subquery on the guardian permission tables keyed by integers, so a list filtered by
it is one SQL statement, whatever the number of grants. The catalog's querysets apply it to their rows
(artifacts.access.querysets.ProjectScopedQuerySet, from a declared path to each row's project or artifact), so this
module reads the permission tables and nothing else of the catalog: where a condition needs the artifact table,
the artifacts' queryset passes it in.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, Q, QuerySet

from artifacts.access.roles import SCOPE_VERBS, Scope, Verb, codename
from artifacts.models.permissions import (
    ArtifactGroupObjectPermission,
    ArtifactUserObjectPermission,
    ProjectGroupObjectPermission,
    ProjectUserObjectPermission,
)

User = AbstractBaseUser | AnonymousUser
NOTHING = Q(pk__in=[])
#: Every row, as a condition that survives being OR-ed (an empty Q() vanishes from `Q() | other`).
EVERYTHING = ~NOTHING


@dataclass(frozen=True)
class Credential:
    """The cap a token puts on the request it authenticates (rule 6): its scope, and the project it is
    restricted to, if any."""

    scope: str
    project_id: int | None = None

    @property
    def caps_nothing(self) -> bool:
        return self.scope == Scope.ADMIN and self.project_id is None


CREDENTIAL_ATTRIBUTE = "_provenant_credential"


def bind_credential(user: User, credential: Credential) -> None:
    """Cap what `user` (the instance a request is made as) may do by the token it authenticated with."""
    setattr(user, CREDENTIAL_ATTRIBUTE, credential)


def credential_of(user: User) -> Credential | None:
    """The token cap bound to this user instance; None for a session, a command or a task (roles alone)."""
    credential = getattr(user, CREDENTIAL_ATTRIBUTE, None)
    return None if credential is None or credential.caps_nothing else credential


def scope_allows(user: User, verb: str) -> bool:
    """Whether the token `user` acts through (if any) allows `verb` at all."""
    credential = credential_of(user)
    return credential is None or verb in SCOPE_VERBS[credential.scope]


def restricted_project_id(user: User) -> int | None:
    credential = credential_of(user)
    return None if credential is None else credential.project_id


#: Methods that change nothing: the only ones a read-scoped token may send.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def method_allowed(user: User, method: str) -> bool:
    """Whether the token `user` acts through (if any) may send `method` at all: a read-scoped one changes nothing,
    not even what a viewer's role lets a person write (a comment on a promotion). The API's default permission
    class (artifacts.access.api_permission) asks this before any view runs."""
    credential = credential_of(user)
    return credential is None or credential.scope != Scope.READ or method.upper() in SAFE_METHODS


def is_unrestricted(user: User) -> bool:
    """An active superuser acting without a token's cap: everything, with no query."""
    return bool(user.is_active and user.is_superuser and credential_of(user) is None)


def holds_global(user: User, perm: str) -> bool:
    """A permission about no one project (`artifacts.add_project`, the whole audit log): the user's own, through a
    token only an admin-scoped one restricted to no project (rule 6)."""
    return bool(user.is_active and credential_of(user) is None and user.has_perm(perm))


def _superuser_capped(user: User, field: str) -> Q:
    """What a superuser acting through a capped token reaches, its verb allowed: the token's project or all."""
    project_id = restricted_project_id(user)
    return EVERYTHING if project_id is None else Q(**{field: project_id})


def _granted(user: User, verb: str, model_name: str, user_table, group_table) -> tuple[QuerySet, QuerySet]:
    name = codename(verb, model_name)
    by_user = user_table.objects.filter(user_id=user.pk, permission__codename=name)
    by_group = group_table.objects.filter(group__user=user.pk, permission__codename=name)
    if not scope_allows(user, verb):
        by_user, by_group = by_user.none(), by_group.none()
    if (project_id := restricted_project_id(user)) is not None:
        # Grants on the token's project, or on artifacts in it (rule 6).
        field = "content_object_id" if model_name == "project" else "content_object__project_id"
        by_user, by_group = by_user.filter(**{field: project_id}), by_group.filter(**{field: project_id})
    return by_user.values("content_object_id"), by_group.values("content_object_id")


def projects_where(user: User, verb: str, field: str = "pk") -> Q:
    """`field` (a project id) is a project where `user` holds `verb` through a project-wide grant."""
    if is_unrestricted(user):
        return Q()
    if not user.is_active or not scope_allows(user, verb):
        return NOTHING
    if user.is_superuser:
        return _superuser_capped(user, field)
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
    if not user.is_active or not scope_allows(user, verb):
        return NOTHING
    if user.is_superuser:
        return _superuser_capped(user, "project_id")
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
    if not user.is_active or not scope_allows(user, verb):
        return NOTHING
    if user.is_superuser:
        project_id = restricted_project_id(user)
        # EVERYTHING, not Q(): an ArtifactScopedQuerySet ORs this with its project-wide rows, and `Q() | other` is
        # `other` alone (a superuser's read token would lose every entry about an artifact).
        if project_id is None:
            return EVERYTHING
        return Q(**{f"{field}__in": artifacts.filter(project_id=project_id).values("pk")})
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
