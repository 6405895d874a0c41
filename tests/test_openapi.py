"""The API describes itself, and its docs work offline."""

import re

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management import call_command

from artifacts.api.fields import DIGEST_PATTERN
from artifacts.validators import MAX_ID, commit_validator, parse_digest
from tests.schema_contract import openapi_document

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
        "/api/v1/promotion-policies/",
        "/api/v1/promotion-policies/{id}/",
        "/api/v1/promotion-policies/current/",
    ]:
        assert path in paths, path


def test_interactive_docs_load_every_asset_from_this_server(client, user):
    client.force_login(user)
    html = client.get("/api/v1/docs/").content.decode()
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert sources
    assert all(not s.startswith(("http://", "https://", "//")) for s in sources), sources


def test_schema_is_valid_without_warnings(tmp_path):
    """What `spectacular --validate --fail-on-warn` checks: a warning means a client generator guesses."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


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


def test_the_policies_in_force_are_a_plain_list_without_paging_parameters():
    current = openapi_document()["paths"]["/api/v1/promotion-policies/current/"]["get"]
    assert current["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert [p["name"] for p in current["parameters"]] == ["project"]
