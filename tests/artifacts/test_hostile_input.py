"""Input no client should send still gets a 4xx that explains itself, never a 500."""

import base64
from urllib.parse import urlencode

import pytest

from tests.artifacts.factories import ArtifactFactory, DatasetFactory, ProjectFactory, sha256

pytestmark = pytest.mark.django_db

TOO_BIG = "99999999999999999999999"  # more than a 64-bit id can hold


@pytest.mark.parametrize(
    ("url", "status"),
    [
        (f"/api/v1/artifacts/{TOO_BIG}/", 404),
        (f"/api/v1/artifact-versions/{TOO_BIG}/", 404),
        (f"/api/v1/artifact-versions/{TOO_BIG}/download/", 404),
        (f"/api/v1/lineage/run/{TOO_BIG}/", 404),
        (f"/api/v1/artifact-versions/?run={TOO_BIG}", 400),
        (f"/api/v1/artifact-versions/?artifact={TOO_BIG}", 400),
        (f"/api/v1/artifact-versions/?dataset_version={TOO_BIG}", 400),
        (f"/api/v1/runs/?dataset_version={TOO_BIG}", 400),
        ("/api/v1/runs/?dataset_version=1e400", 400),
        ("/api/v1/artifact-versions/?cursor=not-a-cursor", 400),
        ("/api/v1/artifact-versions/?metadata=a:1e999", 400),
        ("/api/v1/artifact-versions/?metadata=a:NaN", 200),  # the text "NaN", which nothing has
        ("/api/v1/artifact-versions/?metadata=regex:[", 200),  # a key named "regex", not a lookup
        ("/api/v1/artifact-versions/?metadata=a.range:1", 200),
        ("/api/v1/artifact-versions/?metadata=contained_by:1", 200),
        ("/api/v1/runs/?parameter=contains:1", 200),
        ("/api/v1/runs/?parameter=a:99999999999999999999999999", 200),
        ("/api/v1/projects/%00/", 404),
        ("/api/v1/projects/x/blobs/sha256:%00", 404),
        ("/api/v1/datasets/?project=%00", 400),
    ],
)
def test_hostile_urls_get_the_answer_they_deserve(api, url, status):
    assert api.get(url).status_code == status


# p=NaN, p=<NUL>, p=x: cursors that decode, with a position no page of ours ever had.
FORGED_CURSORS = ["cD1OYU4=", "cD0A", "cD14", "cD0xZTQwMA==", "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "not-a-cursor", "é"]
# Not base64 (`%%%`), or base64 of no token DRF writes (`AAAA` is three NULs, `eD0x` is x=1): DRF's lenient decoding
# read these as no cursor and answered the first page.
FORGED_CURSORS += ["%%%", "AAAA", "eD0x", "cD0x!", "=cD0x"]
PAGINATED = ["/api/v1/projects/", "/api/v1/runs/", "/api/v1/models/", "/api/v1/audit/entries/"]


@pytest.mark.parametrize("cursor", FORGED_CURSORS)
@pytest.mark.parametrize("url", PAGINATED)
def test_a_cursor_the_server_did_not_make_is_a_400_that_says_so(api, url, cursor):
    response = api.get(url, {"cursor": cursor})

    assert response.status_code == 400
    assert "cursor was not made by this server" in response.json()["cursor"][0]


def _cursor(position: str) -> str:
    return base64.b64encode(urlencode({"p": position}).encode()).decode()


@pytest.mark.parametrize(
    "cursor", [*FORGED_CURSORS, _cursor("2026-01-01 00:00:00"), _cursor("2026-13-01 00:00:00+00:00"), _cursor("a\x00")]
)
def test_a_forged_cursor_on_a_list_ordered_by_time_is_a_400(api, cursor):
    project = ProjectFactory()

    response = api.get(f"/api/v1/projects/{project.slug}/uploads/", {"cursor": cursor})

    assert response.status_code == 400
    assert "cursor was not made by this server" in response.json()["cursor"][0]


def test_the_cursors_of_a_list_ordered_by_time_are_accepted(api):
    project = ProjectFactory()
    for size in range(1, 4):
        api.post(
            f"/api/v1/projects/{project.slug}/uploads/", {"digest": sha256(b"x" * size), "size": size}, format="json"
        )
    url = f"/api/v1/projects/{project.slug}/uploads/"

    second = api.get(api.get(url, {"page_size": 2}).json()["next"])

    assert second.status_code == 200
    assert len(second.json()["results"]) == 1


@pytest.mark.parametrize("page_size", ["abc", "0", "-1", "501", "1e3", " 5", "99999999999999999999999", "\uff15"])
def test_a_page_size_outside_1_to_500_is_a_400_naming_the_range(api, page_size):
    response = api.get("/api/v1/projects/", {"page_size": page_size})

    assert response.status_code == 400
    assert "from 1 to 500" in response.json()["page_size"][0]


def test_the_cursors_the_server_makes_are_accepted_both_ways(api):
    for _ in range(5):
        ProjectFactory()
    second = api.get(api.get("/api/v1/projects/", {"page_size": 2}).json()["next"]).json()

    back = api.get(second["previous"])

    assert back.status_code == 200
    assert len(back.json()["results"]) == 2


@pytest.mark.parametrize(
    "reference",
    [f'"artifact": {TOO_BIG}', '"artifact": 1e400', '"artifact": 1.9', '"artifact": ARTIFACT, "run": 1e400'],
)
def test_references_that_are_not_ids_are_a_400(api, reference):
    artifact = ArtifactFactory()
    digest = "sha256:" + "a" * 64
    body = f'{{"digest": "{digest}", {reference.replace("ARTIFACT", str(artifact.id))}}}'
    response = api.post("/api/v1/artifact-versions/", body, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "extra",
    [
        {"input_dataset_versions": [int(TOO_BIG)]},
        {"name": "x" * 10_000},
        {"started_at": "10000-01-01T00:00:00Z"},
    ],
)
def test_oversized_run_fields_are_a_400(api, extra):
    payload = {"project": ProjectFactory().slug, "external_id": "r1", **extra}
    assert api.post("/api/v1/runs/", payload, format="json").status_code == 400


def test_huge_numbers_inside_json_documents_are_kept(api):
    payload = {"project": ProjectFactory().slug, "external_id": "r1", "parameters": {"seed": 10**40}}
    response = api.post("/api/v1/runs/", payload, format="json")
    assert response.status_code == 201
    assert response.json()["parameters"] == {"seed": 10**40}


def test_row_count_beyond_64_bits_is_a_400(api):
    payload = {
        "dataset": DatasetFactory().id,
        "uri": "s3://lake/x/",
        "manifest_digest": "sha256:" + "a" * 64,
        "row_count": 10**30,
    }
    assert api.post("/api/v1/dataset-versions/", payload, format="json").status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        '{"project": "%s", "external_id": "r", "metrics": {"a": 1e999}}',
        '{"project": "%s", "external_id": "r", "parameters": {"a": 1e999}}',
        '{"project": "%s", "external_id": "r", "parameters": {"a": NaN}}',
        "[1, 2]",
        '"a string"',
        "null",
        '{"project": {"a": 1}}',
        '{"project": ["x"], "external_id": 5}',
    ],
)
def test_json_that_is_not_a_run_is_a_400(api, body):
    project = ProjectFactory()
    response = api.post("/api/v1/runs/", body.replace("%s", project.slug), content_type="application/json")
    assert response.status_code == 400


# NUL characters: PostgreSQL refuses them in text and jsonb (a DataError), SQLite stores them; this module runs on
# both (the Makefile's IT_PARITY), so a NUL that reached the database would show here as a 500 on PostgreSQL.

NUL_REFUSED = "contains a NUL character"
REMOVE_IT = "contains a NUL character (\\u0000), which no name or text here can hold: remove it."


def _nul_project_bodies() -> list:
    return [
        pytest.param("/api/v1/runs/", {"project": "a\x00", "external_id": "r7"}, id="runs"),
        pytest.param("/api/v1/artifacts/", {"project": "a\x00", "name": "m", "kind": "model"}, id="artifacts"),
        pytest.param("/api/v1/models/", {"project": "a\x00", "name": "m"}, id="models"),
        pytest.param("/api/v1/datasets/", {"project": "a\x00", "name": "d"}, id="datasets"),
        pytest.param("/api/v1/promotion-policies/", {"project": "a\x00", "stage": "production"}, id="policies"),
    ]


@pytest.mark.parametrize(("url", "body"), _nul_project_bodies())
def test_nul_in_a_project_slug_is_a_400_naming_the_field(api, url, body):
    response = api.post(url, body, format="json")

    assert response.status_code == 400
    assert NUL_REFUSED in response.json()["project"][0]


@pytest.mark.parametrize("member", [{"user": "al\x00ice"}, {"group": "ops\x00"}])
def test_nul_in_a_member_name_is_a_400(api, member):
    project, artifact = ProjectFactory(), ArtifactFactory()
    for url in (f"/api/v1/projects/{project.slug}/members/", f"/api/v1/artifacts/{artifact.pk}/members/"):
        response = api.post(url, {"role": "viewer", **member}, format="json")

        assert response.status_code == 400
        (field,) = member
        assert NUL_REFUSED in response.json()[field][0]


def test_nul_in_an_owner_is_a_400_naming_its_place(api):
    body = {"project": ProjectFactory().slug, "name": "m", "owners": ["alice", "b\x00b"]}

    response = api.post("/api/v1/models/", body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "owners": [
            "The value at [1] contains a NUL character (\\u0000), which no name or text here can hold: remove it."
        ]
    }


@pytest.mark.parametrize(
    ("parameters", "says"),
    [
        ({"optimizer": {"name": "ad\x00am"}}, "The value at optimizer.name contains"),
        ({"layers": [1, {"ke\x00y": 2}]}, "The name at layers[1].ke\\u0000y contains"),
    ],
)
def test_nul_deep_inside_a_json_document_is_named_by_its_path(api, parameters, says):
    body = {"project": ProjectFactory().slug, "external_id": "r1", "parameters": parameters}

    response = api.post("/api/v1/runs/", body, format="json")

    assert response.status_code == 400
    assert response.json()["parameters"][0].startswith(says)


def test_nul_in_a_field_name_is_a_400(api):
    response = api.post("/api/v1/runs/", '{"pro\\u0000ject": "x"}', content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "pro\\u0000ject": [
            "This name contains a NUL character (\\u0000), which no name or text here can hold: remove it."
        ]
    }


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/promotion-policies/current/?project=a%00b",
        "/api/v1/runs/?external_id=r%00",
        "/api/v1/artifact-versions/?metadata=a%00:1",
        "/api/v1/audit/entries/?action=a%00.",
        "/api/v1/projects/?cursor=a%00",
    ],
)
def test_nul_in_any_query_parameter_is_a_400_naming_it(api, url):
    name = url.split("?")[1].split("=")[0]

    response = api.get(url)

    assert response.status_code == 400
    assert NUL_REFUSED in response.json()[name][0]


def test_nul_in_a_query_parameters_name_is_a_400(api):
    response = api.get("/api/v1/runs/?a%00=1")

    assert response.status_code == 400
    assert NUL_REFUSED in response.json()["a\\u0000"][0]


# Depth: Python's JSON decoder recurses once per level and used to fail with RecursionError (a 500) near 1,000.


@pytest.mark.parametrize("body", ["[" * 2000 + "]" * 2000, '{"a":' * 2000 + "1" + "}" * 2000, "[" * 65 + "]" * 65])
def test_json_nested_too_deep_is_a_400(api, body):
    response = api.post("/api/v1/runs/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "JSON parse error - arrays and objects nest more than 64 levels deep.",
        "code": "too_deep",
    }


def test_brackets_inside_strings_do_not_count_as_depth(api):
    body = {"project": ProjectFactory().slug, "external_id": "r1", "name": "[" * 100, "parameters": {"a": "{" * 200}}

    assert api.post("/api/v1/runs/", body, format="json").status_code == 201


def test_a_document_as_deep_as_documents_may_be_is_accepted(api):
    parameters: dict = {"leaf": 1}
    for _ in range(31):
        parameters = {"inner": parameters}

    response = api.post(
        "/api/v1/runs/",
        {"project": ProjectFactory().slug, "external_id": "r1", "parameters": parameters},
        format="json",
    )

    assert response.status_code == 201, response.content


# Request bodies are JSON: a form, or JSON sent as one (curl -d without -H 'Content-Type: application/json'), is a
# 415 saying what to send. A form's fields were parsed again by each JSON field, past the body's NUL and depth checks.


@pytest.mark.parametrize("body", ['{"project": "p", "external_id": "r1"}', '  [{"a": 1}]'])
def test_json_sent_as_a_form_is_a_415_that_names_the_content_type_to_send(api, body):
    response = api.post("/api/v1/runs/", body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in response.json()["detail"]


DEEP = "[" * 3000 + "]" * 3000


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (f"project=p&external_id=r1&parameters={DEEP}", "application/x-www-form-urlencoded"),
        ("project=p&external_id=r%00", "application/x-www-form-urlencoded"),
        (
            f'--b\r\nContent-Disposition: form-data; name="metrics"\r\n\r\n{DEEP}\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
    ],
    ids=["deep-json-in-a-form-field", "nul-in-a-form-field", "multipart"],
)
def test_a_form_is_a_415_that_says_to_send_json(api, body, content_type):
    response = api.post("/api/v1/runs/", body, content_type=content_type)

    assert response.status_code == 415, response.content
    assert response.json()["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in response.json()["detail"]


@pytest.mark.parametrize("filter_name", ["metadata", "parameter"])
def test_a_filter_value_nested_thousands_deep_is_matched_as_text_not_a_500(api, filter_name):
    url = "/api/v1/artifact-versions/" if filter_name == "metadata" else "/api/v1/runs/"

    response = api.get(url, {filter_name: f"a:{DEEP}"})

    assert response.status_code == 200, response.content
    assert response.json()["results"] == []


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/artifacts/", {"name": "m", "kind": "model", "restricted": 0}, "restricted"),
        ("/api/v1/artifacts/", {"name": "m", "kind": "model", "description": 7}, "description"),
        ("/api/v1/runs/", {"external_id": 42}, "external_id"),
        ("/api/v1/runs/", {"external_id": "r", "input_dataset_versions": ["1"]}, "input_dataset_versions"),
        ("/api/v1/projects/{slug}/uploads/", {"digest": "sha256:" + "a" * 64, "direct": "false"}, "direct"),
        ("/api/v1/projects/{slug}/uploads/", {"digest": "sha256:" + "a" * 64, "size": "10"}, "size"),
    ],
)
def test_a_json_value_of_another_type_than_the_schema_says_is_a_400(api, url, body, field):
    """DRF reads 0 as false, 7 as "7" and "10" as 10; the schema promises a boolean, a string, an integer, so a
    client generated from it, or a fuzzer checking it, may rely on the server refusing anything else."""
    project = ProjectFactory()
    body = {"project": project.slug, **body} if "{slug}" not in url else body
    response = api.post(url.format(slug=project.slug), body, format="json")
    assert response.status_code == 400, response.content
    assert "Expected" in str(response.json()[field])


# A trailing newline: Python's `$` matches just before it, PostgreSQL's check constraints do not (an IntegrityError).


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/projects/", {"slug": "newline\n", "name": "N"}, "slug"),
        ("/api/v1/artifacts/", {"name": "abc\n", "kind": "model"}, "name"),
        ("/api/v1/datasets/", {"name": "abc\n"}, "name"),
        ("/api/v1/runs/", {"external_id": "r9\n"}, "external_id"),
    ],
)
def test_a_name_with_a_trailing_newline_is_a_400_naming_the_field(api, url, body, field):
    if "slug" not in body:
        body = {"project": ProjectFactory().slug, **body}

    response = api.post(url, body, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
