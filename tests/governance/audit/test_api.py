"""The audit log's API for auditors: entries filtered and scoped to what the caller may audit, proofs that verify
with the standalone verifier, signed tree heads, the public key, and the full export."""

import base64
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from artifacts.access.roles import Role
from core.audit import signing
from core.audit import tree as audit_tree
from core.audit.recorder import AuditObject, audit_record, entry_document, tree_head_sign
from core.crypto.merkle import canonical_json, leaf_hash, verify_consistency, verify_inclusion
from core.models import AuditEntry, SignedTreeHead
from tests.artifacts.factories import ArtifactFactory, ProjectFactory, UserFactory, grant
from tests.governance.factories import auditor_of, global_auditor
from tools.audit_verify import verify_export

pytestmark = pytest.mark.django_db

ENTRIES = "/api/v1/audit/entries/"
TREE_HEADS = "/api/v1/audit/tree-heads/"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def record(action: str, obj, *, actor=None, at: datetime | None = None, changes: dict | None = None) -> AuditEntry:
    """An entry as a service would record it, at `at` if given."""
    if at is None:
        return audit_record(action, obj=obj, actor=actor, changes=changes)
    with mock.patch("django.utils.timezone.now", return_value=at):
        return audit_record(action, obj=obj, actor=actor, changes=changes)


def seqs(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["seq"] for item in response.json()["results"]]


def unhex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in values]


# Entries ----------------------------------------------------------------------------------------------------


def test_an_entry_reads_as_the_document_the_log_hashes(api):
    project = ProjectFactory()
    entry = record("project.updated", project, actor=api.user, changes={"name": ["Old", "New"]})

    body = api.get(f"{ENTRIES}{entry.seq}/").json()

    leaf = body.pop("leaf_hash")
    assert body == entry_document(entry)
    assert leaf == leaf_hash(canonical_json(body)).hex()
    assert body["actor"] == {"kind": "user", "user_id": api.user.pk, "label": api.user.username, "token_id": None}
    assert body["project"] == {"id": project.pk, "label": project.slug}
    assert body["changes"] == {"name": ["Old", "New"]}


def test_entries_come_newest_first_a_cursor_page_at_a_time(api):
    project = ProjectFactory()
    made = [record("project.updated", project).seq for _ in range(5)]

    first = api.get(ENTRIES, {"page_size": 2, "project": project.slug})
    second = api.get(first.json()["next"])

    assert seqs(first) == made[::-1][:2]
    assert seqs(second) == made[::-1][2:4]


def test_filters_by_object(api):
    project = ProjectFactory()
    artifact = ArtifactFactory(project=project)
    on_artifact = record("artifact.updated", artifact)
    record("project.updated", project)

    assert seqs(api.get(ENTRIES, {"object_type": "artifact", "object_id": str(artifact.pk)})) == [on_artifact.seq]


def test_filters_by_artifact_include_its_versions_and_downloads(api):
    artifact = ArtifactFactory()
    version = AuditObject(
        type="artifact_version", id="9", label="v1", project_id=artifact.project_id, artifact_id=artifact.pk
    )
    about = [record("artifact.created", artifact).seq, record("blob.downloaded", version).seq]
    record("artifact.created", ArtifactFactory(project=artifact.project))

    assert seqs(api.get(ENTRIES, {"artifact": artifact.pk})) == about[::-1]


def test_filters_by_project_slug_or_id(api):
    project, other = ProjectFactory(), ProjectFactory()
    mine = record("project.updated", project)
    record("project.updated", other)

    assert seqs(api.get(ENTRIES, {"project": project.slug})) == [mine.seq]
    assert seqs(api.get(ENTRIES, {"project": project.pk})) == [mine.seq]


def test_filters_by_actor_username_or_id_or_system_label(api):
    project = ProjectFactory()
    alice = UserFactory(username="alice")
    by_alice = record("project.updated", project, actor=alice)
    record("project.updated", project, actor=UserFactory())
    by_system = record("project.updated", project)

    assert seqs(api.get(ENTRIES, {"actor": "alice"})) == [by_alice.seq]
    assert seqs(api.get(ENTRIES, {"actor": alice.pk})) == [by_alice.seq]
    assert by_system.seq in seqs(api.get(ENTRIES, {"actor": by_system.actor_label}))


def test_a_number_is_a_user_id_and_an_all_digits_username(api):
    """The id reading alone is asked for unless some entry was made by a user so named; then both are."""
    project = ProjectFactory()
    bob = UserFactory(username="bob")
    by_bob = record("project.updated", project, actor=bob)
    assert seqs(api.get(ENTRIES, {"actor": bob.pk})) == [by_bob.seq]
    assert seqs(api.get(ENTRIES, {"actor": bob.pk + 1000})) == []

    digits = UserFactory(username=str(bob.pk))
    by_digits = record("project.updated", project, actor=digits)
    record("project.updated", project, actor=UserFactory())
    assert seqs(api.get(ENTRIES, {"actor": bob.pk})) == [by_digits.seq, by_bob.seq]
    assert seqs(api.get(ENTRIES, {"actor": str(bob.pk)})) == [by_digits.seq, by_bob.seq]
    assert seqs(api.get(ENTRIES, {"actor": digits.pk})) == [by_digits.seq]


def test_the_actor_filter_reads_one_index_on_postgresql(api):
    """Each reading is an exact match on a column an index ending in seq covers: a page is read from that index in
    seq order (an OR of both readings would make PostgreSQL collect and sort every entry of the actor)."""
    if connection.vendor != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    project = ProjectFactory()
    alice = UserFactory(username="alice")
    record("project.updated", project, actor=alice)
    with connection.cursor() as cursor:
        # A tiny table would be read whole, or through a bitmap and sorted, whatever the indexes: the planner is
        # asked to prefer an index read in order, which it can only do where one index covers the whole condition.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            cursor.execute(f"SET {setting} = off")
    try:
        for actor, index in (("alice", "audit_actor_label_seq"), (alice.pk, "audit_actor_seq")):
            with CaptureQueriesContext(connection) as queries:
                assert api.get(ENTRIES, {"actor": actor}).status_code == 200
            page = next(q["sql"] for q in queries.captured_queries if q["sql"].endswith('"seq" DESC LIMIT 51'))
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN " + page)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            assert f"Index Scan Backward using {index}" in plan, plan  # in seq order: no sort of the actor's
    finally:
        with connection.cursor() as cursor:
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                cursor.execute(f"RESET {setting}")


def test_filters_by_exact_action_or_a_prefix_ending_with_a_dot(api):
    artifact = ArtifactFactory()
    stored = record("blob.stored", artifact)
    downloaded = record("blob.downloaded", artifact)
    record("artifact.updated", artifact)

    def with_action(action: str) -> list[int]:
        return seqs(api.get(ENTRIES, {"artifact": artifact.pk, "action": action}))

    assert with_action("blob.downloaded") == [downloaded.seq]
    assert with_action("blob.") == [downloaded.seq, stored.seq]


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ("promotion.", "No audit action starts with 'promotion.'"),
        ("promotion.", "promotion_request.approved_by_reviewer"),
        ("promotion.", "For every action of those kinds use 'promotion_request.'."),
        ("promotion.approved", "'promotion.approved' is a webhook event type, not an audit action"),
        ("promotion.approved", "promotion_request.approved_by_reviewer, promotion_request.approved"),
        ("promotion.closed", "promotion_request.withdrawn, promotion_request.expired, promotion_request.invalidated"),
        ("webhook.test", "sending it is not recorded in the log"),
        ("blob.downlaoded", "Did you mean blob.downloaded"),
        ("artifact_version", "Did you mean artifact_version."),
        ("promotion_requests.", "No audit prefix is named 'promotion_requests.'. Did you mean promotion_request."),
    ],
)
def test_an_action_that_selects_nothing_is_a_400_naming_what_would(api, action, says):
    """A filter that can only ever match nothing is a mistake to point out, not an empty page."""
    response = api.get(ENTRIES, {"action": action})

    assert response.status_code == 400, response.content
    assert says in response.json()["action"][0]


def test_an_event_type_that_is_also_an_action_filters_as_the_action(api):
    artifact = ArtifactFactory()
    published = record("artifact_version.published", artifact)

    assert seqs(api.get(ENTRIES, {"artifact": artifact.pk, "action": "artifact_version.published"})) == [published.seq]


def test_filters_by_time_range_inclusive(api):
    project = ProjectFactory()
    early, middle, late = (record("project.updated", project, at=T0 + timedelta(hours=h)) for h in (0, 1, 2))

    def between(**times: str) -> list[int]:
        return seqs(api.get(ENTRIES, {"project": project.slug, **times}))

    assert between(since="2026-03-01T12:30:00Z", until="2026-03-01T13:00:00Z") == [middle.seq]
    assert between(since="2026-03-01T13:00:00+00:00") == [late.seq, middle.seq]
    assert between(until="2026-03-01T12:00:00Z") == [early.seq]


def test_who_changed_or_downloaded_an_artifact_between_two_times(api):
    """The auditor's question, answered with one request (and one query for the page)."""
    model = ArtifactFactory(name="churn-classifier")
    version = AuditObject(
        type="artifact_version", id="1", label="churn-classifier v1", project_id=model.project_id, artifact_id=model.pk
    )
    alice, bob, carol = (UserFactory(username=name) for name in ("alice", "bob", "carol"))
    record("artifact.updated", model, actor=alice, at=T0 - timedelta(days=1))  # before the window
    changed = record("artifact.updated", model, actor=bob, at=T0 + timedelta(hours=1), changes={"x": [1, 2]})
    downloaded = record("blob.downloaded", version, actor=carol, at=T0 + timedelta(hours=2))
    record("artifact.updated", ArtifactFactory(project=model.project), actor=alice, at=T0 + timedelta(hours=1))
    record("blob.downloaded", version, actor=alice, at=T0 + timedelta(days=2))  # after it

    with CaptureQueriesContext(connection) as queries:
        response = api.get(ENTRIES, {"artifact": model.pk, "since": "2026-03-01T12:00:00Z", "until": "2026-03-02"})

    assert seqs(response) == [downloaded.seq, changed.seq]
    answers = [(item["actor"]["label"], item["action"]) for item in response.json()["results"]]
    assert answers == [("carol", "blob.downloaded"), ("bob", "artifact.updated")]
    entry_queries = [q for q in queries.captured_queries if AuditEntry._meta.db_table in q["sql"]]
    assert len(entry_queries) == 1


def test_filters_combine(api):
    project = ProjectFactory()
    alice = UserFactory(username="alice")
    wanted = record("blob.downloaded", ArtifactFactory(project=project), actor=alice, at=T0)
    record("blob.downloaded", ArtifactFactory(project=project), actor=UserFactory(), at=T0)
    record("blob.downloaded", ArtifactFactory(), actor=alice, at=T0)
    record("artifact.updated", ArtifactFactory(project=project), actor=alice, at=T0)

    query = {"project": project.slug, "actor": "alice", "action": "blob.", "since": "2026-03-01"}
    assert seqs(api.get(ENTRIES, query)) == [wanted.seq]


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "until", "is before since"),
        ({"since": "yesterday"}, "since", "ISO 8601"),
        ({"since": "2026-13-01"}, "since", "ISO 8601"),
        ({"since": "0001-01-01T00:00:00+14:00"}, "since", "out of range"),
        ({"until": "9999-12-31T23:59:59-14:00"}, "until", "out of range"),
        ({"until": "2026-03-01T12:00:00 01:00"}, "until", "write the + of an offset as %2B."),
        ({"artifact": "abc"}, "artifact", ""),
        ({"artifact": str(10**30)}, "artifact", ""),
        ({"action": "artifact version"}, "action", "No audit action is named 'artifact version'"),
        ({"object_id": "x" * 101}, "object_id", ""),
        ({"project": "a\x00b"}, "project", ""),
        ({"actor": "a\x00b"}, "actor", ""),
    ],
)
def test_bad_filter_values_answer_400_saying_what_is_wrong(api, query, field, says):
    response = api.get(ENTRIES, query)

    assert response.status_code == 400, response.content
    message = " ".join(response.json()[field])
    assert says in message


def test_a_page_of_entries_costs_the_same_queries_whatever_its_size(api):
    project = ProjectFactory()
    for _ in range(30):
        record("project.updated", project)

    def queries_for(page_size: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert len(seqs(api.get(ENTRIES, {"page_size": page_size}))) == page_size
        return len(captured)

    queries_for(1)  # the token's first use of the day is written once
    assert queries_for(2) == queries_for(25)


# Who sees what ----------------------------------------------------------------------------------------------


def test_a_project_auditor_reads_that_projects_entries_only(api_as):
    project, other = ProjectFactory(), ProjectFactory()
    open_model = ArtifactFactory(project=project)
    secret = ArtifactFactory(project=project, restricted=True)
    visible = [record("project.updated", project).seq, record("artifact.updated", open_model).seq]
    hidden = [record("project.updated", other).seq, record("artifact.updated", secret).seq]
    client = api_as(auditor_of(project))

    seen = seqs(client.get(ENTRIES))
    assert set(visible) <= set(seen)
    assert not set(hidden) & set(seen)
    for seq in hidden:
        response = client.get(f"{ENTRIES}{seq}/")
        assert response.status_code == 404
        assert response.json()["detail"] == f"No audit entry {seq} that you may read."
    assert client.get(f"{ENTRIES}{hidden[1]}/proof/").status_code == 404


def test_a_restricted_artifacts_auditor_reads_its_entries(api_as):
    secret = ArtifactFactory(restricted=True)
    entry = record("artifact.updated", secret)
    in_project = record("project.updated", secret.project)

    seen = seqs(api_as(auditor_of(secret)).get(ENTRIES))
    assert entry.seq in seen
    assert in_project.seq not in seen


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR, Role.MAINTAINER, Role.REVIEWER])
def test_roles_without_audit_rights_read_an_empty_log(api_as, role):
    project = ProjectFactory()
    entry = record("project.updated", project)
    client = api_as(grant(role, on=project).user)

    assert seqs(client.get(ENTRIES)) == []
    assert client.get(f"{ENTRIES}{entry.seq}/").status_code == 404


def test_the_global_permission_reads_every_entry(api_as):
    entries = [record("project.updated", ProjectFactory()).seq for _ in range(3)]

    assert set(entries) <= set(seqs(api_as(global_auditor()).get(ENTRIES)))


def test_anonymous_callers_are_refused(anonymous_api):
    assert anonymous_api.get(ENTRIES).status_code == 401
    assert anonymous_api.get("/api/v1/audit/public-key/").status_code == 401


def test_the_log_cannot_be_written_through_the_api(api):
    entry = record("project.updated", ProjectFactory())

    for method in ("post", "put", "patch", "delete"):
        url = ENTRIES if method == "post" else f"{ENTRIES}{entry.seq}/"
        response = getattr(api, method)(url, {}, format="json")
        assert response.status_code == 405
        assert "append-only" in response.json()["detail"]


# Inclusion proofs -------------------------------------------------------------------------------------------


def test_inclusion_proof_verifies_against_the_signed_head_it_names(api):
    project = ProjectFactory()
    entries = [record("project.updated", project, changes={"n": n}) for n in range(21)]
    head = tree_head_sign()
    entry = entries[6]

    proof = api.get(f"{ENTRIES}{entry.seq}/proof/").json()

    assert proof["tree_size"] == head.tree_size
    assert proof["tree_head"]["root_hash"] == proof["root_hash"] == head.root_hash
    assert proof["entry"] == entry_document(entry)
    assert proof["leaf_hash"] == leaf_hash(canonical_json(proof["entry"])).hex()
    assert verify_inclusion(
        entry.seq,
        head.tree_size,
        bytes.fromhex(proof["leaf_hash"]),
        unhex(proof["audit_path"]),
        bytes.fromhex(head.root_hash),
    )


def test_inclusion_proof_without_a_covering_head_signs_one(api):
    tree_head_sign()
    entry = record("project.updated", ProjectFactory())
    heads = SignedTreeHead.objects.count()

    proof = api.get(f"{ENTRIES}{entry.seq}/proof/").json()

    assert SignedTreeHead.objects.count() == heads + 1
    assert proof["tree_head"]["tree_size"] == proof["tree_size"] > entry.seq


def test_inclusion_proof_at_a_chosen_size_verifies_against_that_trees_root(api):
    entries = [record("project.updated", ProjectFactory()) for _ in range(10)]
    entry = entries[2]
    size = entry.seq + 5

    proof = api.get(f"{ENTRIES}{entry.seq}/proof/", {"tree_size": size}).json()

    assert proof["tree_head"] is None
    assert proof["root_hash"] == audit_tree.root_at(size).hex()
    assert verify_inclusion(
        entry.seq,
        size,
        bytes.fromhex(proof["leaf_hash"]),
        unhex(proof["audit_path"]),
        bytes.fromhex(proof["root_hash"]),
    )


@pytest.mark.parametrize(
    "tree_size",
    [
        pytest.param(lambda entry: entry.seq, id="not-holding-it"),
        pytest.param(lambda entry: audit_tree.log_size() + 1, id="past-the-end"),
        pytest.param(lambda entry: 0, id="zero"),
        pytest.param(lambda entry: "abc", id="not-a-number"),
    ],
)
def test_inclusion_proof_refuses_a_tree_that_does_not_hold_the_entry(api, tree_size):
    entry = record("project.updated", ProjectFactory())

    response = api.get(f"{ENTRIES}{entry.seq}/proof/", {"tree_size": tree_size(entry)})

    assert response.status_code == 400, response.content
    assert "tree_size" in response.content.decode()


# Tree heads and consistency ---------------------------------------------------------------------------------


def test_tree_heads_list_newest_first_and_latest(api_as):
    reader = api_as(UserFactory())
    assert reader.get(f"{TREE_HEADS}latest/").status_code == 404
    record("project.updated", ProjectFactory())
    older = tree_head_sign()
    record("project.updated", ProjectFactory())
    newer = tree_head_sign()

    listed = reader.get(TREE_HEADS).json()["results"]
    latest = reader.get(f"{TREE_HEADS}latest/").json()

    assert [head["tree_size"] for head in listed] == [newer.tree_size, older.tree_size]
    assert latest == listed[0]
    assert set(latest) == {"tree_size", "root_hash", "signed_at", "key_id", "public_key", "signature"}


def test_a_user_with_no_role_reads_tree_heads_proofs_of_consistency_and_the_key_but_no_entry(api_as):
    """As the README says (For auditors): the heads are public to every signed-in user, so anyone may witness
    the log's growth and hold the server to it; they reveal its size and root, never an entry. Signing one, and
    reading entries, stay with auditors."""
    entry = record("project.updated", ProjectFactory())
    first = tree_head_sign()
    record("project.updated", ProjectFactory())
    second = tree_head_sign()
    nobody = api_as(UserFactory())

    listed = nobody.get(TREE_HEADS)
    latest = nobody.get(f"{TREE_HEADS}latest/")
    consistency = nobody.get(f"{TREE_HEADS}consistency/", {"first": first.tree_size, "second": second.tree_size})

    assert listed.status_code == latest.status_code == consistency.status_code == 200
    assert latest.json()["tree_size"] == second.tree_size
    assert consistency.json()["second_root"] == second.root_hash
    assert nobody.get("/api/v1/audit/public-key/").status_code == 200
    assert seqs(nobody.get(ENTRIES)) == []
    assert nobody.get(f"{ENTRIES}{entry.seq}/").status_code == 404
    assert nobody.get(f"{ENTRIES}{entry.seq}/proof/").status_code == 404
    assert nobody.post(TREE_HEADS).status_code == 403


def test_anonymous_callers_read_no_tree_head(anonymous_api):
    assert anonymous_api.get(TREE_HEADS).status_code == 401
    assert anonymous_api.get(f"{TREE_HEADS}latest/").status_code == 401


def test_signing_on_demand_reuses_a_fresh_head_until_the_log_grows(api):
    record("project.updated", ProjectFactory())

    first = api.post(TREE_HEADS)
    again = api.post(TREE_HEADS)
    record("project.updated", ProjectFactory())
    grown = api.post(TREE_HEADS)

    assert (first.status_code, again.status_code, grown.status_code) == (201, 200, 201)
    assert again.json() == first.json()
    assert grown.json()["tree_size"] == first.json()["tree_size"] + 1


def test_a_fresh_head_is_signed_again_after_a_minute(api):
    record("project.updated", ProjectFactory())
    head = tree_head_sign()
    later = head.signed_at + timedelta(seconds=61)

    with mock.patch("django.utils.timezone.now", return_value=later):
        response = api.post(TREE_HEADS)

    assert response.status_code == 201


def test_auditors_may_sign_a_tree_head_others_may_not(api_as):
    project = ProjectFactory()
    assert api_as(auditor_of(project)).post(TREE_HEADS).status_code == 201
    assert api_as(auditor_of(ArtifactFactory(restricted=True))).post(TREE_HEADS).status_code in (200, 201)
    assert api_as(global_auditor()).post(TREE_HEADS).status_code in (200, 201)

    refused = api_as(grant(Role.MAINTAINER, on=project).user).post(TREE_HEADS)

    assert refused.status_code == 403
    assert "auditor role" in refused.json()["detail"]


def test_consistency_proof_between_two_signed_heads_verifies(api_as):
    for _ in range(7):
        record("project.updated", ProjectFactory())
    first = tree_head_sign()
    for _ in range(26):
        record("project.updated", ProjectFactory())
    second = tree_head_sign()

    body = (
        api_as(UserFactory())
        .get(f"{TREE_HEADS}consistency/", {"first": first.tree_size, "second": second.tree_size})
        .json()
    )

    assert body["first_root"] == body["first_head"]["root_hash"] == first.root_hash
    assert body["second_root"] == body["second_head"]["root_hash"] == second.root_hash
    assert verify_consistency(
        first.tree_size,
        second.tree_size,
        bytes.fromhex(first.root_hash),
        bytes.fromhex(second.root_hash),
        unhex(body["proof"]),
    )


def test_consistency_proof_between_unsigned_sizes_names_no_heads(api):
    for _ in range(5):
        record("project.updated", ProjectFactory())
    size = audit_tree.log_size()

    body = api.get(f"{TREE_HEADS}consistency/", {"first": 0, "second": size}).json()

    assert body["first_head"] is body["second_head"] is None
    assert verify_consistency(0, size, bytes.fromhex(body["first_root"]), bytes.fromhex(body["second_root"]), [])


@pytest.mark.parametrize(
    "query",
    [
        {"first": 3, "second": 2},
        {"first": 0, "second": "past"},
        {"first": -1, "second": 1},
        {"first": "x", "second": 1},
        {},
    ],
)
def test_consistency_proof_refuses_sizes_out_of_order_or_range(api, query):
    record("project.updated", ProjectFactory())
    if query.get("second") == "past":
        query = {**query, "second": audit_tree.log_size() + 1}

    response = api.get(f"{TREE_HEADS}consistency/", query)

    assert response.status_code == 400, response.content


# Public key and export --------------------------------------------------------------------------------------


def test_public_key_is_the_signing_key(api_as):
    body = api_as(UserFactory()).get("/api/v1/audit/public-key/").json()

    assert body["public_key"] == signing.public_key_base64()
    assert body["algorithm"] == "Ed25519"
    assert body["pem"].startswith("-----BEGIN PUBLIC KEY-----")


def test_the_export_is_the_whole_log_and_verifies(api, tmp_path):
    for n in range(20):
        record("project.updated", ProjectFactory(), changes={"n": n})
    tree_head_sign()

    response = api.get("/api/v1/audit/export/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].startswith("attachment;")
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    report = verify_export(path, public_keys=[base64.b64decode(signing.public_key_base64())])
    exported = AuditEntry.objects.get(action="audit_log.exported")
    assert report.entries == audit_tree.log_size() == exported.seq + 1
    assert exported.actor_label == api.user.username
    assert exported.changes == "{}"


def test_the_export_is_open_to_the_global_permission(api_as, tmp_path):
    record("project.updated", ProjectFactory())

    response = api_as(global_auditor()).get("/api/v1/audit/export/")

    assert response.status_code == 200
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    assert verify_export(path).entries == audit_tree.log_size()


def test_a_project_auditor_is_pointed_to_the_filtered_list_instead_of_the_export(api_as):
    client = api_as(auditor_of(ProjectFactory()))

    response = client.get("/api/v1/audit/export/")

    assert response.status_code == 403
    detail = response.json()["detail"]
    assert "whole log" in detail
    assert "entries/?project=" in detail
    assert not AuditEntry.objects.filter(action="audit_log.exported").exists()
