"""Hold a real answer to the OpenAPI schema a client would be generated from.

`assert_conforms(document, response, method, path)` fails when the answer's status is not documented for the
operation, or when its JSON body does not validate against the documented schema. The schema is OpenAPI 3.0:
`nullable` is translated to JSON Schema here, and the `components` ride along so every `$ref` resolves.
"""

import json
from functools import cache
from typing import Any

import jsonschema
from drf_spectacular.generators import SchemaGenerator


@cache
def openapi_document() -> dict[str, Any]:
    """The schema exactly as /api/v1/schema/ serves it (through its postprocessing hooks), as plain JSON."""
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))


def as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as JSON Schema says it: the value, or null."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@cache
def _components() -> dict[str, Any]:
    return as_json_schema(openapi_document()["components"])


def documented_response(method: str, path: str, status: int) -> dict[str, Any]:
    operation = openapi_document()["paths"][path][method.lower()]
    responses = operation["responses"]
    assert str(status) in responses, (
        f"{method} {path} answered {status}, which its schema does not document ({', '.join(sorted(responses))})"
    )
    return responses[str(status)]


def assert_conforms(response, method: str, path: str) -> None:
    """`response` (a Django test response) is what the schema says `method path` answers."""
    documented = documented_response(method, path, response.status_code)
    content_type = response.get("Content-Type", "")
    if method.upper() == "HEAD" or not content_type.startswith("application/json"):
        return
    assert "content" in documented, f"{method} {path} {response.status_code}: a body the schema does not document"
    schema = documented["content"]["application/json"]["schema"]
    body = json.loads(response.content)
    validator = jsonschema.Draft4Validator({**as_json_schema(schema), "components": _components()})
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path))
    assert not errors, f"{method} {path} {response.status_code} does not match its schema:\n" + "\n".join(
        f"  at {'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message[:300]}" for error in errors[:10]
    )
