"""The permission matrix: every endpoint of the API, every method it offers, asked by every kind of caller.

(Over 1,000 lines on purpose: the matrix is one table, ENDPOINTS, read against one set of callers; split, a reader
could no longer check at a glance that every endpoint is declared.)

The rule is written in artifacts/access/rule.py; this table is what it means for each request:

- anonymous: 401 with `WWW-Authenticate: Bearer realm="api"` everywhere, except the API's description (`schema`,
  `docs`), which is public on purpose: it describes the endpoints and holds no data.
- authenticated without a role: every list answers 200 and is empty; every URL naming an object answers 404 on
  every method; a create naming a project or an object by reference answers 400 "No project 'x'" / "No dataset
  with id N". Both answers are exactly those for a slug or id that does not exist (NOT_FOUND and
  NO_SUCH_REFERENCE below check that by asking again for one that does not), so nothing leaks existence.
- a role on the project: what its verbs allow answers 2xx, the rest 403 with a message naming the roles that
  would do. Creating projects is no role's business: it takes the global `artifacts.add_project` permission.
- a role on one artifact only: that artifact and its versions as the role allows; its project is visible
  (its name) but nothing else in it, so the project's other records answer 404 and project-wide work 403.
- upload sessions belong to whoever started them and need the contribute verb on the project, still, at every
  request: a session's owner who has lost that answers 403.

Every caller here holds an admin-scoped token restricted to no project (the roles alone speak). The same table is
asked again through tokens with a narrower scope or a project restriction in test_token_scopes.py (rule 6).

A new endpoint joins the matrix by declaring itself in ENDPOINTS: `test_every_endpoint_and_method_is_declared`
walks the URL resolver and fails, naming them, for any route and method of the `api` namespace left out.
OPTIONS is left out of the matrix: DRF answers it from the view class alone (no object is looked up for the
methods these views offer), so it says the same for any id, which test_options_reveals_nothing holds.
HEAD is declared where a view implements it; where DRF derives it from GET it runs GET's code.
"""

import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from artifacts.access.roles import Role, Scope
from artifacts.models import (
    Artifact,
    ArtifactVersion,
    Blob,
    Dataset,
    DatasetVersion,
    Project,
    ProjectBlob,
    RoleGrant,
    Run,
    UploadSession,
)
from artifacts.services import run_update
from artifacts.services import uploads as upload_services
from artifacts.services.integrity import blob_verify
from artifacts.storage.reads import iter_blob
from core.audit.recorder import audit_record, tree_head_sign
from governance.access.services import api_token_issue, service_account_create
from governance.lifecycle.models import LegalHold, RetentionPlan, RetentionPolicy
from governance.lifecycle.services.holds import legal_hold_place
from governance.lifecycle.services.plans import retention_plan_create
from governance.lifecycle.services.policies import retention_policy_set
from governance.registry.models import (
    ModelAlias,
    ModelVersion,
    PromotionDecision,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    StageTransition,
)
from governance.registry.services.promotions import promotion_approve
from governance.registry.services.registry import model_alias_set, promotion_policy_set
from governance.supplychain.models import SigningMethod, TrustedSigningKey, VersionSignature
from governance.supplychain.services.scans import blob_scan
from governance.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookSecret
from governance.webhooks.services import webhook_endpoint_test
from tests.artifacts.factories import (
    ArtifactVersionFactory,
    BlobFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
    UserFactory,
    grant,
    sha256,
)
from tests.governance.factories import (
    ModelVersionFactory,
    PromotionRequestFactory,
    RegisteredModelFactory,
    WebhookEndpointFactory,
    token_for,
)
from tests.governance.supplychain.factories import TrustedSigningKeyFactory, VersionSignatureFactory
from tests.governance.supplychain.signing import ec_key, sign_with_key

pytestmark = pytest.mark.django_db


class Hidden(int):
    """A refusal that must read exactly like the answer about something that does not exist."""


NOT_FOUND = Hidden(404)
NO_SUCH_REFERENCE = Hidden(400)
#: What stands in, in a second request, for the slug or id a Hidden answer hides.
MISSING = {str: "no-such-project", int: 10**9, uuid.UUID: uuid.UUID(int=1)}


@dataclass
class World:
    """A project with one of everything in it, and the caller the case is run as."""

    project: Project
    dataset_version: DatasetVersion
    run: Run
    artifact_version: ArtifactVersion
    blob: Blob  # uploaded to the project, in no version yet
    principal: AbstractBaseUser | None = None

    @property
    def dataset(self):
        return self.dataset_version.dataset

    @property
    def artifact(self) -> Artifact:
        return self.artifact_version.artifact


PRINCIPALS: dict[str, Callable[[World], AbstractBaseUser | None]] = {
    "anonymous": lambda world: None,
    "no-role": lambda world: UserFactory(),
    **{role.value: lambda world, role=role: grant(role, on=world.project).user for role in Role},
    "artifact-contributor": lambda world: grant(Role.CONTRIBUTOR, on=world.artifact).user,
    "artifact-maintainer": lambda world: grant(Role.MAINTAINER, on=world.artifact).user,
    "superuser": lambda world: UserFactory(is_superuser=True),
}
READ_ONLY = ("viewer", "reviewer", "auditor")
ARTIFACT_ONLY = ("artifact-contributor", "artifact-maintainer")


def answers(default: int, **special: int) -> dict[str, int]:
    """`default` for every caller with a token, 401 for anonymous, unless `special` (dashes or underscores
    in the names) says otherwise."""
    statuses = dict.fromkeys(PRINCIPALS, default) | {"anonymous": 401}
    for name, status in special.items():
        statuses[name.replace("_", "-")] = status
    return statuses


def each(names: tuple[str, ...], status: int) -> dict[str, int]:
    return dict.fromkeys(names, status)


@dataclass(frozen=True)
class Call:
    kwargs: dict[str, Any] = field(default_factory=dict)
    body: dict | bytes | None = None
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    #: The slug or id (in the URL or the body) by which the request names what a Hidden answer hides.
    names: Any = None

    def naming_nothing(self) -> "Call":
        """The same request, naming something that does not exist instead."""
        missing = MISSING[type(self.names)]

        def swap(values: dict) -> dict:
            return {key: missing if value == self.names else value for key, value in values.items()}

        body = swap(self.body) if isinstance(self.body, dict) else self.body
        return Call(kwargs=swap(self.kwargs), body=body, query=swap(self.query), headers=self.headers, names=missing)


@dataclass(frozen=True)
class Endpoint:
    label: str  # the route as a reader knows it: the first part of every case id
    url_name: str  # in the `api` namespace
    method: str
    expected: dict[str, int]
    call: Callable[[World], Call] = lambda world: Call()
    variant: str = ""  # names a second declaration of one route and method

    @property
    def name(self) -> str:
        return f"{self.label}({self.variant})" if self.variant else self.label


def project_call(world: World, body: dict | None = None) -> Call:
    return Call(kwargs={"slug": world.project.slug}, body=body, names=world.project.slug)


def in_project(body: dict) -> Callable[[World], Call]:
    """A create that names the project by slug in its body."""

    def call(world: World) -> Call:
        return Call(body={"project": world.project.slug, **body}, names=world.project.slug)

    return call


def by_pk(obj: Callable[[World], Any], body: dict | None = None) -> Callable[[World], Call]:
    def call(world: World) -> Call:
        pk = obj(world).pk
        return Call(kwargs={"pk": pk}, body=body, names=pk)

    return call


def bystander_grant(on: Callable[[World], Any]) -> Callable[[World], Call]:
    """Someone else's viewer grant, for a maintainer to revoke."""

    def call(world: World) -> Call:
        target = on(world)
        revocable = grant(Role.VIEWER, on=target)
        kwargs = {"slug": target.slug} if isinstance(target, Project) else {"pk": target.pk}
        return Call(kwargs={**kwargs, "grant_id": revocable.pk}, names=next(iter(kwargs.values())))

    return call


def new_member() -> dict:
    return {"role": Role.VIEWER, "user": UserFactory().username}


NEW_BYTES = os.urandom(300)


def own_session(world: World) -> UploadSession:
    """An upload session started by the caller (by someone else for anonymous), as if before any revocation."""
    owner = world.principal or UserFactory()
    session, _ = upload_services.upload_session_start(
        project=world.project, digest=sha256(NEW_BYTES), size=len(NEW_BYTES), created_by=owner
    )
    return session


def session_call(body: bytes | None = None, **call: Any) -> Callable[[World], Call]:
    def make(world: World) -> Call:
        return Call(kwargs={"pk": own_session(world).pk}, body=body, **call)

    return make


def lineage(node: str, obj: Callable[[World], Any]) -> Callable[[World], Call]:
    def call(world: World) -> Call:
        pk = obj(world).pk
        return Call(kwargs={"node_type": node, "node_id": pk}, names=pk)

    return call


def blob_call(world: World, body: bytes | None = None) -> Call:
    digest = sha256(body) if body else world.blob.prefixed_digest
    return Call(kwargs={"slug": world.project.slug, "digest": digest}, body=body, names=world.project.slug)


def audit_entry_call(world: World) -> Call:
    """An entry about the world's artifact version (a download), as its seq."""
    entry = audit_record("blob.downloaded", obj=world.artifact_version)
    return Call(kwargs={"seq": entry.seq}, names=entry.seq)


def with_signed_head(world: World) -> Call:
    tree_head_sign()
    return Call()


# A public address as a literal: registering it needs no DNS, and nothing is sent to it (the test never commits).
WEBHOOK_URL = "https://93.184.215.14/hooks"


def webhook_endpoint(world: World) -> WebhookEndpoint:
    return WebhookEndpointFactory(project=world.project, url=WEBHOOK_URL)


def webhook_delivery(world: World) -> WebhookDelivery:
    """A pending delivery of a test event to an endpoint of the world's project."""
    return webhook_endpoint_test(endpoint=webhook_endpoint(world), sent_by=None)


# The registry. Every model below has the world's artifact version as its version 1, so an artifact's grantees see
# the model, its version and its requests through their grant, as they would in use.


def someone_else() -> AbstractBaseUser:
    """A superuser who is not the caller: requests, decides and sets policies where a case needs it done."""
    return UserFactory(is_superuser=True)


def registered_model(world: World) -> RegisteredModel:
    model = RegisteredModelFactory(project=world.project, created_by=someone_else())
    ModelVersionFactory(registered_model=model, artifact_version=world.artifact_version, created_by=someone_else())
    return model


def unversioned_model(world: World) -> RegisteredModel:
    """A model of the project none of whose versions is the world's artifact's: project business alone."""
    return RegisteredModelFactory(project=world.project, created_by=someone_else())


def model_version(world: World) -> ModelVersion:
    return registered_model(world).versions.get()


def aliased_model(world: World) -> RegisteredModel:
    model = registered_model(world)
    model_alias_set(registered_model=model, name="champion", model_version=model.versions.get(), set_by=someone_else())
    return model


def promotion_request(world: World) -> PromotionRequest:
    """An open request to put version 1 into production, by a contributor to the project who is not the caller."""
    return PromotionRequestFactory(model_version=model_version(world))


def promoted(version: ModelVersion) -> None:
    """Into production, through a request and the two approvals the default policy asks."""
    request = PromotionRequestFactory(model_version=version, requested_by=someone_else())
    for _ in range(2):
        promotion_approve(request=request, reviewer=someone_else())


def ready_request(world: World) -> PromotionRequest:
    """A request whose one approval became enough when the policy changed after it: applying it moves the version."""
    blob_verify(blob=world.artifact_version.blob)
    request = promotion_request(world)
    promotion_approve(request=request, reviewer=someone_else())
    promotion_policy_set(project=world.project, stage="production", approvals_required=1, changed_by=someone_else())
    return request


def rolled_out_model(world: World) -> RegisteredModel:
    """Version 1 (the world's artifact version) served in production, then version 2 replaced it: a rollback
    restores version 1."""
    model = registered_model(world)
    blob_verify(blob=world.artifact_version.blob)
    second = ArtifactVersionFactory(artifact=world.artifact, run=world.run)
    blob_verify(blob=second.blob)
    for version in (model.versions.get(number=1), ModelVersionFactory(registered_model=model, artifact_version=second)):
        promoted(version)
    return model


def saved_policy(world: World) -> PromotionPolicy:
    return promotion_policy_set(
        project=world.project, stage="staging", approvals_required=2, changed_by=someone_else()
    )[0]


def saved_retention_policy(world: World) -> RetentionPolicy:
    rules = [{"name": "cold", "action": "archive", "older_than_days": 30}]
    return retention_policy_set(project=world.project, rules=rules, changed_by=someone_else())[0]


def with_saved_retention_policy(world: World) -> Call:
    saved_retention_policy(world)
    return Call()


def legal_hold(world: World) -> LegalHold:
    placer = grant(Role.AUDITOR, on=world.project).user
    return legal_hold_place(project=world.project, artifact=world.artifact, reason="Case 7.", placed_by=placer)


def with_legal_hold(world: World) -> Call:
    legal_hold(world)
    return Call()


def retention_plan(world: World) -> RetentionPlan:
    """A plan of the world's project under a rule archiving old checkpoints (it selects nothing: an empty plan)."""
    saved_retention_policy(world)
    return retention_plan_create(project=world.project, created_by=someone_else())


def with_retention_plan(world: World) -> Call:
    retention_plan(world)
    return Call()


def with_open_request(world: World) -> Call:
    """A request the caller may decide (as a reviewer), for awaiting-me to list."""
    promotion_request(world)
    return Call()


def with_saved_policy(world: World) -> Call:
    saved_policy(world)
    return Call()


def alias_call(world: World) -> Call:
    pk = aliased_model(world).pk
    return Call(kwargs={"pk": pk, "alias": "champion"}, names=pk)


def first_model_version(world: World) -> Call:
    """The world's artifact version, to register as the first version of a model nobody registered a version in."""
    pk = unversioned_model(world).pk
    if pk == world.artifact_version.pk:
        # The Hidden check swaps every value equal to the hidden id: it must name the model alone.
        pk = unversioned_model(world).pk
    return Call(body={"model": pk, "artifact_version": world.artifact_version.pk}, names=pk)


def reference(ref: Callable[[World], str]) -> Callable[[World], Call]:
    """A reference to resolve in the world's project."""

    def call(world: World) -> Call:
        return Call(query={"project": world.project.slug, "ref": ref(world)}, names=world.project.slug)

    return call


def promotion_to_staging(world: World) -> Call:
    pk = model_version(world).pk
    return Call(
        body={"model_version": pk, "target_stage": "staging", "justification": "Ready for shadow traffic."}, names=pk
    )


def next_model_version(world: World) -> Call:
    """A new version of the world's artifact, to register as version 2 of a model whose version 1 the caller sees."""
    model = registered_model(world)
    version = ArtifactVersionFactory(artifact=world.artifact, run=world.run)
    return Call(body={"model": model.pk, "artifact_version": version.pk}, names=model.pk)


# The supply chain: scans, signatures and attestations of the world's artifact version, and the project's trusted keys.


def scanned_version(world: World) -> ArtifactVersion:
    """The world's artifact version, its bytes verified and scanned, as they are on arrival."""
    blob = blob_verify(blob=world.artifact_version.blob)
    assert blob_scan(blob=blob) is not None
    return world.artifact_version


def attested_version(world: World) -> ArtifactVersion:
    """The world's artifact version, its run finished: its provenance can be signed."""
    run_update(run=world.run, status=Run.Status.COMPLETED, ended_at=timezone.now())
    return world.artifact_version


def new_public_key() -> str:
    with tempfile.TemporaryDirectory() as folder:
        return ec_key(Path(folder)).public_pem


def trusted_key(world: World) -> TrustedSigningKey:
    return TrustedSigningKeyFactory(project=world.project, pem=new_public_key(), added_by=someone_else())


def signature_bundle(world: World) -> dict:
    """A real model-signing bundle over the world's artifact version's bytes, by a key its project trusts."""
    with tempfile.TemporaryDirectory() as folder:
        key = ec_key(Path(folder))
        TrustedSigningKeyFactory(project=world.project, pem=key.public_pem, added_by=someone_else())
        model_path = Path(folder) / "model.bin"
        with iter_blob(world.artifact_version.blob.storage_key) as chunks:
            model_path.write_bytes(b"".join(chunks))
        return sign_with_key(model_path, key)


def signed_version(world: World) -> ArtifactVersion:
    """The world's artifact version with one signature attached, by someone else."""
    VersionSignatureFactory(artifact_version=world.artifact_version, bundle=signature_bundle(world))
    return world.artifact_version


def signature_upload_call(world: World) -> Call:
    pk = world.artifact_version.pk
    return Call(kwargs={"pk": pk}, body={"bundle": signature_bundle(world)}, names=pk)


def trusted_key_add_call(world: World) -> Call:
    return project_call(world, {"name": "release-ci", "method": SigningMethod.KEY, "pem": new_public_key()})


def trusted_key_revoke_call(world: World) -> Call:
    key = trusted_key(world)
    return Call(kwargs={"slug": world.project.slug, "pk": key.pk}, names=world.project.slug)


def with_trusted_key(world: World) -> Call:
    trusted_key(world)
    return project_call(world)


EVERYONE = answers(200, anonymous=200)
LIST = answers(200)
# Inside the project, outside any one artifact: datasets, their versions, runs.
PROJECT_RECORD = answers(200, no_role=NOT_FOUND, **each(ARTIFACT_ONLY, NOT_FOUND))
PROJECT_RECORD_CHANGE = answers(200, no_role=NOT_FOUND, **each(ARTIFACT_ONLY, NOT_FOUND), **each(READ_ONLY, 403))
# A create naming the project by slug: artifact-only grantees see the project, so they are refused, not misled.
PUBLISH_TO_PROJECT = answers(201, no_role=NO_SUCH_REFERENCE, **each(READ_ONLY + ARTIFACT_ONLY, 403))
ARTIFACT_RECORD = answers(200, no_role=NOT_FOUND)
MANAGE_PROJECT = answers(403, no_role=NOT_FOUND, maintainer=200, superuser=200)
SERVICE_ACCOUNT_TOKEN = answers(NOT_FOUND, maintainer=200, superuser=200)
MANAGE_ARTIFACT = answers(403, no_role=NOT_FOUND, maintainer=200, artifact_maintainer=200, superuser=200)
# A session is its starter's; contributing to the project is checked at every request.
OWN_UPLOAD = answers(403, contributor=200, maintainer=200, superuser=200, **each(ARTIFACT_ONLY, 200))
# The audit log: entries for the auditors of their project (or artifact); the whole log for the global permission.
AUDIT_ENTRY = answers(NOT_FOUND, auditor=200, superuser=200)
# Webhooks: the project's maintainers manage them and its auditors read them; nobody else sees they exist, not even
# an artifact's maintainer (an endpoint's URL and its receivers' answers concern the whole project).
WEBHOOK_READ = answers(NOT_FOUND, maintainer=200, auditor=200, superuser=200)
WEBHOOK_MANAGE = answers(NOT_FOUND, maintainer=200, auditor=403, superuser=200)
# Legal holds: the project's auditors and maintainers place, release and see them; nobody else learns they exist.
LEGAL_HOLD = answers(NOT_FOUND, maintainer=200, auditor=200, superuser=200)
# The registry: a model is project business (describing it, its aliases, its policies), seen also by whoever sees one
# of its versions; versions and requests are seen as their artifact is. Deciding is the reviewers' (never the
# requester's), withdrawing the requester's or a project maintainer's.
MODEL_CHANGE = answers(200, no_role=NOT_FOUND, **each(READ_ONLY + ARTIFACT_ONLY, 403))
DECIDE = answers(403, no_role=NOT_FOUND, reviewer=200, superuser=200)
# Signed provenance (an attestation, an ML-BOM) names the version's run and inputs, the same bytes for every reader:
# withheld (403, saying so) from whoever sees the version but not those, as an artifact's grantees do not.
PROVENANCE = answers(200, no_role=NOT_FOUND, **each(ARTIFACT_ONLY, 403))


def with_status(statuses: dict[str, int], old: int, new: int) -> dict[str, int]:
    return {name: new if status == old else status for name, status in statuses.items()}


def service_account_token(world: World) -> Call:
    """A token of a service account owned by the project: its maintainers (and superusers) manage it; to anyone
    else it does not exist."""
    account = UserFactory()
    service_account_create(user=account, project=world.project)
    token, _ = api_token_issue(user=account, name="pipeline", lifetime=timedelta(days=1), scope=Scope.WRITE)
    return Call(kwargs={"pk": token.pk}, names=token.pk)


def with_service_account_token(world: World) -> Call:
    service_account_token(world)
    return Call()


def service_account(world: World) -> Call:
    account = service_account_create(user=UserFactory(), project=world.project)
    return Call(kwargs={"pk": account.pk}, names=account.pk)


def with_service_account(world: World) -> Call:
    service_account(world)
    return Call()


def service_account_open(world: World) -> Call:
    return Call(
        body={"username": f"pipeline-{uuid.uuid4().hex[:8]}", "project": world.project.slug, "role": "viewer"},
        names=world.project.slug,
    )


def own_token_issue(world: World) -> Call:
    return Call(body={"name": "ci", "scope": "read", "expires_at": (timezone.now() + timedelta(days=1)).isoformat()})


ENDPOINTS = [
    Endpoint("api", "api-root", "GET", LIST),
    Endpoint("schema", "schema", "GET", EVERYONE),
    Endpoint("docs", "docs", "GET", EVERYONE),
    # Projects
    Endpoint("projects", "project-list", "GET", LIST),
    Endpoint(
        "projects",
        "project-list",
        "POST",
        answers(403, superuser=201),
        lambda world: Call(body={"slug": "a-new-project", "name": "A new project"}),
    ),
    Endpoint("projects/{slug}", "project-detail", "GET", answers(200, no_role=NOT_FOUND), project_call),
    Endpoint(
        "projects/{slug}",
        "project-detail",
        "PATCH",
        MANAGE_PROJECT,
        lambda world: project_call(world, {"description": "Changed."}),
    ),
    Endpoint(
        "projects/{slug}/members",
        "project-members",
        "GET",
        answers(403, no_role=NOT_FOUND, maintainer=200, auditor=200, superuser=200),
        project_call,
    ),
    Endpoint(
        "projects/{slug}/members",
        "project-members",
        "POST",
        with_status(MANAGE_PROJECT, 200, 201),
        lambda world: project_call(world, new_member()),
    ),
    Endpoint(
        "projects/{slug}/members/{grant}",
        "project-member",
        "DELETE",
        with_status(MANAGE_PROJECT, 200, 204),
        bystander_grant(lambda world: world.project),
    ),
    # Datasets
    Endpoint("datasets", "dataset-list", "GET", LIST),
    Endpoint("datasets", "dataset-list", "POST", PUBLISH_TO_PROJECT, in_project({"name": "a-new-dataset"})),
    Endpoint("datasets/{id}", "dataset-detail", "GET", PROJECT_RECORD, by_pk(lambda world: world.dataset)),
    Endpoint(
        "datasets/{id}",
        "dataset-detail",
        "PATCH",
        PROJECT_RECORD_CHANGE,
        by_pk(lambda world: world.dataset, {"description": "Changed."}),
    ),
    Endpoint("dataset-versions", "datasetversion-list", "GET", LIST),
    Endpoint(
        "dataset-versions",
        "datasetversion-list",
        "POST",
        answers(201, no_role=NO_SUCH_REFERENCE, **each(ARTIFACT_ONLY, NO_SUCH_REFERENCE), **each(READ_ONLY, 403)),
        lambda world: Call(
            body={"dataset": world.dataset.pk, "digest": world.blob.prefixed_digest}, names=world.dataset.pk
        ),
    ),
    Endpoint(
        "dataset-versions/{id}",
        "datasetversion-detail",
        "GET",
        PROJECT_RECORD,
        by_pk(lambda world: world.dataset_version),
    ),
    # Runs
    Endpoint("runs", "run-list", "GET", LIST),
    Endpoint("runs", "run-list", "POST", PUBLISH_TO_PROJECT, in_project({"external_id": "a-new-run"})),
    Endpoint("runs/{id}", "run-detail", "GET", PROJECT_RECORD, by_pk(lambda world: world.run)),
    Endpoint(
        "runs/{id}",
        "run-detail",
        "PATCH",
        PROJECT_RECORD_CHANGE,
        by_pk(lambda world: world.run, {"metrics": {"loss": 0.25}}),
    ),
    # Artifacts
    Endpoint("artifacts", "artifact-list", "GET", LIST),
    Endpoint(
        "artifacts",
        "artifact-list",
        "POST",
        PUBLISH_TO_PROJECT,
        in_project({"name": "a-new-artifact", "kind": Artifact.Kind.MODEL}),
    ),
    Endpoint(
        "artifacts",
        "artifact-list",
        "POST",
        answers(403, no_role=NO_SUCH_REFERENCE, maintainer=201, superuser=201),
        in_project({"name": "a-new-artifact", "kind": Artifact.Kind.MODEL, "restricted": True}),
        variant="restricted",
    ),
    Endpoint("artifacts/{id}", "artifact-detail", "GET", ARTIFACT_RECORD, by_pk(lambda world: world.artifact)),
    Endpoint(
        "artifacts/{id}",
        "artifact-detail",
        "PATCH",
        answers(200, no_role=NOT_FOUND, **each(READ_ONLY, 403)),
        by_pk(lambda world: world.artifact, {"description": "Changed."}),
    ),
    Endpoint(
        "artifacts/{id}",
        "artifact-detail",
        "PATCH",
        MANAGE_ARTIFACT,
        by_pk(lambda world: world.artifact, {"restricted": True}),
        variant="restricted",
    ),
    Endpoint(
        "artifacts/{id}/members",
        "artifact-members",
        "GET",
        MANAGE_ARTIFACT | {"auditor": 200},
        by_pk(lambda world: world.artifact),
    ),
    Endpoint(
        "artifacts/{id}/members",
        "artifact-members",
        "POST",
        with_status(MANAGE_ARTIFACT, 200, 201),
        lambda world: Call(kwargs={"pk": world.artifact.pk}, body=new_member(), names=world.artifact.pk),
    ),
    Endpoint(
        "artifacts/{id}/members/{grant}",
        "artifact-member",
        "DELETE",
        with_status(MANAGE_ARTIFACT, 200, 204),
        bystander_grant(lambda world: world.artifact),
    ),
    Endpoint("artifact-versions", "artifactversion-list", "GET", LIST),
    Endpoint(
        "artifact-versions",
        "artifactversion-list",
        "POST",
        # Artifact-only grantees may publish, but only bytes they may read, and the project's other bytes are
        # not theirs to read (nor to upload: uploads are project work).
        answers(201, no_role=NO_SUCH_REFERENCE, **each(READ_ONLY, 403), **each(ARTIFACT_ONLY, 400)),
        lambda world: Call(
            body={"artifact": world.artifact.pk, "digest": world.blob.prefixed_digest}, names=world.artifact.pk
        ),
    ),
    Endpoint(
        "artifact-versions/{id}",
        "artifactversion-detail",
        "GET",
        ARTIFACT_RECORD,
        by_pk(lambda world: world.artifact_version),
    ),
    Endpoint(
        "artifact-versions/{id}/download",
        "artifactversion-download",
        "GET",
        ARTIFACT_RECORD,
        by_pk(lambda world: world.artifact_version),
    ),
    # A restore of archived bytes is billed: contributors' work, on the artifact or its project. The world's bytes
    # are in a local folder, so there is nothing to restore and the answer is 200 (202 while S3 restores them).
    Endpoint(
        "artifact-versions/{id}/restore",
        "artifactversion-restore",
        "POST",
        answers(200, no_role=NOT_FOUND, **each(READ_ONLY, 403)),
        by_pk(lambda world: world.artifact_version),
    ),
    # Lineage
    *(
        Endpoint(f"lineage/{node}/{{id}}", "lineage", "GET", expected, lineage(node, obj))
        for node, obj, expected in [
            ("dataset-version", lambda world: world.dataset_version, PROJECT_RECORD),
            ("run", lambda world: world.run, PROJECT_RECORD),
            ("artifact-version", lambda world: world.artifact_version, ARTIFACT_RECORD),
        ]
    ),
    # Blobs and uploads: project work. Artifact-only grantees see the project, so they are refused.
    *(
        Endpoint(
            "projects/{slug}/blobs/{digest}",
            "project-blob",
            method,
            # An artifact's grantees read the bytes of its versions, not the rest of the project's: for them this
            # digest is one the project does not hold (test_access_scenarios compares the two answers).
            answers(200, no_role=NOT_FOUND, **each(ARTIFACT_ONLY, 404)),
            blob_call,
        )
        for method in ("HEAD", "GET")
    ),
    # Restoring a project's archived blob is project work for contributors (billed by S3), refused to readers.
    Endpoint(
        "projects/{slug}/blobs/{digest}/restore",
        "project-blob-restore",
        "POST",
        answers(200, no_role=NOT_FOUND, **each(ARTIFACT_ONLY, 404), **each(READ_ONLY, 403)),
        blob_call,
    ),
    # A blob's state is read as its bytes are.
    Endpoint(
        "projects/{slug}/blobs/{digest}/state",
        "project-blob-state",
        "GET",
        answers(200, no_role=NOT_FOUND, **each(ARTIFACT_ONLY, 404)),
        blob_call,
    ),
    Endpoint(
        "projects/{slug}/blobs/{digest}",
        "project-blob",
        "PUT",
        # Contributing to one artifact includes uploading the bytes to publish to it.
        answers(201, no_role=NOT_FOUND, **each(READ_ONLY, 403)),
        lambda world: blob_call(world, NEW_BYTES),
    ),
    # A project's upload sessions are listed to those who may upload there (each sees only their own).
    Endpoint(
        "projects/{slug}/uploads",
        "project-uploads",
        "GET",
        answers(200, no_role=NOT_FOUND, **each(READ_ONLY, 403)),
        project_call,
    ),
    Endpoint(
        "projects/{slug}/uploads",
        "project-uploads",
        "POST",
        answers(201, no_role=NOT_FOUND, **each(READ_ONLY, 403)),
        lambda world: project_call(world, {"digest": sha256(NEW_BYTES), "size": len(NEW_BYTES)}),
    ),
    Endpoint("uploads/{id}", "upload-detail", "GET", OWN_UPLOAD, session_call()),
    Endpoint(
        "uploads/{id}",
        "upload-detail",
        "PATCH",
        with_status(OWN_UPLOAD, 200, 202),
        # The whole file: a shorter chunk before the announced size is refused (400) whoever sends it.
        session_call(NEW_BYTES, headers={"HTTP_UPLOAD_OFFSET": "0"}),
    ),
    Endpoint(
        "uploads/{id}",
        "upload-detail",
        "PUT",
        with_status(OWN_UPLOAD, 200, 201),
        session_call(NEW_BYTES, headers={"HTTP_UPLOAD_OFFSET": "0"}, query={"digest": sha256(NEW_BYTES)}),
    ),
    Endpoint("uploads/{id}", "upload-detail", "DELETE", with_status(OWN_UPLOAD, 200, 204), session_call()),
    # Audit log. Every caller with a token lists entries (an empty page without audit rights), reads tree heads,
    # proofs between sizes and the public key: a head reveals only a size and a root.
    Endpoint("audit/entries", "auditentry-list", "GET", LIST),
    Endpoint("audit/entries/{seq}", "auditentry-detail", "GET", AUDIT_ENTRY, audit_entry_call),
    Endpoint("audit/entries/{seq}/proof", "auditentry-proof", "GET", AUDIT_ENTRY, audit_entry_call),
    # The filtered export: for whoever audits something (their entries only), as signing a tree head is.
    Endpoint("audit/entries/export", "auditentry-export", "GET", answers(403, auditor=200, superuser=200)),
    Endpoint("audit/tree-heads", "treehead-list", "GET", LIST, with_signed_head),
    Endpoint("audit/tree-heads", "treehead-list", "POST", answers(403, auditor=201, superuser=201)),
    Endpoint("audit/tree-heads/latest", "treehead-latest", "GET", LIST, with_signed_head),
    Endpoint(
        "audit/tree-heads/consistency",
        "treehead-consistency",
        "GET",
        LIST,
        lambda world: Call(query={"first": "0", "second": "0"}),
    ),
    Endpoint("audit/export", "audit-export", "GET", answers(403, superuser=200)),
    Endpoint("audit/public-key", "audit-public-key", "GET", LIST),
    # Access: every caller may read who they are
    Endpoint("me", "me", "GET", LIST),
    # Tokens: everyone lists and issues their own; a service account's are its project's maintainers' to manage.
    Endpoint("tokens", "apitoken-list", "GET", LIST, with_service_account_token),
    Endpoint("tokens", "apitoken-list", "POST", answers(201), own_token_issue),
    Endpoint("tokens/{id}", "apitoken-detail", "GET", SERVICE_ACCOUNT_TOKEN, service_account_token),
    Endpoint("tokens/{id}/revoke", "apitoken-revoke", "POST", SERVICE_ACCOUNT_TOKEN, service_account_token),
    # Service accounts: their project's maintainers create, see and deactivate them; to anyone else they do not exist.
    Endpoint("service-accounts", "serviceaccount-list", "GET", LIST, with_service_account),
    Endpoint(
        "service-accounts",
        "serviceaccount-list",
        "POST",
        answers(403, no_role=NO_SUCH_REFERENCE, maintainer=201, superuser=201),
        service_account_open,
    ),
    Endpoint("service-accounts/{id}", "serviceaccount-detail", "GET", SERVICE_ACCOUNT_TOKEN, service_account),
    Endpoint(
        "service-accounts/{id}/deactivate", "serviceaccount-deactivate", "POST", SERVICE_ACCOUNT_TOKEN, service_account
    ),
    # Webhooks
    Endpoint("webhooks/event-types", "webhook-event-types", "GET", LIST),
    Endpoint("webhooks/endpoints", "webhookendpoint-list", "GET", LIST),
    Endpoint(
        "webhooks/endpoints",
        "webhookendpoint-list",
        "POST",
        # Whoever sees the project (an artifact's grantees too) is told which role it takes.
        answers(403, no_role=NO_SUCH_REFERENCE, maintainer=201, superuser=201),
        in_project({"url": WEBHOOK_URL, "event_types": ["artifact_version.published"]}),
    ),
    Endpoint("webhooks/endpoints/{id}", "webhookendpoint-detail", "GET", WEBHOOK_READ, by_pk(webhook_endpoint)),
    Endpoint(
        "webhooks/endpoints/{id}",
        "webhookendpoint-detail",
        "PATCH",
        WEBHOOK_MANAGE,
        by_pk(webhook_endpoint, {"description": "Changed."}),
    ),
    Endpoint(
        "webhooks/endpoints/{id}",
        "webhookendpoint-detail",
        "DELETE",
        with_status(WEBHOOK_MANAGE, 200, 204),
        by_pk(webhook_endpoint),
    ),
    Endpoint(
        "webhooks/endpoints/{id}/rotate-secret",
        "webhookendpoint-rotate-secret",
        "POST",
        WEBHOOK_MANAGE,
        by_pk(webhook_endpoint, {"overlap_hours": 1}),
    ),
    Endpoint(
        "webhooks/endpoints/{id}/test",
        "webhookendpoint-send-test",
        "POST",
        with_status(WEBHOOK_MANAGE, 200, 202),
        by_pk(webhook_endpoint),
    ),
    Endpoint("webhooks/deliveries", "webhookdelivery-list", "GET", LIST),
    Endpoint("webhooks/deliveries/{id}", "webhookdelivery-detail", "GET", WEBHOOK_READ, by_pk(webhook_delivery)),
    Endpoint(
        "webhooks/deliveries/{id}/resend",
        "webhookdelivery-resend",
        "POST",
        with_status(WEBHOOK_MANAGE, 200, 202),
        by_pk(webhook_delivery),
    ),
    # The model registry
    Endpoint("models", "registeredmodel-list", "GET", LIST),
    Endpoint("models", "registeredmodel-list", "POST", PUBLISH_TO_PROJECT, in_project({"name": "a-new-model"})),
    Endpoint("models/{id}", "registeredmodel-detail", "GET", ARTIFACT_RECORD, by_pk(registered_model)),
    Endpoint(
        "models/{id}",
        "registeredmodel-detail",
        "GET",
        PROJECT_RECORD,
        by_pk(unversioned_model),
        variant="no version of the artifact",
    ),
    Endpoint(
        "models/{id}",
        "registeredmodel-detail",
        "PATCH",
        MODEL_CHANGE,
        by_pk(registered_model, {"description": "Changed."}),
    ),
    Endpoint(
        "models/{id}/aliases",
        "registeredmodel-set-alias",
        "POST",
        MODEL_CHANGE,
        by_pk(registered_model, {"name": "champion", "version": 1}),
    ),
    Endpoint(
        "models/{id}/aliases/{alias}",
        "registeredmodel-delete-alias",
        "DELETE",
        with_status(MODEL_CHANGE, 200, 204),
        alias_call,
    ),
    Endpoint(
        "models/{id}/stage-history", "registeredmodel-stage-history", "GET", ARTIFACT_RECORD, by_pk(registered_model)
    ),
    Endpoint("models/{id}/stages", "registeredmodel-stages", "GET", ARTIFACT_RECORD, by_pk(registered_model)),
    Endpoint(
        "models/{id}/rollback",
        "registeredmodel-rollback",
        "POST",
        # Break glass is the project's maintainers' alone, an artifact's maintainers' not included.
        answers(403, no_role=NOT_FOUND, maintainer=201, superuser=201),
        by_pk(rolled_out_model, {"justification": "v2 mislabels every account opened this week."}),
    ),
    # A reference is resolved to what the caller sees: the artifact's grantees resolve its versions, by number or
    # through a model's alias.
    Endpoint(
        "resolve",
        "resolve",
        "GET",
        ARTIFACT_RECORD,
        reference(lambda world: f"{world.artifact.name}@{world.artifact_version.number}"),
    ),
    Endpoint(
        "resolve",
        "resolve",
        "GET",
        ARTIFACT_RECORD,
        reference(lambda world: f"{aliased_model(world).name}@champion"),
        variant="a model's alias",
    ),
    Endpoint("model-versions", "modelversion-list", "GET", LIST),
    Endpoint(
        "model-versions",
        "modelversion-list",
        "POST",
        # Registering is publishing: contributors to the artifact (or its project) may.
        answers(201, no_role=NO_SUCH_REFERENCE, **each(READ_ONLY, 403)),
        next_model_version,
    ),
    Endpoint(
        "model-versions",
        "modelversion-list",
        "POST",
        # A model none of whose versions an artifact's grantee sees is hidden from them like any project record.
        answers(201, no_role=NO_SUCH_REFERENCE, **each(READ_ONLY, 403), **each(ARTIFACT_ONLY, NO_SUCH_REFERENCE)),
        first_model_version,
        variant="first version",
    ),
    Endpoint("model-versions/{id}", "modelversion-detail", "GET", ARTIFACT_RECORD, by_pk(model_version)),
    Endpoint("model-versions/{id}/bom", "modelversion-bom", "GET", PROVENANCE, by_pk(model_version)),
    Endpoint(
        "model-versions/{id}/imported-stage",
        "modelversion-imported-stage",
        "POST",
        # Recording a stage copied from another registry moves what governance guards: the project's maintainers.
        answers(403, no_role=NOT_FOUND, maintainer=201, superuser=201),
        by_pk(model_version, {"stage": "staging", "imported_from": "mlflow http://mlflow:5000 churn version 1"}),
    ),
    # Promotions
    Endpoint("promotions", "promotionrequest-list", "GET", LIST),
    Endpoint(
        "promotions",
        "promotionrequest-list",
        "POST",
        answers(201, no_role=NO_SUCH_REFERENCE, **each(READ_ONLY, 403)),
        promotion_to_staging,
    ),
    Endpoint(
        "promotions/awaiting-me",
        "promotionrequest-awaiting-me",
        "GET",
        LIST,
        with_open_request,
    ),
    Endpoint("promotions/{id}", "promotionrequest-detail", "GET", ARTIFACT_RECORD, by_pk(promotion_request)),
    Endpoint("promotions/{id}/approve", "promotionrequest-approve", "POST", DECIDE, by_pk(promotion_request)),
    Endpoint(
        "promotions/{id}/reject",
        "promotionrequest-reject",
        "POST",
        DECIDE,
        by_pk(promotion_request, {"comment": "The holdout leaks into training."}),
    ),
    Endpoint(
        "promotions/{id}/withdraw",
        "promotionrequest-withdraw",
        "POST",
        answers(403, no_role=NOT_FOUND, maintainer=200, superuser=200),
        by_pk(promotion_request),
    ),
    Endpoint(
        "promotions/{id}/apply",
        "promotionrequest-apply",
        "POST",
        # Its reviewers and the project's maintainers may ask (the requester too, who is not the caller here).
        answers(403, no_role=NOT_FOUND, reviewer=200, maintainer=200, superuser=200),
        by_pk(ready_request),
    ),
    # The discussion: whoever sees the request reads it and may join it.
    Endpoint("promotions/{id}/comments", "promotionrequest-comments", "GET", ARTIFACT_RECORD, by_pk(promotion_request)),
    Endpoint(
        "promotions/{id}/comments",
        "promotionrequest-comments",
        "POST",
        answers(201, no_role=NOT_FOUND),
        by_pk(promotion_request, {"body": "Which holdout week?"}),
    ),
    Endpoint("promotion-policies", "promotionpolicy-list", "GET", LIST, with_saved_policy),
    Endpoint(
        "promotion-policies",
        "promotionpolicy-list",
        "POST",
        answers(403, no_role=NO_SUCH_REFERENCE, maintainer=201, superuser=201),
        in_project({"stage": "production", "approvals_required": 3}),
    ),
    Endpoint("promotion-policies/{id}", "promotionpolicy-detail", "GET", PROJECT_RECORD, by_pk(saved_policy)),
    Endpoint(
        "promotion-policies/current",
        "promotionpolicy-current",
        "GET",
        # Whoever sees the project is told which role it takes (refused, not misled), as everywhere else.
        answers(200, no_role=NO_SUCH_REFERENCE, **each(ARTIFACT_ONLY, 403)),
        lambda world: Call(query={"project": world.project.slug}, names=world.project.slug),
    ),
    # Lifecycle: retention rules are read like promotion policies and changed by maintainers.
    Endpoint("retention-policies", "retentionpolicy-list", "GET", LIST, with_saved_retention_policy),
    Endpoint(
        "retention-policies",
        "retentionpolicy-list",
        "POST",
        answers(403, no_role=NO_SUCH_REFERENCE, maintainer=201, superuser=201),
        in_project({"rules": [{"name": "drop-failed", "action": "delete", "run_statuses": ["failed"]}]}),
    ),
    Endpoint("retention-policies/{id}", "retentionpolicy-detail", "GET", PROJECT_RECORD, by_pk(saved_retention_policy)),
    Endpoint(
        "retention-policies/current",
        "retentionpolicy-current",
        "GET",
        answers(200, no_role=NO_SUCH_REFERENCE, **each(ARTIFACT_ONLY, 403)),
        lambda world: Call(query={"project": world.project.slug}, names=world.project.slug),
    ),
    Endpoint("legal-holds", "legalhold-list", "GET", LIST, with_legal_hold),
    Endpoint(
        "legal-holds",
        "legalhold-list",
        "POST",
        # Whoever sees the project (an artifact's grantees too) is told which roles it takes.
        answers(403, no_role=NO_SUCH_REFERENCE, maintainer=201, auditor=201, superuser=201),
        in_project({"reason": "Litigation hold, case 7."}),
    ),
    Endpoint("legal-holds/{id}", "legalhold-detail", "GET", LEGAL_HOLD, by_pk(legal_hold)),
    Endpoint(
        "legal-holds/{id}/release",
        "legalhold-release",
        "POST",
        LEGAL_HOLD,
        by_pk(legal_hold, {"reason": "Case closed."}),
    ),
    # Plans are project business, read by whoever reads the project and made and applied by its maintainers.
    Endpoint("retention-plans", "retentionplan-list", "GET", LIST, with_retention_plan),
    Endpoint(
        "retention-plans",
        "retentionplan-list",
        "POST",
        answers(403, no_role=NO_SUCH_REFERENCE, maintainer=201, superuser=201),
        in_project({}),
    ),
    Endpoint("retention-plans/{id}", "retentionplan-detail", "GET", PROJECT_RECORD, by_pk(retention_plan)),
    Endpoint("retention-plans/{id}/items", "retentionplan-items", "GET", PROJECT_RECORD, by_pk(retention_plan)),
    Endpoint(
        "retention-plans/{id}/apply",
        "retentionplan-apply",
        "POST",
        answers(403, no_role=NOT_FOUND, **each(ARTIFACT_ONLY, NOT_FOUND), maintainer=202, superuser=202),
        by_pk(retention_plan),
    ),
    # Storage accounting counts only what the caller may see, so whoever sees the project (an artifact's grantees
    # included: their artifact's bytes) is answered; the rest are told it does not exist.
    Endpoint("storage", "storage", "GET", LIST),
    Endpoint("projects/{slug}/storage", "project-storage", "GET", ARTIFACT_RECORD, project_call),
    # The supply chain. A version's scans, signatures and provenance are read as the version is; attaching a
    # signature is publishing work on its artifact. The keys a project trusts are managed by its maintainers.
    Endpoint("artifact-versions/{id}/scan", "artifactversion-scan", "GET", ARTIFACT_RECORD, by_pk(scanned_version)),
    Endpoint("artifact-versions/{id}/scans", "artifactversion-scans", "GET", ARTIFACT_RECORD, by_pk(scanned_version)),
    Endpoint(
        "artifact-versions/{id}/signatures",
        "artifactversion-signatures",
        "GET",
        ARTIFACT_RECORD,
        by_pk(signed_version),
    ),
    Endpoint(
        "artifact-versions/{id}/signatures",
        "artifactversion-signatures",
        "POST",
        answers(201, no_role=NOT_FOUND, **each(READ_ONLY, 403)),
        signature_upload_call,
    ),
    Endpoint(
        "artifact-versions/{id}/attestation",
        "artifactversion-attestation",
        "GET",
        PROVENANCE,
        by_pk(attested_version),
    ),
    Endpoint("attestations/keys", "attestation-keys", "GET", LIST),
    # The project's keys are its own records: an artifact's grantees see the project, and an empty list.
    Endpoint("projects/{slug}/trusted-keys", "trusted-key-list", "GET", ARTIFACT_RECORD, with_trusted_key),
    Endpoint(
        "projects/{slug}/trusted-keys",
        "trusted-key-list",
        "POST",
        with_status(MANAGE_PROJECT, 200, 201),
        trusted_key_add_call,
    ),
    Endpoint(
        "projects/{slug}/trusted-keys/{id}/revoke",
        "trusted-key-revoke",
        "POST",
        MANAGE_PROJECT,
        trusted_key_revoke_call,
    ),
]


def build_world(principal: str) -> World:
    project = ProjectFactory()
    # A maintainer besides the caller, so revoking one is never refused as the project's last.
    grant(Role.MAINTAINER, on=project)
    dataset_version = DatasetVersionFactory(dataset__project=project)
    run = RunFactory(project=project, input_dataset_versions=[dataset_version])
    world = World(
        project=project,
        dataset_version=dataset_version,
        run=run,
        artifact_version=ArtifactVersionFactory(artifact__project=project, run=run),
        blob=BlobFactory(project=project),
    )
    world.principal = PRINCIPALS[principal](world)
    return world


def client_for(user: AbstractBaseUser | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client


def send(client: APIClient, endpoint: Endpoint, call: Call):
    url = reverse(f"api:{endpoint.url_name}", kwargs=call.kwargs)
    if call.query:
        url = f"{url}?{urlencode(call.query)}"
    method = getattr(client, endpoint.method.lower())
    if isinstance(call.body, bytes):
        return method(url, call.body, content_type="application/octet-stream", **call.headers)
    if call.body is None:
        return method(url, **call.headers)
    return method(url, call.body, format="json", **call.headers)


def stored(world: World) -> dict:
    """What any write the matrix makes would change."""
    tables = (Project, Dataset, DatasetVersion, Run, Artifact, ArtifactVersion, Blob, ProjectBlob, UploadSession)
    webhooks = (WebhookEndpoint, WebhookSecret, WebhookDelivery)
    registry = (
        RegisteredModel,
        ModelVersion,
        ModelAlias,
        PromotionRequest,
        PromotionDecision,
        PromotionPolicy,
        StageTransition,
    )
    lifecycle = (RetentionPolicy, LegalHold)
    supplychain = (TrustedSigningKey, VersionSignature)
    counts = {
        model.__name__: model.objects.count()
        for model in (*tables, RoleGrant, *webhooks, *registry, *lifecycle, *supplychain)
    }
    return counts | {
        "project": Project.objects.values("name", "description").get(pk=world.project.pk),
        "dataset": Dataset.objects.values("description").get(pk=world.dataset.pk),
        "run": Run.objects.values("metrics", "status").get(pk=world.run.pk),
        "artifact": Artifact.objects.values("description", "restricted").get(pk=world.artifact.pk),
        "sessions": list(UploadSession.objects.values_list("offset", "state")),
        "webhook_endpoints": list(WebhookEndpoint.objects.values_list("description", "is_active")),
        "webhook_secrets": list(WebhookSecret.objects.values_list("expires_at", flat=True)),
        "webhook_deliveries": list(WebhookDelivery.objects.values_list("state", "resend_requested")),
        "models": list(RegisteredModel.objects.values_list("description", "model_card")),
        "model_stages": list(ModelVersion.objects.values_list("stage")),
        "aliases": list(ModelAlias.objects.values_list("name", "model_version")),
        "promotion_requests": list(PromotionRequest.objects.values_list("state", "gates_at_decision")),
        "legal_holds": list(LegalHold.objects.values_list("released_at", flat=True)),
        "trusted_keys": list(TrustedSigningKey.objects.values_list("revoked_at", flat=True)),
    }


def body_text(response) -> str:
    return b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()


CASES = [
    pytest.param(endpoint, principal, id=f"{endpoint.name}:{endpoint.method}:{principal}")
    for endpoint in ENDPOINTS
    for principal in PRINCIPALS
]


@pytest.mark.parametrize(("endpoint", "principal"), CASES)
def test_permission_matrix(endpoint: Endpoint, principal: str):
    world = build_world(principal)
    client = client_for(world.principal)
    call = endpoint.call(world)
    expected = endpoint.expected[principal]
    before = stored(world)

    response = send(client, endpoint, call)

    assert response.status_code == expected, body_text(response)
    if expected == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    if expected >= 400 and endpoint.method not in ("GET", "HEAD"):
        assert stored(world) == before, "a refused request changed something"
    if isinstance(expected, Hidden):
        # The same request about something that does not exist must get the very same answer.
        missing_call = call.naming_nothing()
        missing = send(client, endpoint, missing_call)
        assert missing.status_code == response.status_code
        unmasked = body_text(missing).replace(str(missing_call.names), str(call.names))
        assert unmasked == body_text(response)


# Coverage: every route and method of the API is in the table ------------------------------------------


def api_routes(patterns, prefix: str = "", namespace: str | None = None):
    """(url name, route, callback) for every pattern under the `api` namespace, through includes.

    DRF's format-suffix twins (`….json`, `\\.(?P<format>…)`) are skipped: they reach the same view with the
    same checks and only choose the renderer (test_format_suffixes_answer_as_the_plain_route holds that).
    """
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace
            scope = inner if namespace is None else f"{namespace}:{inner}" if inner else namespace
            yield from api_routes(pattern.url_patterns, prefix + str(pattern.pattern), scope)
        elif namespace == "api" and "format" not in pattern.pattern.regex.groupindex:
            yield pattern.name, prefix + str(pattern.pattern), pattern.callback


def offered_methods(callback) -> set[str]:
    """The methods a route answers with its own code: a viewset's action map (less the HEAD DRF derives from
    GET), or the handlers an APIView defines (Django derives HEAD at request time, so only an explicit one
    counts). OPTIONS is left out (see the module docstring)."""
    actions = getattr(callback, "actions", None)
    if actions is not None:
        return {
            method.upper()
            for method, action in actions.items()
            if not (method == "head" and action == actions.get("get"))
        }
    view = callback.view_class
    return {method.upper() for method in view.http_method_names if method != "options" and hasattr(view, method)}


def test_every_endpoint_and_method_is_declared():
    offered = {
        (name, method): route
        for name, route, callback in api_routes(get_resolver().url_patterns)
        for method in offered_methods(callback)
    }
    declared = {(endpoint.url_name, endpoint.method) for endpoint in ENDPOINTS}

    undeclared = sorted(
        f"{method} {route} (api:{name})" for (name, method), route in offered.items() if (name, method) not in declared
    )
    assert not undeclared, "Add these to ENDPOINTS in the permission matrix:\n" + "\n".join(undeclared)
    stale = sorted(f"{method} api:{name}" for name, method in declared - offered.keys())
    assert not stale, "ENDPOINTS declares what the API no longer offers:\n" + "\n".join(stale)


def test_every_declared_endpoint_answers_for_every_principal():
    for endpoint in ENDPOINTS:
        assert endpoint.expected.keys() == PRINCIPALS.keys(), endpoint.name
    names = [f"{endpoint.name}:{endpoint.method}" for endpoint in ENDPOINTS]
    assert len(names) == len(set(names)), "two declarations share a name: give one a variant"


@pytest.mark.parametrize("principal", ["no-role", "viewer"])
def test_format_suffixes_answer_as_the_plain_route(principal):
    world = build_world(principal)
    client = client_for(world.principal)
    for path in (
        f"/api/v1/datasets/{world.dataset.pk}",
        f"/api/v1/runs/{world.run.pk}",
        f"/api/v1/artifact-versions/{world.artifact_version.pk}",
        f"/api/v1/projects/{world.project.slug}/members",
    ):
        plain, suffixed = client.get(f"{path}/"), client.get(f"{path}.json")
        assert suffixed.status_code == plain.status_code, path


def test_options_reveals_nothing():
    world = build_world("no-role")
    client = client_for(world.principal)
    for seen, missing in (
        (f"/api/v1/datasets/{world.dataset.pk}/", "/api/v1/datasets/1000000000/"),
        (f"/api/v1/artifacts/{world.artifact.pk}/members/", "/api/v1/artifacts/1000000000/members/"),
        (f"/api/v1/projects/{world.project.slug}/blobs/x", "/api/v1/projects/no-such-project/blobs/x"),
    ):
        assert client.options(seen).content == client.options(missing).content
    assert client_for(None).options(f"/api/v1/datasets/{world.dataset.pk}/").status_code == 401


def test_the_api_description_is_public_and_holds_no_data():
    """Anonymous callers get the OpenAPI schema and the docs page that renders it: they describe endpoints, and
    are generated from code alone, never from what is stored."""
    project = ProjectFactory(slug="acquisition-target")
    grant(Role.MAINTAINER, on=project, user=UserFactory(username="ceo-of-target"))
    anonymous = APIClient()

    schema = anonymous.get(reverse("api:schema"))
    docs = anonymous.get(reverse("api:docs"))

    assert schema.status_code == docs.status_code == 200
    for text in (schema.content, docs.content):
        assert b"acquisition-target" not in text
        assert b"ceo-of-target" not in text
