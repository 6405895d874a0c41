"""The API describes itself, and its docs work offline.

(Just over 600 lines: the two halves of one contract, what the schema promises and whether the demo's real answers
keep it, read side by side against the same document, tests/schema_contract.py's.)"""

import io
import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from artifacts.demo import ADMIN_USERNAME, PROJECT_SLUG, VIEWER_GROUP
from artifacts.models import (
    Artifact,
    ArtifactVersion,
    Dataset,
    DatasetVersion,
    Project,
    ProjectBlob,
    Run,
    UploadSession,
)
from core.api.fields import DIGEST_PATTERN
from core.models import AuditEntry
from core.validators import (
    MAX_ID,
    commit_validator,
    external_run_id_validator,
    name_validator,
    parse_digest,
    slug_validator,
)
from governance.access.models import ApiToken, ServiceAccount
from governance.lifecycle.models import LegalHold, RetentionPlan, RetentionPolicy
from governance.portal.demo import MODEL_NAME, SECOND_REVIEWER
from governance.registry.models import ModelVersion, PromotionPolicy, PromotionRequest, RegisteredModel
from governance.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.artifacts.factories import sha256
from tests.governance.factories import token_for
from tests.schema_contract import assert_conforms, openapi_document

pytestmark = pytest.mark.django_db


def test_schema_lists_every_resource(api):
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/v1/projects/",
        "/api/v1/datasets/",
        "/api/v1/dataset-versions/",
        "/api/v1/runs/",
        "/api/v1/artifacts/",
        "/api/v1/artifact-versions/",
        "/api/v1/artifact-versions/{id}/download/",
        "/api/v1/lineage/{node_type}/{node_id}/",
        "/api/v1/projects/{slug}/blobs/{digest}",
        "/api/v1/projects/{slug}/blobs/{digest}/state/",
        "/api/v1/audit/entries/",
        "/api/v1/audit/entries/{seq}/proof/",
        "/api/v1/audit/entries/export/",
        "/api/v1/audit/tree-heads/",
        "/api/v1/audit/tree-heads/consistency/",
        "/api/v1/audit/export/",
        "/api/v1/audit/public-key/",
        "/api/v1/webhooks/endpoints/",
        "/api/v1/webhooks/endpoints/{id}/",
        "/api/v1/webhooks/endpoints/{id}/rotate-secret/",
        "/api/v1/webhooks/endpoints/{id}/test/",
        "/api/v1/webhooks/deliveries/",
        "/api/v1/webhooks/deliveries/{id}/",
        "/api/v1/webhooks/deliveries/{id}/resend/",
        "/api/v1/webhooks/event-types/",
        "/api/v1/models/",
        "/api/v1/models/{id}/",
        "/api/v1/models/{id}/aliases/",
        "/api/v1/models/{id}/aliases/{alias}/",
        "/api/v1/models/{id}/stage-history/",
        "/api/v1/models/{id}/stages/",
        "/api/v1/models/{id}/rollback/",
        "/api/v1/model-versions/",
        "/api/v1/model-versions/{id}/",
        "/api/v1/promotions/",
        "/api/v1/promotions/awaiting-me/",
        "/api/v1/promotions/{id}/",
        "/api/v1/promotions/{id}/approve/",
        "/api/v1/promotions/{id}/reject/",
        "/api/v1/promotions/{id}/withdraw/",
        "/api/v1/promotions/{id}/apply/",
        "/api/v1/promotions/{id}/comments/",
        "/api/v1/promotion-policies/",
        "/api/v1/promotion-policies/{id}/",
        "/api/v1/promotion-policies/current/",
        "/api/v1/resolve/",
    ]:
        assert path in paths, path


def test_interactive_docs_load_every_asset_from_this_server(client, user):
    client.force_login(user)
    html = client.get("/api/v1/docs/").content.decode()
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert sources
    assert all(not s.startswith(("http://", "https://", "//")) for s in sources), sources


def test_schema_is_valid_without_warnings(tmp_path):
    """What `spectacular --validate --fail-on-warn` checks: a warning means a client generator guesses. The file it
    validated and wrote is the schema the contract tests below read."""
    written = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(written))

    assert yaml.safe_load(written.read_text()) == openapi_document()


# The schema as a contract ---------------------------------------------------------------------------------------

OPERATIONS = [
    (path, method.upper(), operation)
    for path, item in openapi_document()["paths"].items()
    for method, operation in item.items()
    if method in {"get", "head", "post", "put", "patch", "delete"}
]
PUBLIC_PATHS = {"/api/v1/schema/", "/api/v1/docs/"}


def schema_of(reference: dict) -> dict:
    """A component, when `reference` is a `$ref` to one."""
    if "$ref" not in reference:
        return reference
    return openapi_document()["components"]["schemas"][reference["$ref"].rsplit("/", 1)[1]]


def test_the_schema_and_docs_are_the_only_public_operations_and_no_other_is_listed_in_the_schema():
    assert not PUBLIC_PATHS & set(openapi_document()["paths"])
    assert all(operation.get("security") and {} not in operation["security"] for *_, operation in OPERATIONS)


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS])
def test_every_operation_documents_the_errors_it_can_answer_with_their_json_body(path, method, operation):
    responses = operation["responses"]
    parameters = operation.get("parameters", [])
    expected = {"401"}
    if method in {"POST", "PUT", "PATCH", "DELETE"}:
        expected |= {"400", "403", "409"}
    if "requestBody" in operation or any(p["in"] == "query" for p in parameters):
        expected.add("400")
    if any(p["in"] == "path" for p in parameters) or any(p["name"] == "cursor" for p in parameters):
        expected.add("404")
    assert expected <= set(responses), f"missing {sorted(expected - set(responses))}"
    for status, response in responses.items():
        if not status.startswith(("4", "5")):
            continue
        if method == "HEAD":
            assert "content" not in response, "an answer to HEAD has no body"
            continue
        schema = response["content"]["application/json"]["schema"]
        if status == "400":
            assert schema == {
                "anyOf": [{"$ref": "#/components/schemas/ValidationError"}, {"$ref": "#/components/schemas/Error"}]
            }
        else:
            assert schema == {"$ref": "#/components/schemas/Error"}


def test_the_error_bodies_are_described_as_the_server_sends_them():
    schemas = openapi_document()["components"]["schemas"]
    assert schemas["Error"]["required"] == ["detail", "code"]
    assert set(schemas["Error"]["properties"]) == {"detail", "code", "field"}
    field_errors = schemas["ValidationError"]["additionalProperties"]["anyOf"]
    assert {"$ref": "#/components/schemas/ValidationError"} in field_errors


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/api/v1/projects/{slug}/blobs/{digest}", "PUT", {"411"}),
        ("/api/v1/uploads/{id}/", "PATCH", {"411", "416"}),
        ("/api/v1/uploads/{id}/", "PUT", {"411", "416"}),
        ("/api/v1/projects/{slug}/blobs/{digest}", "GET", {"409", "416"}),
        ("/api/v1/artifact-versions/{id}/download/", "GET", {"409", "416"}),
        ("/api/v1/artifact-versions/", "POST", {"409", "413", "415"}),
        ("/api/v1/projects/{slug}/members/", "GET", {"403"}),
        ("/api/v1/promotions/{id}/approve/", "POST", {"403", "409"}),
    ],
)
def test_byte_endpoints_and_guarded_operations_document_their_particular_errors(path, method, statuses):
    assert statuses <= set(openapi_document()["paths"][path][method.lower()]["responses"])


def test_every_request_body_refuses_unknown_fields_in_the_schema_too():
    bodies = [
        schema_of(media["schema"])
        for *_, operation in OPERATIONS
        for media in operation.get("requestBody", {}).get("content", {}).values()
        if media.get("schema", {}).get("type") != "string"
    ]
    assert bodies
    for body in bodies:
        assert body["additionalProperties"] is False, body


ID_NAMES = {"id", "node_id", "grant_id", "run", "artifact", "dataset", "dataset_version", "artifact_version", "model"}


def test_id_parameters_are_positive_64_bit_integers():
    ids = [
        (path, parameter)
        for path, _, operation in OPERATIONS
        for parameter in operation.get("parameters", [])
        if parameter["name"] in ID_NAMES and parameter["schema"].get("format") != "uuid"
    ]
    assert len(ids) > 40
    for path, parameter in ids:
        schema = parameter["schema"]
        assert schema["type"] == "integer", (path, parameter)
        assert schema["minimum"] == 1, (path, parameter)
        assert schema["maximum"] <= MAX_ID, (path, parameter)


def test_upload_sessions_are_named_by_uuid():
    get = openapi_document()["paths"]["/api/v1/uploads/{id}/"]["get"]
    (parameter,) = [p for p in get["parameters"] if p["name"] == "id"]
    assert parameter["schema"] == {"type": "string", "format": "uuid"}


def test_page_size_and_cursor_are_described_as_the_paginator_reads_them():
    lists = [operation for path, method, operation in OPERATIONS if path.endswith("/") and method == "GET"]
    sizes = [p for operation in lists for p in operation.get("parameters", []) if p["name"] == "page_size"]
    cursors = [p for operation in lists for p in operation.get("parameters", []) if p["name"] == "cursor"]
    assert len(sizes) == len(cursors) > 15
    assert all(p["schema"] == {"type": "integer", "minimum": 1, "maximum": 500} for p in sizes)
    assert all(p["schema"] == {"type": "string"} for p in cursors)


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "ab" * 32,
        "SHA256:" + "AB" * 32,
        "ab" * 32,
        " sha256:" + "0" * 64 + "\n",
    ],
)
def test_the_digest_pattern_accepts_what_parse_digest_accepts(digest):
    parse_digest(digest)
    assert re.search(DIGEST_PATTERN, digest)


@pytest.mark.parametrize(
    "digest", ["", "sha256:", "sha256:" + "a" * 63, "md5:" + "a" * 64, "sha256:" + "g" * 64, "sha256 :" + "a" * 64]
)
def test_the_digest_pattern_refuses_what_parse_digest_refuses(digest):
    with pytest.raises(DjangoValidationError):
        parse_digest(digest)
    assert not re.search(DIGEST_PATTERN, digest)


def test_every_digest_in_a_path_or_a_body_carries_the_digest_pattern():
    paths = openapi_document()["paths"]
    blob = [p for p in paths["/api/v1/projects/{slug}/blobs/{digest}"]["get"]["parameters"] if p["name"] == "digest"]
    assert blob[0]["schema"]["pattern"] == DIGEST_PATTERN
    schemas = openapi_document()["components"]["schemas"]
    for component in ["ArtifactVersionCreateRequest", "DatasetVersionCreateRequest", "UploadSessionStartRequest"]:
        assert schemas[component]["properties"]["digest"]["pattern"] == DIGEST_PATTERN, component


def test_the_commit_pattern_is_the_run_models_commit_validator():
    commit = openapi_document()["components"]["schemas"]["RunCreateRequest"]["properties"]["code_commit"]
    for value in ["3f2a9c1", "A" * 40, "b" * 64]:
        assert re.search(commit["pattern"], value)
        commit_validator(value.lower())
    assert re.search(commit["pattern"], ""), "a run without a commit is a run too"
    for value in ["3f2a9c", "z" * 40, "a" * 65]:
        assert not re.search(commit["pattern"], value)
        with pytest.raises(DjangoValidationError):
            commit_validator(value.lower())


@pytest.mark.parametrize("path", ["/api/v1/projects/{slug}/blobs/{digest}", "/api/v1/artifact-versions/{id}/download/"])
def test_head_is_documented_for_the_byte_endpoints_with_headers_and_no_body(path):
    item = openapi_document()["paths"][path]
    head = item["head"]
    assert head["operationId"] != item["get"]["operationId"]
    assert head["parameters"] == item["get"]["parameters"]
    assert set(head["responses"]) == set(item["get"]["responses"])
    assert all("content" not in response for response in head["responses"].values())
    assert {"ETag", "Repr-Digest", "Content-Length"} <= set(head["responses"]["200"]["headers"])
    assert "Content-Range" in head["responses"]["206"]["headers"]


def test_an_upload_session_answer_documents_its_location_and_offset():
    created = openapi_document()["paths"]["/api/v1/projects/{slug}/uploads/"]["post"]["responses"]["201"]
    assert {"Location", "Upload-Offset"} <= set(created["headers"])


def test_resolving_a_reference_documents_both_query_parameters_as_required_and_its_404():
    resolve = openapi_document()["paths"]["/api/v1/resolve/"]["get"]
    assert [(p["name"], p["required"]) for p in resolve["parameters"]] == [("project", True), ("ref", True)]
    assert "ambiguous_reference" in resolve["responses"]["404"]["description"]
    answer = schema_of(resolve["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"artifact_version", "model_version", "resolved_through"} <= set(answer["required"])


def test_the_policies_in_force_are_a_plain_list_without_paging_parameters():
    current = openapi_document()["paths"]["/api/v1/promotion-policies/current/"]["get"]
    assert current["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert [p["name"] for p in current["parameters"]] == ["project"]


# Real answers against the schema -------------------------------------------------------------------------------


@pytest.fixture
def demo(settings, django_capture_on_commit_callbacks, receiver):
    """`make run`'s demo (projects, runs, versions, lineage, a registry with promotions open and closed, a group's
    grant, a policy saved for one stage and the built-in default for the others), plus what it lacks: an upload
    session, a webhook endpoint with a delivery (to a receiver on loopback), a run without commit or end.
    Answers the demo's superuser's client."""
    settings.DEBUG = True
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo", stdout=io.StringIO())
    admin = get_user_model().objects.get(username=ADMIN_USERNAME)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(admin)}")
    project = Project.objects.get(slug=PROJECT_SLUG)
    created = client.post(
        f"/api/v1/projects/{project.slug}/uploads/", {"digest": "sha256:" + "e" * 64, "size": 10}, format="json"
    )
    assert_conforms(created, "POST", "/api/v1/projects/{slug}/uploads/")
    with django_capture_on_commit_callbacks(execute=True):
        endpoint = client.post(
            "/api/v1/webhooks/endpoints/",
            {"project": project.slug, "url": receiver.url, "event_types": ["artifact_version.published"]},
            format="json",
        )
        assert_conforms(endpoint, "POST", "/api/v1/webhooks/endpoints/")
        sent = client.post(f"/api/v1/webhooks/endpoints/{endpoint.json()['id']}/test/")
        assert_conforms(sent, "POST", "/api/v1/webhooks/endpoints/{id}/test/")
    run = client.post("/api/v1/runs/", {"project": project.slug, "external_id": "bare"}, format="json")
    assert_conforms(run, "POST", "/api/v1/runs/")
    rules = [{"name": "old-checkpoints", "action": "delete", "kinds": ["checkpoint"], "keep_last_versions": 2}]
    policy = client.post("/api/v1/retention-policies/", {"project": project.slug, "rules": rules}, format="json")
    assert_conforms(policy, "POST", "/api/v1/retention-policies/")
    with django_capture_on_commit_callbacks(execute=True):
        version = ArtifactVersion.objects.filter(artifact__project=project).order_by("pk").first()
        for target in ({}, {"artifact_version": version.pk}):
            hold = client.post("/api/v1/legal-holds/", {"project": project.slug, "reason": "Case 7", **target})
            assert_conforms(hold, "POST", "/api/v1/legal-holds/")
        released = client.post(f"/api/v1/legal-holds/{hold.json()['id']}/release/", {"reason": "Case closed."})
        assert_conforms(released, "POST", "/api/v1/legal-holds/{id}/release/")
        # One plan applied, one planned: items kept by the hold above, deleted, and pending.
        plan = client.post("/api/v1/retention-plans/", {"project": project.slug}, format="json")
        assert_conforms(plan, "POST", "/api/v1/retention-plans/")
        applied = client.post(f"/api/v1/retention-plans/{plan.json()['id']}/apply/")
        assert_conforms(applied, "POST", "/api/v1/retention-plans/{id}/apply/")
        superseded = client.post("/api/v1/retention-plans/", {"project": project.slug}, format="json")
        assert_conforms(superseded, "POST", "/api/v1/retention-plans/")
        client.post("/api/v1/retention-plans/", {"project": project.slug}, format="json")
        refused = client.post(f"/api/v1/retention-plans/{superseded.json()['id']}/apply/")
        assert_conforms(refused, "POST", "/api/v1/retention-plans/{id}/apply/")
    # A scoped, project-restricted token, issued and revoked: the answers hold the schema, the secret once.
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    body = {"name": "nightly", "scope": "write", "project": project.slug, "expires_at": expires}
    issued = client.post("/api/v1/tokens/", body, format="json")
    assert_conforms(issued, "POST", "/api/v1/tokens/")
    revoked = client.post(f"/api/v1/tokens/{issued.json()['id']}/revoke/")
    assert_conforms(revoked, "POST", "/api/v1/tokens/{id}/revoke/")
    # Service accounts: one made with a role, one made and switched off.
    for username in ("nightly-openapi", "retired-openapi"):
        body = {"username": username, "project": project.slug, "role": "viewer"}
        made = client.post("/api/v1/service-accounts/", body, format="json")
        assert_conforms(made, "POST", "/api/v1/service-accounts/")
    deactivated = client.post(f"/api/v1/service-accounts/{made.json()['id']}/deactivate/")
    assert_conforms(deactivated, "POST", "/api/v1/service-accounts/{id}/deactivate/")
    return client


def concrete_paths(template: str) -> list[str]:
    """Up to a handful of real paths for `template`, naming objects of the demo."""
    if template.startswith("/api/v1/lineage/"):
        kinds = {"dataset-version": DatasetVersion, "run": Run, "artifact-version": ArtifactVersion}
        return [f"/api/v1/lineage/{kind}/{pk}/" for kind, model in kinds.items() for pk in _some(model, "pk")]
    if "{digest}" in template:
        held = ProjectBlob.objects.select_related("project", "blob").order_by("pk")[:3]
        return [template.format(slug=h.project.slug, digest=h.blob.prefixed_digest) for h in held]
    collection, _, rest = template.partition("/{")
    if not rest:
        return [template]
    model, key = COLLECTIONS[collection + "/"]
    return [template.replace("{" + rest.partition("}")[0] + "}", str(value)) for value in _some(model, key)]


def _some(model, key: str) -> list:
    """The first, last and a few middle values: every kind of object without crawling hundreds of entries."""
    values = list(model.objects.order_by("pk").values_list(key, flat=True))
    return values if len(values) <= 8 else [*values[:4], *values[len(values) // 2 :][:2], *values[-2:]]


COLLECTIONS = {
    "/api/v1/projects/": (Project, "slug"),
    "/api/v1/datasets/": (Dataset, "pk"),
    "/api/v1/dataset-versions/": (DatasetVersion, "pk"),
    "/api/v1/runs/": (Run, "pk"),
    "/api/v1/artifacts/": (Artifact, "pk"),
    "/api/v1/artifact-versions/": (ArtifactVersion, "pk"),
    "/api/v1/models/": (RegisteredModel, "pk"),
    "/api/v1/model-versions/": (ModelVersion, "pk"),
    "/api/v1/promotions/": (PromotionRequest, "pk"),
    "/api/v1/promotion-policies/": (PromotionPolicy, "pk"),
    "/api/v1/retention-policies/": (RetentionPolicy, "pk"),
    "/api/v1/legal-holds/": (LegalHold, "pk"),
    "/api/v1/retention-plans/": (RetentionPlan, "pk"),
    "/api/v1/uploads/": (UploadSession, "pk"),
    "/api/v1/webhooks/endpoints/": (WebhookEndpoint, "pk"),
    "/api/v1/webhooks/deliveries/": (WebhookDelivery, "pk"),
    "/api/v1/audit/entries/": (AuditEntry, "seq"),
    "/api/v1/tokens/": (ApiToken, "pk"),
    "/api/v1/service-accounts/": (ServiceAccount, "pk"),
}
#: Query parameters an operation requires, with a value the demo answers.
REQUIRED_QUERIES = {
    "/api/v1/promotion-policies/current/": {"project": PROJECT_SLUG},
    "/api/v1/retention-policies/current/": {"project": PROJECT_SLUG},
    "/api/v1/resolve/": {"project": PROJECT_SLUG, "ref": f"{MODEL_NAME}@production"},
    "/api/v1/audit/tree-heads/consistency/": {"first": 3, "second": 10},
}


def test_every_read_answers_the_demo_exactly_as_the_schema_says(demo):
    checked = 0
    for template, method, _ in OPERATIONS:
        if method not in {"GET", "HEAD"}:
            continue
        for path in concrete_paths(template):
            query = REQUIRED_QUERIES.get(template, {})
            response = demo.generic(method, path, data=urlencode(query)) if method == "HEAD" else demo.get(path, query)
            assert response.status_code < 300, (method, path, response.status_code, response.content[:300])
            assert_conforms(response, method, template)
            checked += 1
    assert checked > 90


def test_every_list_page_answers_as_the_schema_says_with_a_small_page_and_its_next_cursor(demo):
    for template, method, _ in OPERATIONS:
        if method != "GET" or "{" in template or template in REQUIRED_QUERIES or template.endswith("export/"):
            continue
        first = demo.get(template, {"page_size": 2})
        assert_conforms(first, "GET", template)
        body = first.json()
        if isinstance(body, dict) and body.get("next"):
            assert_conforms(demo.get(body["next"]), "GET", template)


class Contract:
    """A client that holds every answer to the schema and to the status the step expects."""

    def __init__(self, client: APIClient) -> None:
        self.client = client

    def __call__(
        self, method: str, template: str, status: int, body=None, *, content_type=None, headers=None, **path
    ) -> dict:
        path_value = template.format(**path)
        if content_type is not None:
            response = self.client.generic(method, path_value, body, content_type=content_type, headers=headers)
        else:
            response = getattr(self.client, method.lower())(path_value, body, format="json")
        assert response.status_code == status, (method, path_value, response.status_code, response.content[:500])
        assert_conforms(response, method, template)
        return response.json() if response.content and response["Content-Type"].startswith("application/json") else {}


def test_every_write_answers_exactly_as_the_schema_says(demo, api_as, django_capture_on_commit_callbacks):
    call = Contract(demo)
    call("POST", "/api/v1/projects/", 201, {"slug": "contract", "name": "Contract"})
    call("PATCH", "/api/v1/projects/{slug}/", 200, {"description": "Held to the schema."}, slug="contract")
    sam = get_user_model().objects.get(username=SECOND_REVIEWER)
    call("POST", "/api/v1/projects/{slug}/members/", 201, {"role": "reviewer", "user": sam.username}, slug="contract")
    group = call(
        "POST", "/api/v1/projects/{slug}/members/", 201, {"role": "viewer", "group": VIEWER_GROUP}, slug="contract"
    )
    assert group["user"] is None
    call("DELETE", "/api/v1/projects/{slug}/members/{grant_id}/", 204, slug="contract", grant_id=group["id"])

    dataset = call("POST", "/api/v1/datasets/", 201, {"project": "contract", "name": "rows"})
    call("PATCH", "/api/v1/datasets/{id}/", 200, {"description": "Rows."}, id=dataset["id"])
    data, model_bytes = b"a,b\n1,2\n", b"weights"
    for content in (data, model_bytes):
        call(
            "PUT",
            "/api/v1/projects/{slug}/blobs/{digest}",
            201,
            content,
            content_type="application/octet-stream",
            slug="contract",
            digest=sha256(content),
        )
    dataset_version = call("POST", "/api/v1/dataset-versions/", 201, {"dataset": dataset["id"], "digest": sha256(data)})
    inputs = [dataset_version["id"]]
    run_body = {"project": "contract", "external_id": "r1", "code_commit": "3f2a9c1", "input_dataset_versions": inputs}
    run = call("POST", "/api/v1/runs/", 201, run_body)
    call("PATCH", "/api/v1/runs/{id}/", 200, {"status": "completed", "metrics": {"auc": 0.95}}, id=run["id"])
    artifact = call("POST", "/api/v1/artifacts/", 201, {"project": "contract", "name": "scorer", "kind": "model"})
    call("PATCH", "/api/v1/artifacts/{id}/", 200, {"description": "The scorer."}, id=artifact["id"])
    call("POST", "/api/v1/artifacts/{id}/members/", 201, {"role": "viewer", "group": VIEWER_GROUP}, id=artifact["id"])
    version = call(
        "POST",
        "/api/v1/artifact-versions/",
        201,
        {"artifact": artifact["id"], "digest": sha256(model_bytes), "run": run["id"]},
    )

    model = call("POST", "/api/v1/models/", 201, {"project": "contract", "name": "scorer", "model_card": "# Scorer"})
    call("PATCH", "/api/v1/models/{id}/", 200, {"description": "Scores."}, id=model["id"])
    model_version = call(
        "POST", "/api/v1/model-versions/", 201, {"model": model["id"], "artifact_version": version["id"]}
    )
    call("POST", "/api/v1/models/{id}/aliases/", 200, {"name": "latest", "version": 1}, id=model["id"])
    call("DELETE", "/api/v1/models/{id}/aliases/{alias}/", 204, id=model["id"], alias="latest")
    call(
        "POST", "/api/v1/promotion-policies/", 201, {"project": "contract", "stage": "staging", "approvals_required": 2}
    )

    ask = {"model_version": model_version["id"], "target_stage": "staging", "justification": "Shadow scoring."}
    withdrawn = call("POST", "/api/v1/promotions/", 201, ask)
    assert withdrawn["closed_by"] is None
    call("POST", "/api/v1/promotions/{id}/withdraw/", 200, id=withdrawn["id"])
    as_sam = Contract(api_as(sam))
    rejected = call("POST", "/api/v1/promotions/", 201, ask)
    as_sam("POST", "/api/v1/promotions/{id}/reject/", 200, {"comment": "Not yet."}, id=rejected["id"])
    approved = call("POST", "/api/v1/promotions/", 201, ask)
    as_sam("POST", "/api/v1/promotions/{id}/approve/", 200, {"comment": "Fine."}, id=approved["id"])
    as_sam("POST", "/api/v1/promotions/{id}/comments/", 201, {"body": "Shadow scores look sane."}, id=approved["id"])
    call("POST", "/api/v1/promotions/{id}/apply/", 409, id=approved["id"])
    demo_model = RegisteredModel.objects.get(name=MODEL_NAME)
    call("POST", "/api/v1/models/{id}/rollback/", 409, {"justification": "Pager."}, id=demo_model.pk)

    call("POST", "/api/v1/audit/tree-heads/", 201)
    call("POST", "/api/v1/audit/tree-heads/", 200)

    content = b"chunked bytes"
    session = call("POST", "/api/v1/projects/{slug}/uploads/", 201, {"digest": sha256(content)}, slug="contract")
    call(
        "PATCH",
        "/api/v1/uploads/{id}/",
        202,
        content,
        content_type="application/octet-stream",
        headers={"Upload-Offset": "0"},
        id=session["id"],
    )
    finish = f"/api/v1/uploads/{session['id']}/?digest={sha256(content)}"
    finished = demo.put(finish, b"", content_type="application/octet-stream")
    assert finished.status_code == 201, finished.content
    assert_conforms(finished, "PUT", "/api/v1/uploads/{id}/")
    cancelled = call("POST", "/api/v1/projects/{slug}/uploads/", 201, {"digest": sha256(b"other")}, slug="contract")
    call("DELETE", "/api/v1/uploads/{id}/", 204, id=cancelled["id"])

    endpoint = WebhookEndpoint.objects.get()
    call("PATCH", "/api/v1/webhooks/endpoints/{id}/", 200, {"description": "Loopback."}, id=endpoint.pk)
    call("POST", "/api/v1/webhooks/endpoints/{id}/rotate-secret/", 200, {"overlap_hours": 1}, id=endpoint.pk)
    with django_capture_on_commit_callbacks(execute=True):
        call("POST", "/api/v1/webhooks/deliveries/{id}/resend/", 202, id=WebhookDelivery.objects.first().pk)
    call("DELETE", "/api/v1/webhooks/endpoints/{id}/", 204, id=endpoint.pk)


def test_refusals_carry_the_error_bodies_the_schema_documents(demo):
    unknown_field = demo.post("/api/v1/runs/", {"project": PROJECT_SLUG, "external_id": "x", "colour": "red"})
    assert unknown_field.status_code == 400
    assert_conforms(unknown_field, "POST", "/api/v1/runs/")
    nested = demo.post(
        "/api/v1/runs/",
        {"project": PROJECT_SLUG, "external_id": "y", "environment": {"dependencies": [7, {"x": 1}]}},
        format="json",
    )
    assert nested.status_code == 400, nested.content
    assert_conforms(nested, "POST", "/api/v1/runs/")
    no_project = demo.get("/api/v1/promotion-policies/current/", {"project": "nope"})
    assert no_project.status_code == 400
    assert_conforms(no_project, "GET", "/api/v1/promotion-policies/current/")
    for ref, status in ((f"{MODEL_NAME}@ghost", 404), (MODEL_NAME, 400)):
        unresolved = demo.get("/api/v1/resolve/", {"project": PROJECT_SLUG, "ref": ref})
        assert unresolved.status_code == status
        assert_conforms(unresolved, "GET", "/api/v1/resolve/")
    held = ProjectBlob.objects.select_related("project", "blob").first()
    past_the_end = demo.get(
        f"/api/v1/projects/{held.project.slug}/blobs/{held.blob.prefixed_digest}", HTTP_RANGE="bytes=99999999-"
    )
    assert past_the_end.status_code == 416
    assert_conforms(past_the_end, "GET", "/api/v1/projects/{slug}/blobs/{digest}")


def test_request_bodies_are_offered_as_json_or_bytes_only():
    media_types = {
        media for *_, operation in OPERATIONS for media in operation.get("requestBody", {}).get("content", {})
    }
    assert media_types == {"application/json", "application/octet-stream"}


def test_a_grant_names_a_user_or_a_group_in_the_schema_too():
    grant = openapi_document()["components"]["schemas"]["RoleGrantCreateRequest"]
    assert grant["oneOf"] == [{"required": ["user"]}, {"required": ["group"]}]


def test_list_filters_say_an_empty_value_filters_nothing(demo):
    runs = openapi_document()["paths"]["/api/v1/runs/"]["get"]["parameters"]
    filters = [p for p in runs if p["name"] not in {"cursor", "page_size"}]
    assert filters
    assert all(p["allowEmptyValue"] is True for p in filters)
    unfiltered = demo.get("/api/v1/runs/").json()["results"]
    assert demo.get("/api/v1/runs/", {p["name"]: "" for p in filters}).json()["results"] == unfiltered


@pytest.mark.parametrize(
    ("value", "accepted"), [("3f2a9c1", True), ("3F2A9C1", True), (" 3f2a9c1", False), ("3f2a9c", False)]
)
def test_the_commit_filter_pattern_is_the_filters_own(demo, value, accepted):
    (commit,) = [p for p in openapi_document()["paths"]["/api/v1/runs/"]["get"]["parameters"] if p["name"] == "commit"]
    assert bool(re.search(commit["schema"]["pattern"], value)) is accepted
    assert (demo.get("/api/v1/runs/", {"commit": value}).status_code == 200) is accepted


def test_json_documents_in_bodies_are_objects_never_null_or_lists():
    schemas = openapi_document()["components"]["schemas"]
    run = schemas["RunCreateRequest"]["properties"]
    assert run["parameters"]["type"] == schema_of(run["environment"])["type"] == "object"
    assert run["metrics"]["additionalProperties"] == {"type": "number"}
    assert schemas["ArtifactVersionCreateRequest"]["properties"]["metadata"]["type"] == "object"
    thresholds = schemas["PromotionPolicySetRequest"]["properties"]["metric_thresholds"]
    assert thresholds["items"]["required"] == ["metric", "operator", "value"]


def test_no_json_document_is_left_as_any_json_in_the_schema():
    """A property with no type lets a client send or expect null, a list or a scalar: every JSON document the
    server takes or gives is an object (null and other types are refused with a 400), and the schema says so."""
    untyped = [
        f"{name}.{field}"
        for name, component in openapi_document()["components"]["schemas"].items()
        for field, schema in component.get("properties", {}).items()
        if not {"type", "$ref", "allOf", "oneOf", "anyOf"} & set(schema)
    ]
    assert untyped == []
    hardware = openapi_document()["components"]["schemas"]["RunEnvironmentRequest"]["properties"]["hardware"]
    assert hardware["type"] == "object"
    assert not hardware.get("nullable")


@pytest.mark.parametrize(
    ("path", "statuses"),
    [
        ("/api/v1/model-versions/", {"200", "201"}),
        ("/api/v1/promotion-policies/", {"200", "201"}),
        ("/api/v1/artifact-versions/", {"200", "201"}),
        ("/api/v1/dataset-versions/", {"200", "201"}),
    ],
)
def test_writes_that_may_find_their_result_already_there_document_200_too(path, statuses):
    assert statuses <= set(openapi_document()["paths"][path]["post"]["responses"])


@pytest.mark.parametrize(
    ("component", "field", "validator"),
    [
        ("ProjectCreateRequest", "slug", slug_validator),
        ("DatasetCreateRequest", "name", name_validator),
        ("ArtifactCreateRequest", "name", name_validator),
        ("RunCreateRequest", "external_id", external_run_id_validator),
    ],
)
def test_names_carry_the_pattern_of_the_validator_that_checks_them(component, field, validator):
    schema = openapi_document()["components"]["schemas"][component]["properties"][field]
    assert schema["pattern"] == validator.regex.pattern
