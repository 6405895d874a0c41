"""The filtered export: the entries a reader may read that match a filter, each with its inclusion proof against
one signed tree head, checked offline by `tools/audit_verify.py`; tampering is caught with the line
it is on, a project's auditor exports only their projects' entries, and the export is itself in the log."""

import base64
import json
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from artifacts.access.roles import Role
from core.audit import signing
from core.audit import tree as audit_tree
from core.audit.recorder import audit_record, entry_bytes, filtered_export_lines, tree_head_document, tree_head_sign
from core.crypto.merkle import FILTERED_EXPORT_FORMAT, canonical_json, leaf_hash
from core.models import AuditEntry
from tests.artifacts.factories import ArtifactFactory, ProjectFactory, grant
from tests.governance.factories import auditor_of
from tools.audit_verify import VerificationFailed, main, verify_filtered_export

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/audit/entries/export/"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def record(action: str, obj, *, at: datetime | None = None, changes: dict | None = None) -> AuditEntry:
    if at is None:
        return audit_record(action, obj=obj, changes=changes)
    with mock.patch("django.utils.timezone.now", return_value=at):
        return audit_record(action, obj=obj, changes=changes)


def lines_of(response) -> list[bytes]:
    assert response.status_code == 200, getattr(response, "content", b"")
    return b"".join(response.streaming_content).splitlines(keepends=True)


def header_of(lines: list[bytes]) -> dict:
    return json.loads(lines[0])


def entry_seqs(lines: list[bytes]) -> list[int]:
    return [json.loads(line)["entry"]["seq"] for line in lines[1:]]


def verify(lines: list[bytes]):
    return verify_filtered_export(lines, signing.public_key_bytes())


def failure(lines: list[bytes]) -> str:
    with pytest.raises(VerificationFailed) as caught:
        verify(lines)
    return str(caught.value)


@pytest.fixture
def churn_log():
    """Two projects' entries interleaved, so a project's entries are scattered over the tree, and a head."""
    churn, fraud = ProjectFactory(slug="churn"), ProjectFactory(slug="fraud")
    mine = []
    for n in range(40):
        mine.append(record("project.updated", churn, changes={"n": n}))
        record("project.updated", fraud, changes={"n": n})
    tree_head_sign()
    return churn, fraud, mine


# What it holds -----------------------------------------------------------------------------------------------


def test_a_filtered_export_verifies_with_the_standalone_verifier(api, churn_log):
    _churn, _fraud, mine = churn_log

    lines = lines_of(api.get(EXPORT, {"project": "churn", "action": "project."}))

    header = header_of(lines)
    assert header["format"] == FILTERED_EXPORT_FORMAT
    assert header["filter"] == {"project": "churn", "action": "project."}
    assert header["entries"] == len(mine) == len(lines) - 1
    assert header["public_key"] == signing.public_key_base64()
    assert entry_seqs(lines) == [entry.seq for entry in mine]
    report = verify(lines)
    assert report.entries == len(mine)
    assert (report.first_seq, report.last_seq) == (mine[0].seq, mine[-1].seq)
    assert report.tree_head == header["tree_head"]
    assert not report.warnings
    assert "40 entries" in report.summary()


def test_each_line_is_the_entry_as_the_whole_log_export_has_it_with_its_proof(api, churn_log):
    _churn, _fraud, mine = churn_log

    lines = lines_of(api.get(EXPORT, {"project": "churn"}))

    size = header_of(lines)["tree_head"]["tree_size"]
    for entry, line in zip(mine, lines[1:], strict=True):
        assert line.endswith(b',"entry":' + entry_bytes(entry) + b"}\n")
        proof = json.loads(line)["inclusion_proof"]
        assert proof == {
            "leaf_index": entry.seq,
            "tree_size": size,
            "audit_path": [digest.hex() for digest in audit_tree.inclusion_proof(entry.seq, size)],
        }


def test_without_a_filter_it_is_every_entry_the_reader_may_read(api_as, churn_log):
    churn, _fraud, mine = churn_log
    person = auditor_of(churn)  # the grant is recorded too, in the project's entries

    lines = lines_of(api_as(person).get(EXPORT))

    in_churn = list(AuditEntry.objects.filter(project_id=churn.pk).order_by("seq").values_list("seq", flat=True))
    assert header_of(lines)["filter"] == {}
    assert entry_seqs(lines) == in_churn == [entry.seq for entry in mine] + [in_churn[-1]]
    assert verify(lines).entries == len(mine) + 1


def test_a_project_auditor_exports_only_their_projects_entries_and_it_verifies(api_as, churn_log):
    churn, _fraud, mine = churn_log
    client = api_as(auditor_of(churn))

    asked_for_theirs = lines_of(client.get(EXPORT, {"project": "fraud"}))
    everything_mine = lines_of(client.get(EXPORT, {"action": "project.updated"}))

    assert entry_seqs(asked_for_theirs) == []
    assert header_of(asked_for_theirs)["entries"] == 0
    assert verify(asked_for_theirs).entries == 0
    assert entry_seqs(everything_mine) == [entry.seq for entry in mine]
    assert verify(everything_mine).entries == len(mine)


def test_someone_who_audits_nothing_is_refused_and_nothing_is_recorded(api_as, churn_log):
    churn, _fraud, _mine = churn_log

    response = api_as(grant(Role.MAINTAINER, on=churn).user).get(EXPORT, {"project": "churn"})

    assert response.status_code == 403
    assert "auditor role" in response.json()["detail"]
    assert not AuditEntry.objects.filter(action="audit_log.exported").exists()


def test_invalid_filters_answer_400_and_nothing_is_recorded(api):
    response = api.get(EXPORT, {"since": "yesterday", "action": "no spaces"})

    assert response.status_code == 400
    assert set(response.json()) >= {"since", "action"}
    assert not AuditEntry.objects.filter(action="audit_log.exported").exists()


def test_the_filter_is_named_as_applied_times_in_utc(api):
    project = ProjectFactory(slug="churn")
    inside = record("project.updated", project, at=T0)
    record("project.updated", project, at=T0.replace(hour=15))

    lines = lines_of(api.get(EXPORT, {"project": "churn", "until": "2026-03-01T14:00:00+02:00", "actor": "7"}))
    assert header_of(lines)["filter"] == {
        "project": "churn",
        "until": "2026-03-01T12:00:00.000000Z",
        "actor": "7",
    }
    lines = lines_of(api.get(EXPORT, {"project": "churn", "until": "2026-03-01T14:00:00+02:00"}))
    assert entry_seqs(lines) == [inside.seq]


# Which head ----------------------------------------------------------------------------------------------------


def test_entries_after_the_head_are_left_out(api):
    project = ProjectFactory()
    before = [record("project.updated", project) for _ in range(5)]

    response = api.get(EXPORT, {"project": project.slug})
    # Recorded after the export's head was chosen, before its lines are read: the head does not cover them.
    for _ in range(5):
        record("project.updated", project)
    lines = lines_of(response)

    assert entry_seqs(lines) == [entry.seq for entry in before]
    assert header_of(lines)["entries"] == len(before)
    assert verify(lines).entries == len(before)


def test_the_service_exports_only_what_an_older_head_covers():
    project = ProjectFactory()
    covered = [record("project.updated", project) for _ in range(7)]
    head = tree_head_sign()
    for _ in range(3):
        record("project.updated", project)

    lines = list(filtered_export_lines(head, AuditEntry.objects.filter(project_id=project.pk), filters={}))

    assert header_of(lines)["tree_head"] == tree_head_document(head)
    assert entry_seqs(lines) == [entry.seq for entry in covered]
    assert verify(lines).entries == len(covered)


# The export is in the log ----------------------------------------------------------------------------------------


def test_the_export_is_itself_recorded_with_its_filter(api, churn_log):
    lines = lines_of(api.get(EXPORT, {"project": "churn"}))

    exported = AuditEntry.objects.get(action="audit_log.exported")
    assert exported.actor_label == api.user.username
    assert json.loads(exported.changes) == {"format": FILTERED_EXPORT_FORMAT, "filter": {"project": "churn"}}
    header = header_of(lines)
    # The head covers the entry that records the export, as the whole-log export's does.
    assert header["tree_head"]["tree_size"] == exported.seq + 1
    assert header["exported_by"] == api.user.username


# Streaming -----------------------------------------------------------------------------------------------------


def test_the_export_streams_a_chunk_at_a_time_with_proofs_read_in_batches(api):
    project = ProjectFactory()
    made = [record("project.updated", project) for _ in range(100)]

    with mock.patch("core.audit.recorder.EXPORT_CHUNK", 7):
        response = api.get(EXPORT, {"project": project.slug})
        assert isinstance(response, StreamingHttpResponse)
        with CaptureQueriesContext(connection) as captured:
            lines = lines_of(response)

    assert entry_seqs(lines) == [entry.seq for entry in made]
    assert verify(lines).entries == len(made)
    # 15 chunks of at most 7 entries, each read in one query with its proofs in at most three more, and one query
    # that finds no more: not three queries for each entry's proof.
    assert len(captured) <= 15 * (1 + 3) + 1
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-entries-')


# Tampering -----------------------------------------------------------------------------------------------------


def exported(api) -> list[bytes]:
    project = ProjectFactory()
    for n in range(20):
        record("project.updated", project, changes={"n": n})
        record("project.updated", ProjectFactory())
    return lines_of(api.get(EXPORT, {"project": project.slug}))


def test_an_edited_entry_is_caught_on_its_line(api):
    lines = exported(api)
    seq = entry_seqs(lines)[4]
    lines[5] = lines[5].replace(b'"n":4', b'"n":5')

    message = failure(lines)

    assert message.startswith(f"Line 6 (seq {seq}): the entry was edited")


def test_an_edited_entry_with_its_leaf_hash_rewritten_is_caught_on_its_line(api):
    lines = exported(api)
    seq = entry_seqs(lines)[2]
    original = json.loads(lines[3])
    body = canonical_json(original["entry"] | {"action": "project.viewed"})
    lines[3] = (
        b'{"leaf_hash":"'
        + leaf_hash(body).hex().encode()
        + b'","inclusion_proof":'
        + canonical_json(original["inclusion_proof"])
        + b',"entry":'
        + body
        + b"}\n"
    )

    assert failure(lines).startswith(f"Line 4 (seq {seq}): the audit path does not lead")


def test_an_altered_proof_hash_is_caught_on_its_line(api):
    lines = exported(api)
    seq = entry_seqs(lines)[7]
    path = json.loads(lines[8])["inclusion_proof"]["audit_path"]
    lines[8] = lines[8].replace(path[1].encode(), ("0" * 64).encode())

    assert failure(lines).startswith(f"Line 9 (seq {seq}): the audit path does not lead")


def test_a_proof_for_another_leaf_is_caught_on_its_line(api):
    lines = exported(api)
    seq = entry_seqs(lines)[0]
    lines[1] = lines[1].replace(f'"leaf_index":{seq},'.encode(), f'"leaf_index":{seq + 1},'.encode())

    assert failure(lines) == (
        f"Line 2 (seq {seq}): the inclusion proof is for leaf {seq + 1}, not for the entry's seq {seq}."
    )


def test_a_forged_head_signature_is_caught_on_line_1(api):
    lines = exported(api)
    header = header_of(lines)
    header["tree_head"]["signature"] = base64.b64encode(b"\x01" * 64).decode()
    lines[0] = json.dumps(header).encode() + b"\n"

    message = failure(lines)

    assert message.startswith("Line 1 (the header):")
    assert "bad signature" in message


def test_a_head_signed_by_another_key_is_not_trusted(api):
    lines = exported(api)

    with pytest.raises(VerificationFailed, match=r"^Line 1 \(the header\): .* not a trusted key"):
        verify_filtered_export(lines, b"\x02" * 32)


def test_a_removed_or_reordered_entry_is_caught(api):
    lines = exported(api)
    seqs = entry_seqs(lines)

    assert failure(lines[:-1]).startswith(f"Line {len(lines) - 1}: the export ends after seq {seqs[-2]}")
    assert "entries were removed" in failure([*lines[:3], *lines[4:]])
    swapped = [lines[0], lines[2], lines[1], *lines[3:]]
    assert failure(swapped) == (
        f"Line 3 (seq {seqs[0]}): entries must be in rising sequence order, but seq {seqs[0]} follows seq {seqs[1]}."
    )


def test_a_line_that_is_not_an_entry_is_caught(api):
    lines = exported(api)

    assert failure([*lines[:2], b'{"note": "hello"}\n', *lines[2:]]).startswith("Line 3 (after seq")
    assert failure([b'{"header": {}}\n', *lines[1:]]).startswith("Line 1 is not the header")
    assert failure([]).startswith("Line 1 is not the header")


def test_without_a_trusted_key_the_headers_key_is_used_with_a_warning(api):
    report = verify_filtered_export(exported(api))

    assert report.entries == 20
    assert any("no --public-key" in warning for warning in report.warnings)


# The command line ----------------------------------------------------------------------------------------------


def test_the_command_line_tells_a_filtered_export_from_the_whole_log(api, tmp_path, capsys):
    lines = exported(api)
    key = tmp_path / "audit-key.pem"
    key.write_text(signing.public_key_pem())
    good, bad = tmp_path / "entries.jsonl", tmp_path / "tampered.jsonl"
    good.write_bytes(b"".join(lines))
    bad.write_bytes(b"".join([*lines[:5], lines[5].replace(b'"n":4', b'"n":9'), *lines[6:]]))

    assert main([str(good), "--public-key", str(key)]) == 0
    assert "OK: 20 entries" in capsys.readouterr().out
    assert main([str(bad), "--public-key", str(key)]) == 1
    assert "FAILED: Line 6" in capsys.readouterr().err
    head = tmp_path / "head.json"
    head.write_text(json.dumps(header_of(lines)["tree_head"]))
    assert main([str(good), "--public-key", str(key), "--tree-head", str(head)]) == 2


def test_an_artifact_auditor_exports_that_artifacts_entries_only(api_as):
    project = ProjectFactory()
    artifact = ArtifactFactory(project=project)
    about_it = record("artifact.updated", artifact)
    record("project.updated", project)
    person = auditor_of(artifact)  # the grant on the artifact is recorded too, about the artifact

    lines = lines_of(api_as(person).get(EXPORT))

    about_artifact = list(AuditEntry.objects.filter(artifact_id=artifact.pk).values_list("seq", flat=True))
    assert entry_seqs(lines) == sorted(about_artifact)
    assert about_it.seq in about_artifact
    assert not AuditEntry.objects.filter(seq__in=entry_seqs(lines), artifact_id__isnull=True).exists()
    assert verify(lines).entries == len(about_artifact)
