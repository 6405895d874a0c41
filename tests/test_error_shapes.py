"""Every error the API answers is JSON in one of the two documented shapes (core/api/exceptions.py, and the
schema's `Error` and validation error components), whoever produces it: a DRF view, a service's rule, Django itself
before any view (an unknown URL, a body too big, too many form fields, a host it does not serve, an unexpected
exception), or the middleware that refuses NUL characters.

The last tests run the API in a real server process (granian, as deployed), so the answers are checked as a client
receives them, past Django's test client. What granian answers by itself cannot be JSON, because no application
sees the request: to a request that is not valid HTTP/1.1 (a garbage request line, a header line without a colon,
a NUL byte in a header or the path, a Content-Length that is not a number, an unknown HTTP version) it answers
`400 Bad Request` with an empty body and no Content-Type, and closes the connection. That is checked too, so a
change in what the server says is noticed.
"""

import http.client
import json
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework import exceptions
from rest_framework.test import APIClient

from artifacts.api.views import ProjectViewSet
from artifacts.models import Run
from core.api.exceptions import exception_handler
from tests import live_server
from tests.artifacts.factories import BlobFactory, ProjectFactory, RunFactory, UserFactory


def assert_error(response, status: int, code: str | None = None) -> dict:
    """`{"detail": str, "code": str}` plus `"field": str` where a rule names one, nothing else, as JSON."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) <= {"detail", "code", "field"}, body
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert isinstance(body["code"], str)
    assert isinstance(body.get("field", ""), str)
    if code is not None:
        assert body["code"] == code
    return body


def assert_field_errors(response, *fields: str) -> dict:
    """`{"<field>": ["message", ...]}` for exactly `fields`, as JSON."""
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == set(fields), body
    for messages in body.values():
        assert isinstance(messages, list)
        assert messages
        assert all(isinstance(message, str) for message in messages)
    return body


@pytest.fixture
def unraised(api) -> APIClient:
    """The API client, answering a view's exception as the server would instead of raising it in the test."""
    api.raise_request_exception = False
    return api


# What the test client can provoke --------------------------------------------------------------------------------


@pytest.mark.django_db
class TestEveryStatusTheApiAnswers:
    def test_400_a_field_that_does_not_validate(self, api):
        assert_field_errors(api.post("/api/v1/runs/", {}, format="json"), "project", "external_id")

    def test_400_errors_inside_a_field_are_still_a_list_of_strings(self, api):
        body = {"project": ProjectFactory().slug, "name": "m", "owners": ["nobody-1", "nobody-2"]}

        errors = assert_field_errors(api.post("/api/v1/models/", body, format="json"), "owners")

        assert [message[:4] for message in errors["owners"]] == ["[0]:", "[1]:"]

    def test_400_the_input_as_a_whole(self, api):
        url = f"/api/v1/projects/{ProjectFactory().slug}/members/"

        assert_field_errors(api.post(url, {"role": "viewer"}, format="json"), "non_field_errors")

    def test_400_a_query_parameter(self, api):
        assert_field_errors(api.get("/api/v1/projects/", {"page_size": "0"}), "page_size")

    def test_400_a_rule_names_its_field(self, api):
        run = RunFactory()

        response = api.patch(f"/api/v1/runs/{run.pk}/", {"ended_at": "2026-01-01T00:00:00Z"}, format="json")

        assert assert_error(response, 400, "invalid")["field"] == "ended_at"

    def test_400_json_that_does_not_parse(self, api):
        assert_error(api.post("/api/v1/runs/", "{", content_type="application/json"), 400, "parse_error")

    def test_400_json_nested_too_deep(self, api):
        response = api.post("/api/v1/runs/", "[" * 2000 + "]" * 2000, content_type="application/json")

        assert_error(response, 400, "too_deep")

    def test_415_a_form_however_many_fields_it_has(self, api):
        """Request bodies are JSON: a form is refused before Django would count (or parse) its fields."""
        form = "&".join(f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))

        response = api.post("/api/v1/runs/", form, content_type="application/x-www-form-urlencoded")

        body = assert_error(response, 415, "unsupported_media_type")
        assert "Content-Type: application/json" in body["detail"]
        assert "application/x-www-form-urlencoded" in body["detail"]

    def test_400_a_host_this_server_does_not_serve(self, api):
        assert_error(api.get("/api/v1/projects/", HTTP_HOST="evil.example"), 400, "bad_host")

    def test_401_without_credentials(self, anonymous_api):
        response = anonymous_api.get("/api/v1/projects/")

        assert_error(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_401_with_a_token_that_is_not_valid(self, anonymous_api):
        anonymous_api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

        assert_error(anonymous_api.get("/api/v1/projects/"), 401, "authentication_failed")

    def test_403_a_permission_the_user_lacks(self, api_as):
        assert_error(api_as(UserFactory()).post("/api/v1/projects/", {}, format="json"), 403, "permission_denied")

    def test_404_an_object_that_is_not_there(self, api):
        assert_error(api.get("/api/v1/projects/no-such-project/"), 404, "not_found")

    def test_404_an_address_no_endpoint_has(self, api):
        body = assert_error(api.get("/api/v1/no-such-endpoint/"), 404, "not_found")

        assert "/api/v1/schema/" in body["detail"]

    def test_404_a_path_with_a_nul(self, api):
        assert_error(api.get("/api/v1/projects/a%00/"), 404, "not_found")

    @pytest.mark.parametrize("debug", [False, True])
    @pytest.mark.parametrize("method", ["get", "post"])
    def test_404_a_path_without_its_trailing_slash_names_the_path_with_it(self, api, settings, method, debug):
        """Django's APPEND_SLASH answered an empty HTML 301 (which `curl --fail-with-body` takes for success) and,
        for a POST under DEBUG (`make run`), a 500."""
        settings.DEBUG = debug

        body = assert_error(getattr(api, method)("/api/v1/runs"), 404, "not_found")

        assert "/api/v1/runs/" in body["detail"]

    def test_a_path_that_needs_no_trailing_slash_is_served_without_one(self, api):
        project = ProjectFactory()

        body = assert_error(api.get(f"/api/v1/projects/{project.slug}/blobs/sha256:{'a' * 64}"), 404, "not_found")

        assert "slash" not in body["detail"]

    @pytest.mark.parametrize(
        ("method", "url", "status", "code"),
        [
            ("post", "/api/v1/schema/", 405, "method_not_allowed"),
            ("get", "/api/v1/schema/?format=x", 404, "not_found"),
            ("post", "/api/v1/docs/", 405, "method_not_allowed"),
        ],
    )
    def test_the_schema_and_docs_answer_their_errors_in_json_too(self, api, method, url, status, code):
        assert_error(getattr(api, method)(url), status, code)

    def test_406_an_html_only_client_gets_json_that_says_so(self, api):
        body = assert_error(api.get("/api/v1/runs/?page_size=0", HTTP_ACCEPT="text/html"), 406, "not_acceptable")

        assert "JSON" in body["detail"]

    def test_405_a_method_the_resource_does_not_offer(self, api):
        assert_error(api.delete(f"/api/v1/projects/{ProjectFactory().slug}/"), 405, "method_not_allowed")

    def test_406_a_representation_the_api_does_not_make(self, api):
        assert_error(api.get("/api/v1/projects/", HTTP_ACCEPT="application/xml"), 406, "not_acceptable")

    def test_409_a_change_the_state_does_not_allow(self, api):
        run = RunFactory(status=Run.Status.COMPLETED)

        assert_error(api.patch(f"/api/v1/runs/{run.pk}/", {"metrics": {"a": 1}}, format="json"), 409, "run_finished")

    def test_411_a_raw_body_without_a_length(self, api):
        url = f"/api/v1/projects/{ProjectFactory().slug}/blobs/sha256:{'a' * 64}"

        response = api.put(
            url, b"data", content_type="application/octet-stream", HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH=""
        )

        assert_error(response, 411, "length_required")

    def test_413_a_body_over_the_limit(self, api):
        body = '{"name": "' + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + '"}'

        assert_error(api.post("/api/v1/runs/", body, content_type="application/json"), 413, "too_large")

    def test_415_a_content_type_the_api_does_not_read(self, api):
        response = api.post("/api/v1/runs/", "project=x", content_type="text/plain")

        assert_error(response, 415, "unsupported_media_type")

    def test_415_json_sent_as_a_form(self, api):
        response = api.post("/api/v1/runs/", '{"project": "x"}', content_type="application/x-www-form-urlencoded")

        assert_error(response, 415, "unsupported_media_type")

    def test_416_a_range_past_the_end_of_a_blob(self, api):
        blob = BlobFactory(content=b"0123456789")
        url = f"/api/v1/projects/{blob.project_links.get().project.slug}/blobs/{blob.prefixed_digest}"

        assert_error(api.get(url, HTTP_RANGE="bytes=100-200"), 416, "range_not_satisfiable")

    def test_500_an_unexpected_exception(self, unraised, monkeypatch):
        def fails(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(ProjectViewSet, "list", fails)

        body = assert_error(unraised.get("/api/v1/projects/"), 500, "server_error")

        assert "a bug" not in body["detail"]  # what went wrong is for the log, not for the client


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (exceptions.NotAuthenticated(), 401, "not_authenticated"),
        (exceptions.AuthenticationFailed(), 401, "authentication_failed"),
        (exceptions.PermissionDenied(), 403, "permission_denied"),
        (exceptions.NotFound(), 404, "not_found"),
        (exceptions.MethodNotAllowed("PUT"), 405, "method_not_allowed"),
        (exceptions.NotAcceptable(), 406, "not_acceptable"),
        (exceptions.UnsupportedMediaType("text/csv"), 415, "unsupported_media_type"),
        (exceptions.Throttled(wait=3), 429, "throttled"),
        (exceptions.ParseError(), 400, "parse_error"),
        (exceptions.APIException(), 500, "error"),
    ],
)
def test_drfs_own_errors_carry_a_code(error, status, code):
    """Also those no endpoint raises today (throttling is not configured), so one added later keeps the shape."""
    response = exception_handler(error, {})

    assert response.status_code == status
    assert set(response.data) == {"detail", "code"}
    assert response.data["code"] == code


@pytest.mark.django_db
def test_options_is_a_405_on_every_path_of_the_schema(api):
    """The schema documents no OPTIONS operation, so OPTIONS is refused like any method a path does not offer. DRF's
    metadata answer used to crash (a 500) on views whose serializer depends on the method, such as a project's
    upload sessions."""
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    project = ProjectFactory(slug="p1")
    for path in schema["paths"]:
        url = re.sub(r"\{slug\}", project.slug, path)
        url = re.sub(r"\{[^}]+\}", "1", url)

        response = api.options(url)

        assert response.status_code in (404, 405), (url, response.status_code, response.content)
        assert_error(response, response.status_code)


@pytest.mark.django_db
def test_the_portal_keeps_its_own_error_pages(client):
    client.force_login(UserFactory())

    response = client.get("/no/such/page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# A real server process -------------------------------------------------------------------------------------------


@dataclass
class Server:
    port: int
    token: str = ""

    def request(self, method: str, path: str, body: bytes | str | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers={"Host": "127.0.0.1", **(headers or {})})
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type"), response.read()
        finally:
            connection.close()

    def raw(self, data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as connection:
            connection.sendall(data)
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        return answer


def _environment(var_dir: Path, **settings: str) -> dict[str, str]:
    return live_server.environment(
        var_dir,
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="error-shape-tests-only-" + "k" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        PROVENANT_HTTPS="false",
        **settings,
    )


@contextmanager
def _serve(var_dir: Path, **extra: str) -> Iterator[int]:
    """granian serving the WSGI app, as deployed, on a free loopback port until the context ends."""
    env = _environment(var_dir, **extra)
    with live_server.process_on_a_free_port(live_server.GRANIAN, env, log_path=var_dir / "server.log") as port:
        yield port


ISSUE_TOKEN = (
    "from datetime import timedelta; from django.contrib.auth import get_user_model; "
    "from governance.access.services.tokens import api_token_issue; "
    "user = get_user_model().objects.create_superuser('admin', 'admin@example.com', 'x'); "
    "print(api_token_issue(user=user, name='error shapes', lifetime=timedelta(days=1))[1])"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """The API on a fresh SQLite database, with a superuser's token."""
    var_dir = tmp_path_factory.mktemp("error-shapes")
    live_server.manage("migrate", "--noinput", env=_environment(var_dir))
    token = live_server.manage("shell", "-c", ISSUE_TOKEN, env=_environment(var_dir)).strip().splitlines()[-1]
    with _serve(var_dir) as port:
        yield Server(port, token)


@pytest.fixture(scope="module")
def server_without_database(tmp_path_factory) -> Iterator[Server]:
    """The API whose database cannot be opened: every request that reaches it fails on the server's side."""
    var_dir = tmp_path_factory.mktemp("no-database")
    with _serve(var_dir, DATABASE_URL=f"sqlite:///{var_dir / 'missing' / 'db.sqlite3'}") as port:
        yield Server(port)


def assert_served_error(answer: tuple[int, str | None, bytes], status: int, code: str) -> None:
    got_status, content_type, body = answer
    assert (got_status, content_type) == (status, "application/json"), body[:300]
    document = json.loads(body)
    assert set(document) <= {"detail", "code", "field"}
    assert document["code"] == code


def test_a_real_server_answers_its_errors_in_json(server):
    bearer = {"Authorization": f"Bearer {server.token}"}
    form = {"Content-Type": "application/x-www-form-urlencoded", **bearer}
    json_body = {"Content-Type": "application/json", **bearer}
    too_many_fields = "&".join(f"f{i}=1" for i in range(1001))
    too_big = '{"name": "' + "x" * (3 * 1024 * 1024) + '"}'

    assert_served_error(server.request("GET", "/api/v1/no-such-endpoint/"), 404, "not_found")
    assert_served_error(server.request("GET", "/api/v1/projects/"), 401, "not_authenticated")
    assert_served_error(server.request("GET", "/api/v1/projects/nope/", headers=bearer), 404, "not_found")
    assert_served_error(server.request("POST", "/api/v1/runs/", too_many_fields, form), 415, "unsupported_media_type")
    assert_served_error(server.request("POST", "/api/v1/runs/", too_big, json_body), 413, "too_large")
    assert_served_error(server.request("POST", "/api/v1/runs/", "[" * 5000, json_body), 400, "too_deep")
    assert_served_error(server.request("GET", "/api/v1/projects/", headers={"Host": "evil.example"}), 400, "bad_host")

    status, content_type, body = server.request(
        "GET", "/api/v1/promotion-policies/current/?project=a%00b", None, bearer
    )
    assert (status, content_type) == (400, "application/json")
    assert b"NUL" in body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /api/v1/ HTTP/1.1\r\nHost: 127.0.0.1\r\nNot a header\r\n\r\n",
        b"GET /api/v1/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Nul: a\x00b\r\n\r\n",
        b"GET /api/v1/\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"POST /api/v1/runs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
        b"GET /api/v1/ HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
    ],
)
def test_what_granian_answers_to_malformed_http_is_an_empty_400(server, request_bytes):
    """No application sees these requests, so the answer cannot be JSON; it carries no body that could mislead."""
    answer = server.raw(request_bytes)

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-length: 0" in head.lower()
    assert body == b""


def test_a_server_that_fails_answers_500_in_json(server_without_database):
    bearer = {"Authorization": "Bearer any-token"}

    assert_served_error(
        server_without_database.request("GET", "/api/v1/projects/", headers=bearer), 500, "server_error"
    )
