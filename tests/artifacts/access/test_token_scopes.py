"""The permission matrix again, asked through tokens with a scope and a project restriction (rule 6 of
artifacts/access/rule.py): every endpoint and method of ENDPOINTS, for each kind of token below.

A token caps its owner's roles and never adds to them, so each kind of token must answer exactly as a caller
the matrix already knows, whose column in ENDPOINTS is the expectation:

- a superuser's read token answers as a viewer of the project on every GET and HEAD, and 403 to every other
  method, before any lookup (so for any id alike: nothing is revealed), where a viewer may sometimes write (a
  comment on a promotion): a read token writes nowhere;
- a superuser's write token answers as a contributor, and a review token as a reviewer;
- a superuser's admin token restricted to another project answers as a user with no role at all: 404 for every
  object of this project (the same answer as for one that does not exist), empty lists, 400 "No project".
  Two endpoints answer for whatever the caller audits anywhere, and the token audits its own project:
  ELSEWHERE says so;
- a maintainer's review token answers as a viewer: the scope allows reviewing, the roles do not, and the
  token never exceeds its owner.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from artifacts.access.roles import Role, Scope
from artifacts.access.rule import SAFE_METHODS
from artifacts.access.services import role_revoke
from governance.access.services import api_token_issue
from tests.artifacts.access.test_permission_matrix import (
    ENDPOINTS,
    PRINCIPALS,
    Endpoint,
    Hidden,
    World,
    body_text,
    build_world,
    send,
    service_account_token,
    stored,
)
from tests.artifacts.factories import ProjectFactory, UserFactory, grant

pytestmark = pytest.mark.django_db

#: (owner, scope, restricted to another project) -> the ENDPOINTS column the token must answer as.
TOKENS = {
    ("superuser", Scope.READ, False): "auditor",  # the read scope keeps view and audit: an auditor's verbs
    ("superuser", Scope.WRITE, False): "contributor",
    ("superuser", Scope.REVIEW, False): "reviewer",
    ("superuser", Scope.ADMIN, True): "no-role",
    ("maintainer", Scope.REVIEW, False): "viewer",
}
#: Token management is no role's business (everyone manages their own tokens), so it is declared apart: what a
#: token of each scope may do there, whoever owns it.
TOKEN_ROUTES = {"apitoken-list", "apitoken-detail", "apitoken-revoke"}
#: Where a token restricted to another project is answered for what it may do there (export the entries it
#: audits, sign a tree head), not as a user with no role at all.
ELSEWHERE = {("auditentry-export", "GET"): 200, ("treehead-list", "POST"): 201}


def token_client(user, scope: str, project=None) -> APIClient:
    _, plaintext = api_token_issue(user=user, name="matrix", lifetime=timedelta(days=1), scope=scope, project=project)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


CASES = [
    pytest.param(
        endpoint,
        owner,
        scope,
        elsewhere,
        id=f"{endpoint.name}:{endpoint.method}:{owner}-{scope}" + ("-elsewhere" if elsewhere else ""),
    )
    for endpoint in ENDPOINTS
    if endpoint.url_name not in TOKEN_ROUTES and endpoint.expected["anonymous"] == 401
    for (owner, scope, elsewhere) in TOKENS
]


@pytest.mark.parametrize(("endpoint", "owner", "scope", "elsewhere"), CASES)
def test_a_token_answers_as_the_role_its_scope_leaves(endpoint: Endpoint, owner: str, scope: str, elsewhere: bool):
    world: World = build_world(owner)
    client = token_client(world.principal, scope, ProjectFactory() if elsewhere else None)
    call = endpoint.call(world)
    expected = endpoint.expected[TOKENS[owner, scope, elsewhere]]
    if scope == Scope.READ and endpoint.method not in SAFE_METHODS:
        expected = 403
    if elsewhere:
        expected = ELSEWHERE.get((endpoint.url_name, endpoint.method), expected)
    before = stored(world)

    response = send(client, endpoint, call)

    assert response.status_code == expected, body_text(response)
    if scope == Scope.READ and endpoint.method not in SAFE_METHODS:
        assert "it only reads" in body_text(response)
    if expected >= 400 and endpoint.method not in ("GET", "HEAD"):
        assert stored(world) == before, "a refused request changed something"
    if isinstance(expected, Hidden):
        missing_call = call.naming_nothing()
        missing = send(client, endpoint, missing_call)
        assert missing.status_code == response.status_code
        assert body_text(missing).replace(str(missing_call.names), str(call.names)) == body_text(response)


@pytest.mark.parametrize(
    "endpoint",
    [e for e in ENDPOINTS if e.method not in SAFE_METHODS and e.url_name in TOKEN_ROUTES],
    ids=lambda e: f"{e.name}:{e.method}",
)
def test_a_read_token_writes_nowhere_even_where_its_owner_may(endpoint: Endpoint):
    """The token routes, left out of the test above: a superuser may do everything; through a read token, no
    unsafe method answers 2xx there either (every other endpoint is checked above, as 403)."""
    world = build_world("superuser")
    client = token_client(world.principal, Scope.READ)
    call = endpoint.call(world)
    before = stored(world)

    response = send(client, endpoint, call)

    assert response.status_code in (400, 403, 404), body_text(response)
    assert stored(world) == before


def test_a_token_loses_what_its_owner_loses_at_its_next_use():
    project = ProjectFactory()
    owner = UserFactory()
    role = grant(Role.CONTRIBUTOR, on=project, user=owner)
    client = token_client(owner, Scope.WRITE)
    url = reverse("api:dataset-list")

    assert client.post(url, {"project": project.slug, "name": "first"}, format="json").status_code == 201
    role_revoke(grant=role, revoked_by=None)
    assert client.post(url, {"project": project.slug, "name": "second"}, format="json").status_code == 400
    assert client.get(reverse("api:project-detail", kwargs={"slug": project.slug})).status_code == 404


def test_a_restricted_token_reaches_its_own_project_as_its_owner_does():
    world = build_world("maintainer")
    other = ProjectFactory()
    grant(Role.MAINTAINER, on=other, user=world.principal)
    client = token_client(world.principal, Scope.WRITE, world.project)

    listed = client.get(reverse("api:project-list")).json()
    slugs = [p["slug"] for p in listed["results"]] if isinstance(listed, dict) else [p["slug"] for p in listed]
    assert slugs == [world.project.slug]
    assert client.get(reverse("api:project-detail", kwargs={"slug": other.slug})).status_code == 404
    created = client.post(reverse("api:dataset-list"), {"project": world.project.slug, "name": "d"}, format="json")
    assert created.status_code == 201
    # Managing the project is no write: the write scope leaves the maintainer's manage verb out.
    renamed = client.patch(
        reverse("api:project-detail", kwargs={"slug": world.project.slug}), {"description": "x"}, format="json"
    )
    assert renamed.status_code == 403


def test_every_token_kind_names_a_known_column():
    assert set(TOKENS.values()) <= PRINCIPALS.keys()


def test_token_routes_by_scope_and_project():
    """Managing tokens takes an admin-scoped token; one restricted to another project finds no token of this
    project's service accounts; and a restricted token issues only tokens restricted as it is."""
    world = build_world("maintainer")
    account = service_account_token(world).names
    detail = reverse("api:apitoken-detail", kwargs={"pk": account})
    revoke = reverse("api:apitoken-revoke", kwargs={"pk": account})
    expires = (timezone.now() + timedelta(days=1)).isoformat()

    write = token_client(world.principal, Scope.WRITE)
    # Managing the project's accounts takes the manage verb, which the write scope leaves out.
    assert write.get(detail).status_code == write.post(revoke).status_code == 404
    own, _ = api_token_issue(user=world.principal, name="own", lifetime=timedelta(days=1))
    refused = write.post(reverse("api:apitoken-revoke", kwargs={"pk": own.pk}))
    assert refused.status_code == 403
    assert "admin-scoped" in refused.json()["detail"]

    elsewhere = token_client(world.principal, Scope.ADMIN, ProjectFactory())
    assert elsewhere.get(detail).status_code == 404
    assert elsewhere.post(revoke).status_code == 404
    widening = elsewhere.post(reverse("api:apitoken-list"), {"name": "x", "scope": "admin", "expires_at": expires})
    assert widening.status_code == 403

    admin = token_client(world.principal, Scope.ADMIN, world.project)
    assert admin.get(detail).status_code == 200
    assert admin.post(revoke).status_code == 200
