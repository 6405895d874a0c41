"""audit_sign_tree_head, audit_proof, audit_export and audit_public_key: the operator's side of the audit log."""

import base64
import inspect
import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from core.audit import signing
from core.audit import tree as audit_tree
from core.audit.recorder import audit_record, tree_head_sign
from core.crypto.merkle import verify_consistency, verify_inclusion
from core.models import AuditEntry, SignedTreeHead
from tests.artifacts.factories import ProjectFactory
from tools.audit_verify import load_public_key, verify_export

pytestmark = pytest.mark.django_db

# The offline verifier's own file, wherever it lives: auditors run it as a script.
VERIFIER = Path(inspect.getfile(verify_export))


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def some_entries(count: int) -> list[AuditEntry]:
    project = ProjectFactory()
    return [audit_record("project.updated", obj=project, changes={"n": n}) for n in range(count)]


@pytest.mark.parametrize(
    "command", ["audit_sign_tree_head", "audit_proof", "audit_export", "audit_public_key", "audit_verify_bucket"]
)
def test_every_command_explains_itself(command):
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command(command, "--help", stdout=out)


def test_sign_tree_head_prints_the_signed_head(capsys):
    some_entries(3)

    head = json.loads(run("audit_sign_tree_head"))

    stored = SignedTreeHead.objects.get()
    assert head["tree_size"] == stored.tree_size == audit_tree.log_size()
    assert head["root_hash"] == stored.root_hash
    assert head["signature"] == stored.signature


def test_inclusion_proof_verifies(capsys):
    entries = some_entries(19)
    entry = entries[4]

    proof = json.loads(run("audit_proof", "inclusion", str(entry.seq)))

    assert proof["tree_head"]["tree_size"] == proof["tree_size"]
    assert verify_inclusion(
        entry.seq,
        proof["tree_size"],
        bytes(entry.leaf_hash),
        [bytes.fromhex(h) for h in proof["audit_path"]],
        bytes.fromhex(proof["tree_head"]["root_hash"]),
    )


def test_inclusion_proof_at_a_chosen_size():
    entry = some_entries(6)[1]

    proof = json.loads(run("audit_proof", "inclusion", str(entry.seq), "--tree-size", str(entry.seq + 3)))

    assert proof["tree_size"] == entry.seq + 3
    assert proof["tree_head"] is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("inclusion", "999999"), "No audit entry 999999"),
        (("inclusion", "-1"), "No audit entry -1"),
        (("inclusion", "FIRST"), "tree_size"),  # replaced below by the first entry, with a bad size
        (("consistency", "3", "2"), "0 <= first <= second"),
        (("consistency", "0", "999999"), "the log's size"),
    ],
)
def test_bad_proof_requests_say_what_is_wrong(args, says):
    first = some_entries(3)[0]
    if args[1] == "FIRST":
        args = ("inclusion", str(first.seq), "--tree-size", str(first.seq))

    with pytest.raises(CommandError, match=says):
        run("audit_proof", *args)


def test_consistency_proof_verifies():
    some_entries(5)
    first = tree_head_sign()
    some_entries(12)
    second = tree_head_sign()

    proof = json.loads(run("audit_proof", "consistency", str(first.tree_size), str(second.tree_size)))

    assert proof["first_head"]["signature"] == first.signature
    assert verify_consistency(
        first.tree_size,
        second.tree_size,
        bytes.fromhex(proof["first_root"]),
        bytes.fromhex(proof["second_root"]),
        [bytes.fromhex(h) for h in proof["proof"]],
    )


def test_export_writes_a_log_that_verifies_and_records_itself(tmp_path):
    some_entries(25)
    target = tmp_path / "audit.jsonl"

    output = run("audit_export", str(target))

    exported = AuditEntry.objects.get(action="audit_log.exported")
    assert exported.actor_kind == AuditEntry.ActorKind.SYSTEM
    assert exported.actor_label == "command audit_export"
    assert f"Exported {exported.seq + 1} entries" in output
    assert str(target) in output
    key = load_public_key(run("audit_public_key", "--pem"))
    assert verify_export(target, public_keys=[key]).entries == exported.seq + 1


def test_export_to_standard_output(tmp_path):
    some_entries(4)

    lines = run("audit_export", "-")

    target = tmp_path / "audit.jsonl"
    target.write_text(lines, encoding="utf-8")
    assert verify_export(target).entries == audit_tree.log_size()


def test_export_into_a_missing_folder_is_refused_before_recording(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run("audit_export", str(tmp_path / "nowhere" / "audit.jsonl"))
    assert not AuditEntry.objects.filter(action="audit_log.exported").exists()


def test_public_key_as_json_or_pem():
    document = json.loads(run("audit_public_key"))
    pem = run("audit_public_key", "--pem")

    assert document["public_key"] == signing.public_key_base64()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert load_public_key(pem) == base64.b64decode(document["public_key"])


def test_the_standalone_verifier_accepts_the_commands_output(tmp_path):
    some_entries(8)
    export, key = tmp_path / "audit.jsonl", tmp_path / "key.pem"
    run("audit_export", str(export))
    key.write_text(run("audit_public_key", "--pem"))

    result = subprocess.run(
        [sys.executable, str(VERIFIER), str(export), "--public-key", str(key)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
