"""The client's calls beyond transfers (clients/python/src/provenant_client/registry.py and audit.py) against a real
server on the demo: who am I, lineage, registering and promoting a version through its review, what awaits a
reviewer, and the audit log exported to a file and verified offline, with tampering caught."""

from urllib.parse import urlsplit

import pytest
from provenant_client import Client, NotFound, PermissionDenied
from provenant_client.audit_verify import VerificationFailed

from tests import live_server
from tests.clients.conftest import PROJECT
from tests.clients.relay import Relay


@pytest.fixture(scope="module")
def tokens(demo_server) -> dict[str, str]:
    """Tokens of the demo's reviewer sam, its maintainer mara, and its administrator."""
    env = live_server.environment(demo_server.var_dir, DJANGO_DEBUG="true")
    return {
        user: live_server.manage("issue_token", user, "--name", "registry tests", "--quiet", env=env).strip()
        for user in ("sam", "mara", "admin")
    }


def as_user(demo_server, token: str, tmp_path) -> Client:
    return Client(demo_server.url, token, cache_dir=tmp_path / "cache", backoff=0)


def test_whoami_names_the_user_the_token_and_the_roles(demo_server, tmp_path):
    with as_user(demo_server, demo_server.contributor_token, tmp_path) as dana:
        me = dana.whoami()

    assert (me["username"], me["service_account"], me["superuser"]) == ("dana", False, False)
    assert me["token"]["name"] == "client tests"
    assert {"project": PROJECT, "roles": [{"role": "contributor", "artifact": None, "group": None}]} in me["projects"]


def test_lineage_of_a_reference_shows_the_run_that_made_it(demo_server, tmp_path):
    with as_user(demo_server, demo_server.contributor_token, tmp_path) as dana:
        production = dana.resolve("fraud-scorer@production", project=PROJECT)["artifact_version"]
        by_reference = dana.lineage("fraud-scorer@production", project=PROJECT, direction="upstream")
        by_id = dana.lineage(production["id"], direction="upstream")
        with pytest.raises(ValueError, match="project="):
            dana.lineage("fraud-scorer@production")

    assert by_reference == by_id
    assert by_reference["root"]["id"] == production["id"]
    assert production["run"] in {node["id"] for node in by_reference["nodes"] if node["type"] == "run"}


def test_a_pushed_version_is_registered_promoted_and_approved_then_resolves_by_stage(demo_server, tokens, tmp_path):
    source = tmp_path / "scorer.bin"
    source.write_bytes(b"weights of a model registered from the client\n" * 100)
    with as_user(demo_server, demo_server.contributor_token, tmp_path) as dana:
        pushed = dana.push(source, project=PROJECT, artifact="client-registered")
        registered = dana.register(pushed, model="client-model", project=PROJECT, description="From the client.")
        assert dana.register(pushed, model="client-model", project=PROJECT)["id"] == registered["id"]
        request = dana.request_promotion(registered, stage="staging", justification="Shadow traffic first.")
    with as_user(demo_server, tokens["sam"], tmp_path) as sam:
        assert request["id"] in {waiting["id"] for waiting in sam.awaiting_me(project=PROJECT)}
        decided = sam.approve(request["id"], comment="Looks right.")
        assert request["id"] not in {waiting["id"] for waiting in sam.awaiting_me()}
        staged = sam.resolve("client-model@staging", project=PROJECT)

    assert (registered["model_name"], registered["number"]) == ("client-model", 1)
    assert decided["state"] == "approved"
    assert staged["artifact_version"]["digest"] == pushed.digest


def test_a_model_that_is_not_there_is_not_found(demo_server, tmp_path):
    with as_user(demo_server, demo_server.contributor_token, tmp_path) as dana, pytest.raises(NotFound):
        dana.model(PROJECT, "no-such-model")


def test_the_audit_log_is_exported_to_a_file_and_verifies_offline_and_an_edit_is_caught(demo_server, tokens, tmp_path):
    with as_user(demo_server, tokens["admin"], tmp_path) as admin:
        export = admin.audit_export(tmp_path / "audit.jsonl")
        key = admin.audit_public_key()["pem"]
        report = admin.audit_verify(export, public_key=key)
    assert report.entries > 0
    assert report.warnings == []
    assert not list(tmp_path.glob(".audit.jsonl.*"))  # nothing half written left beside it

    lines = export.read_bytes().splitlines(keepends=True)
    edited = next(i for i, line in enumerate(lines) if line.startswith(b'{"leaf_hash"') and b'"dana"' in line)
    lines[edited] = lines[edited].replace(b'"dana"', b'"mallory"', 1)
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(b"".join(lines))
    with pytest.raises(VerificationFailed, match=r"^seq \d+"):
        admin.audit_verify(tampered, public_key=key)  # offline: the closed client is not needed


def test_an_export_cut_off_midway_starts_again_and_the_file_is_whole(demo_server, tokens, tmp_path):
    """A web process that dies mid-export costs a retry, not the file: even where the answer has no length or chunks
    to show it was cut (this server streams until it closes the connection), the cut line does."""
    relay = Relay(urlsplit(demo_server.url).port)
    relay.cut_after = lambda request: 4000 if relay.cuts == 0 and "/audit/export/" in request.path else None
    try:
        with Client(relay.url, tokens["admin"], cache_dir=tmp_path / "cache", backoff=0) as admin:
            export = admin.audit_export(tmp_path / "audit.jsonl")
            report = admin.audit_verify(export, public_key=admin.audit_public_key()["pem"])
    finally:
        relay.close()
    assert relay.cuts == 1
    assert [request.path.split("?")[0] for request in relay.crossed].count("/api/v1/audit/export/") == 2
    assert report.entries > 0
    assert not list(tmp_path.glob(".audit.jsonl.*"))


def test_a_filtered_export_holds_the_entries_of_a_project_with_their_proofs(demo_server, tokens, tmp_path):
    with as_user(demo_server, tokens["admin"], tmp_path) as admin:
        export = admin.audit_export(tmp_path / "fraud.jsonl", project=PROJECT)
        report = admin.audit_verify(export, public_key=admin.audit_public_key()["public_key"])
    assert report.filter == {"project": PROJECT}
    assert report.entries > 0


def test_the_whole_log_is_not_exported_to_a_contributor_and_no_file_is_left(demo_server, tmp_path):
    with (
        as_user(demo_server, demo_server.contributor_token, tmp_path) as dana,
        pytest.raises(PermissionDenied, match=r"core\.view_auditentry"),
    ):
        dana.audit_export(tmp_path / "audit.jsonl")
    assert list(tmp_path.glob("*.jsonl*")) == []
