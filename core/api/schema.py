"""The API's OpenAPI description as a contract: what a client generator and a schema fuzzer may rely on.

drf-spectacular describes each operation's success from its serializers. What the server also does for every
operation, whichever view it is, is described here, once, so no view can forget it:

- the errors it can answer, each with its JSON body (`Error`, or for a 400 also `ValidationError`);
- that request bodies refuse fields they do not know (`InputSerializer`), as `additionalProperties: false`;
- the constraints the server enforces on ids, digests, commits and page sizes;
- the HEAD operations of the byte endpoints, which drf-spectacular leaves out (a postprocessing hook).
"""

import copy
from typing import Any

from django_filters import rest_framework as django_filters
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent

from core.api.fields import DIGEST_SCHEMA, CommitField, DigestField
from core.api.pagination import NewestFirstCursorPagination
from core.api.serializers import InputSerializer
from core.filters import CommitFilter, DigestFilter, MetadataFilter
from core.validators import MAX_ID

# The query filters' languages. A filter left empty is no filter at all (django-filter), so each also accepts "".
DIGEST_QUERY_PATTERN = r"^\s*(?:(?:[Ss][Hh][Aa]256:)?[0-9A-Fa-f]{64})?\s*$"
# A RegexField: not trimmed.
COMMIT_QUERY_PATTERN = r"^(?:[0-9A-Fa-f]{7,64})?$"
# MetadataField: a dotted key (METADATA_KEY, whose `$` also admits one newline before the colon), a colon, a value.
METADATA_QUERY_PATTERN = r"^\s*(?:[A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_-]{1,64}){0,7}\n?:[\s\S]*)?$"
ID_SCHEMA = {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}
# Path segments the URL patterns keep to 18 digits ([0-9]{1,18}), so no lookup overflows a 64-bit column.
EIGHTEEN_DIGITS = 10**18 - 1

ERROR_SCHEMA = {
    "type": "object",
    "description": "A refusal: what is wrong in words a person can act on, a stable code, and the input at fault.",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable and machine-readable, e.g. not_found, conflict."},
        "field": {"type": "string", "description": "The input at fault, when there is one."},
    },
    "required": ["detail", "code"],
}
FIELD_ERRORS_REF = {"$ref": "#/components/schemas/ValidationError"}
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": "Input that does not validate: each field at fault with its messages; `non_field_errors` for "
    "the input as a whole. A nested object's errors are an object of the same shape; a list's errors are keyed "
    "by the position of the item at fault (or a list with one entry per item).",
    "additionalProperties": {
        "anyOf": [
            {"type": "array", "items": {"anyOf": [{"type": "string"}, FIELD_ERRORS_REF]}},
            FIELD_ERRORS_REF,
        ]
    },
}

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
#: The endpoints that take a file's bytes as the request body, not JSON, and what else they can answer: 411 for a
#: body without Content-Length, 416 for a chunk that does not start where the upload stands.
BYTE_UPLOADS = {
    ("PUT", "/api/v1/projects/{slug}/blobs/{digest}"): {411},
    ("PATCH", "/api/v1/uploads/{id}/"): {411, 416},
    ("PUT", "/api/v1/uploads/{id}/"): {411, 416},
}
#: Query parameters outside the filters that a view reads as left out when they are empty.
EMPTY_MEANS_ABSENT = {
    ("/api/v1/models/{id}/stages/", "at"),
    # A plan's items are filtered inside the action (its own FilterSet), where `?action=` is no filter, as elsewhere.
    ("/api/v1/retention-plans/{id}/items/", "action"),
    ("/api/v1/retention-plans/{id}/items/", "state"),
}
#: Safe (GET) actions that check a role beyond seeing the object, and so can answer 403.
GUARDED_READS = {"members", "export"}

ERROR_DESCRIPTIONS = {
    400: "The input is not valid: field errors (`ValidationError`) or a rule it breaks (`Error`).",
    401: "No valid credentials: send `Authorization: Bearer <token>`.",
    403: "Signed in, but this needs a role (or permission) you do not hold; the message names it.",
    404: "Nothing here that you may see (objects you may not see answer 404 too).",
    406: "The Accept header rules out JSON, the only kind of answer the API gives.",
    409: "The request conflicts with the current state (a duplicate, a closed request, corrupt bytes...).",
    411: "The body must be sent with a Content-Length header.",
    413: "The request body is larger than the server reads for this operation.",
    415: "The body's Content-Type is not one this operation reads.",
    416: "The byte position does not match (a chunk's offset, a range past the end).",
}


def _component(name: str, schema: dict) -> ResolvedComponent:
    return ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)


class ProvenantAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the rules every Provenant operation follows (see the module docstring)."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        for parameter in operation.get("parameters", []):
            self._constrain_parameter(parameter)
        self._document_errors(operation)
        return operation

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(serializer, InputSerializer):
            schema["additionalProperties"] = False
            if exactly_one := getattr(serializer, "exactly_one_of", None):
                schema["oneOf"] = [{"required": [name]} for name in exactly_one]
        return schema

    def _insert_field_validators(self, field, schema):
        # These fields' schema is their whole language (a pattern); limits derived from their validators would
        # count the whitespace the field trims, and a blank alternative would make `oneOf` match "" twice.
        if not isinstance(field, DigestField | CommitField):
            super()._insert_field_validators(field, schema)

    # Parameters -------------------------------------------------------------------------------------------------

    def _constrain_parameter(self, parameter: dict) -> None:
        name, where, schema = parameter["name"], parameter["in"], parameter.setdefault("schema", {})
        if where == "path":
            if name in {"id", "node_id"} and schema.get("type") == "integer":
                schema.update(ID_SCHEMA)
            elif name == "grant_id":
                schema.clear()
                schema.update(type="integer", format="int64", minimum=1, maximum=EIGHTEEN_DIGITS)
            elif name == "seq":
                schema.clear()
                schema.update(type="integer", format="int64", minimum=0, maximum=EIGHTEEN_DIGITS)
            elif name == "digest":
                schema.update(DIGEST_SCHEMA)
            return
        if where == "query" and name == "digest" and self._query_filter(name) is None:
            schema.update(DIGEST_SCHEMA)
            return
        if where != "query":
            return
        if (self.path, name) in EMPTY_MEANS_ABSENT:
            parameter["allowEmptyValue"] = True
        if name == "page_size" and self._paginated():
            paginator = self._get_paginator()
            schema.update(type="integer", minimum=1, maximum=paginator.max_page_size or MAX_ID)
            parameter["description"] = f"Items per page, 1-{paginator.max_page_size} (default {paginator.page_size})."
            return
        query_filter = self._query_filter(name)
        if query_filter is None:
            return
        # `?run=` filters nothing, whatever the filter's type: an empty value is the parameter left out.
        parameter["allowEmptyValue"] = True
        extra = query_filter.extra
        if isinstance(query_filter, django_filters.NumberFilter) and "max_value" in extra:
            schema.clear()
            schema.update(type="integer", format="int64", minimum=extra.get("min_value", 1), maximum=extra["max_value"])
        elif isinstance(query_filter, DigestFilter):
            schema.update(type="string", pattern=DIGEST_QUERY_PATTERN)
        elif isinstance(query_filter, CommitFilter):
            schema.update(type="string", pattern=COMMIT_QUERY_PATTERN)
        elif isinstance(query_filter, MetadataFilter):
            schema.update(type="string", pattern=METADATA_QUERY_PATTERN)
        elif "max_length" in extra:
            schema["maxLength"] = extra["max_length"]

    def _paginated(self) -> bool:
        return isinstance(self._get_paginator(), NewestFirstCursorPagination)

    def _query_filter(self, name: str):
        backends = getattr(self.view, "filter_backends", None) or []
        filterset_class = getattr(self.view, "filterset_class", None)
        if filterset_class is None or not any(issubclass(b, django_filters.DjangoFilterBackend) for b in backends):
            return None
        return filterset_class.base_filters.get(name)

    # Errors -----------------------------------------------------------------------------------------------------

    def _document_errors(self, operation: dict) -> None:
        self.registry.register_on_missing(_component("Error", ERROR_SCHEMA))
        self.registry.register_on_missing(_component("ValidationError", VALIDATION_ERROR_SCHEMA))
        responses = operation["responses"]
        parameters = operation.get("parameters", [])
        unsafe = self.method in UNSAFE_METHODS
        takes_body = "requestBody" in operation
        byte_upload = BYTE_UPLOADS.get((self.method, self.path))

        statuses: set[int] = set()
        if not self._public(operation):
            statuses.add(401)
        # Every operation: a query parameter holding a NUL character is refused before any view reads it
        # (core/api/middleware.py), whether or not the operation reads query parameters.
        statuses.add(400)
        # Every operation: answers are JSON, and an Accept header that rules JSON out is refused.
        statuses.add(406)
        # Writes also answer 403 when the session cookie comes without its CSRF token.
        if unsafe or getattr(self.view, "action", None) in GUARDED_READS or self._checks_role_on_read():
            statuses.add(403)
        if any(p["in"] == "path" for p in parameters) or any(p["name"] == "cursor" for p in parameters):
            statuses.add(404)
        if unsafe:
            statuses.add(409)
        if takes_body and byte_upload is None:
            statuses |= {413, 415}
        statuses |= byte_upload or set()
        # Errors a view documents itself get the one error body too.
        statuses |= {int(status) for status in responses if status.startswith("4")}

        for status in sorted(statuses):
            key = str(status)
            # A view's own description of an error (say, why a 409) is kept; its body is the one shape.
            described = responses.get(key, {}).get("description") or ERROR_DESCRIPTIONS.get(status, "")
            if status == 400:
                body = {"anyOf": [FIELD_ERRORS_REF, {"$ref": "#/components/schemas/Error"}]}
            else:
                body = {"$ref": "#/components/schemas/Error"}
            responses[key] = {
                "content": {"application/json": {"schema": body}},
                "description": described,
            }

    def _public(self, operation: dict) -> bool:
        security = operation.get("security")
        return not security or {} in security

    def _checks_role_on_read(self) -> bool:
        """Reads whose view checks a role on an object it found: upload sessions (their creator must still be
        allowed to upload) and the policies in force (a project's viewers only)."""
        return self.path in {"/api/v1/uploads/{id}/", "/api/v1/promotion-policies/current/"}


# The postprocessing hook ---------------------------------------------------------------------------------------

#: The byte endpoints whose HEAD answers GET's headers without the body (README: "HEAD first").
HEAD_PATHS = ["/api/v1/projects/{slug}/blobs/{digest}", "/api/v1/artifact-versions/{id}/download/"]


def add_head_operations(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Describe HEAD on the byte endpoints: GET's parameters and answers, with every header and no body.

    drf-spectacular leaves HEAD out of every path; these two are where a client asks it (does the project hold
    these bytes, how large are they, what is their digest) before deciding to download or upload.
    """
    for path in HEAD_PATHS:
        item = result["paths"].get(path)
        if not item or "get" not in item:
            continue
        head = copy.deepcopy(item["get"])
        head["operationId"] = f"{head['operationId']}_head"
        head["summary"] = "The headers GET would send, without the body."
        head["description"] = (
            "Answers exactly the status and headers of the same GET (Content-Length, ETag, Repr-Digest, "
            "Content-Range...) with no body, and reads nothing from storage. Errors have no body either."
        )
        for response in head["responses"].values():
            response.pop("content", None)
        item["head"] = head
    return result
