"""The offline verifier (the client's provenant_client/audit_verify.py, behind tools/audit_verify.py) on real
exports: it passes an untouched one, and names the first bad sequence number of an edited, deleted, reordered,
inserted or truncated log. It runs as an auditor runs it: the client's package (whose merkle.py is the server's
core/crypto/merkle.py) copied alone into an empty folder, in a Python where importing Django fails."""

import base64
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from core.audit import signing
from core.audit.recorder import (
    AuditObject,
    audit_record,
    export_lines,
    export_tree_head,
    tree_head_document,
    tree_head_sign,
)
from core.crypto.merkle import EXPORT_FORMAT, Frontier, canonical_json, key_id, leaf_hash, tree_head_message
from tests.standalone import ROOT, copied_alone, module_without_django, without_django
from tools.audit_verify import VerificationFailed, verify_export

#: What an auditor installs: the client's package, nothing else of the checkout (merkle.py is a link to the server's
#: rules, copied as the file it names, as a wheel holds it).
CLIENT_PACKAGE = Path("clients/python/src")
STANDALONE_FILES = tuple(
    str(path.relative_to(ROOT)) for path in sorted((ROOT / CLIENT_PACKAGE / "provenant_client").glob("*.py"))
)
# Sizes at which a tree head is signed while the log grows; the export adds one at its end (ENTRIES).
SIGNED_AT_SIZES = (10, 20, 33)
ENTRIES = 40


@dataclass
class Export:
    folder: Path
    lines: list[bytes]
    public_key: Path
    latest_head: Path

    def entry_at(self, seq: int) -> int:
        """The index in `lines` of the entry with `seq` (in an untouched export)."""
        return next(i for i, line in enumerate(self.lines) if line.startswith(b'{"leaf_hash":')) + seq

    def write(self, lines: list[bytes], name: str = "export.jsonl") -> Path:
        path = self.folder / name
        path.write_bytes(b"".join(lines))
        return path


@dataclass
class Run:
    status: int
    out: str
    err: str


def run_verifier(folder: Path, export: Path, *args: str | Path) -> Run:
    """`python -m provenant_client.audit_verify EXPORT ARGS...` with the client's package alone in `folder`, and
    Django unimportable."""
    alone = copied_alone(folder / "auditor", *STANDALONE_FILES)
    completed = subprocess.run(
        module_without_django(alone / CLIENT_PACKAGE, "provenant_client.audit_verify", export, *args),
        cwd=alone,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Run(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture
def audit_key(settings, tmp_path):
    settings.PROVENANT_AUDIT_SIGNING_KEY = ""
    settings.PROVENANT_AUDIT_SIGNING_KEY_FILE = str(tmp_path / "audit-signing-key.pem")
    signing.signing_key.cache_clear()
    yield
    signing.signing_key.cache_clear()


@pytest.fixture
def export(db, audit_key, tmp_path) -> Export:
    """A real export of 40 entries with tree heads signed at 10, 20 (twice), 33 and 40."""
    for number in range(ENTRIES):
        audit_record("project.updated", obj=AuditObject(type="test", id=str(number), label=f"object {number}"))
        if number + 1 in SIGNED_AT_SIZES:
            tree_head_sign()
        if number + 1 == 20:
            tree_head_sign()  # a second head of one size, with the same root: not a fork
    head = export_tree_head()
    assert head.tree_size == ENTRIES
    public_key = tmp_path / "audit-key.pub"
    public_key.write_text(signing.public_key_pem())
    latest_head = tmp_path / "latest-tree-head.json"
    latest_head.write_bytes(canonical_json(tree_head_document(head)))
    return Export(tmp_path, list(export_lines(head)), public_key, latest_head)


def entry_of(line: bytes) -> bytes:
    return re.match(rb'\{"leaf_hash":"[0-9a-f]{64}","entry":(.*)\}\n\Z', line).group(1)


def line_of(entry: bytes, leaf: bytes | None = None) -> bytes:
    return b'{"leaf_hash":"' + (leaf or leaf_hash(entry)).hex().encode() + b'","entry":' + entry + b"}\n"


def renumbered(line: bytes, seq: int) -> bytes:
    """The line with its entry's seq changed and its recorded leaf hash left as it was."""
    return re.sub(rb',"seq":\d+,', b',"seq":%d,' % seq, line)


def assert_fails_at(run: Run, seq: int, *words: str) -> None:
    assert run.status == 1, run
    assert run.err.startswith(f"FAILED: seq {seq}: "), run.err
    for word in words:
        assert word in run.err, run.err


class TestUntouched:
    def test_an_untouched_export_verifies(self, export):
        run = run_verifier(export.folder, export.write(export.lines), "--public-key", export.public_key)
        assert run.status == 0, run
        assert run.out.startswith(f"OK: {ENTRIES} entries (seq 0 to {ENTRIES - 1}) verified against 4 signed")
        assert "warning" not in run.out
        assert run.err == ""

    def test_from_the_checkout_as_a_script_and_as_a_module(self, export):
        """As the README runs it, `python tools/audit_verify.py` from the checkout's root (where Django is there but
        not imported), and as `python -m tools.audit_verify`."""
        path = export.write(export.lines)
        for command in (
            without_django(ROOT / "tools" / "audit_verify.py", path, "--public-key", export.public_key),
            [sys.executable, "-m", "tools.audit_verify", str(path), "--public-key", str(export.public_key)],
        ):
            completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
            assert completed.returncode == 0, completed
            assert completed.stdout.startswith(f"OK: {ENTRIES} entries"), completed

    def test_with_the_latest_tree_head_fetched_separately(self, export):
        path = export.write(export.lines)
        run = run_verifier(export.folder, path, "--public-key", export.public_key, "--tree-head", export.latest_head)
        assert run.status == 0, run

    def test_without_a_public_key_it_trusts_the_export_and_says_so(self, export):
        run = run_verifier(export.folder, export.write(export.lines))
        assert run.status == 0, run
        assert "warning: no --public-key was given" in run.out

    def test_an_empty_log(self, db, audit_key, tmp_path):
        head = tree_head_sign()
        assert head.tree_size == 0
        path = tmp_path / "empty.jsonl"
        path.write_bytes(b"".join(export_lines(head)))
        key = tmp_path / "key.pub"
        key.write_text(signing.public_key_pem())
        run = run_verifier(tmp_path, path, "--public-key", key)
        assert run.status == 0, run
        assert run.out.startswith("OK: 0 entries verified against 1 signed tree head(s)")

    def test_an_altered_recorded_leaf_hash_alone_verifies_with_a_warning(self, export):
        lines = list(export.lines)
        at = export.entry_at(5)
        lines[at] = line_of(entry_of(lines[at]), leaf=leaf_hash(b"something else"))
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert run.status == 0, run
        assert "warning: seq 5: the recorded leaf hash was altered, but the entry itself verifies." in run.out


class TestTheFiveTamperings:
    def test_edited_entry(self, export):
        lines = list(export.lines)
        at = export.entry_at(25)
        lines[at] = lines[at].replace(b'"label":"object 25"', b'"label":"object 52"')
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert_fails_at(run, 25, "edited", "tree head of size 33")

    def test_deleted_entry(self, export):
        lines = list(export.lines)
        del lines[export.entry_at(25)]
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert_fails_at(run, 25, "missing (deleted)", "goes on with seq 26")

    def test_reordered_entry(self, export):
        lines = list(export.lines)
        at = export.entry_at(25)
        lines[at], lines[at + 1] = lines[at + 1], lines[at]
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert_fails_at(run, 25, "out of order", "seq 26 stands where seq 25 belongs")

    def test_inserted_entry(self, export):
        """A fabricated entry, hashed correctly, numbered as the entry it is slipped in before."""
        lines = list(export.lines)
        at = export.entry_at(25)
        fabricated = entry_of(lines[at]).replace(b'"label":"object 25"', b'"label":"never happened"')
        lines.insert(at, line_of(fabricated))
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert_fails_at(run, 25, "a second entry numbered 25", "inserted")

    def test_truncated_tail(self, export):
        """The last entries and the tree heads that covered them cut off, and the header made to agree: only the
        latest tree head, fetched separately, catches it."""
        cut = 35
        kept = export.lines[1 : export.entry_at(cut)]
        header = export.lines[0].replace(b'"tree_size":40', b'"tree_size":%d' % cut)
        lines = [
            header,
            *(line for line in kept if not line.startswith(b'{"tree_head"') or b'"tree_size":40}' not in line),
        ]
        path = export.write(lines)
        assert run_verifier(export.folder, path, "--public-key", export.public_key).status == 0  # alone, it passes
        run = run_verifier(export.folder, path, "--public-key", export.public_key, "--tree-head", export.latest_head)
        assert_fails_at(run, cut, f"ends after {cut} entries", "covers 40", "truncated")


class TestTamperingThatHidesItsTracks:
    """The same acts with the entries after them renumbered, so the numbers run on without a break."""

    def test_deleted_entry_and_the_rest_renumbered(self, export):
        lines = list(export.lines)
        at = export.entry_at(25)
        del lines[at]
        for seq in range(25, ENTRIES - 1):
            lines[at + seq - 25] = renumbered(lines[at + seq - 25], seq)
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert_fails_at(run, 25, "missing", "renumbered", "seq 26 now stands as seq 25")

    def test_inserted_entry_and_the_rest_renumbered(self, export):
        lines = list(export.lines)
        at = export.entry_at(25)
        for seq in range(25, ENTRIES):
            lines[at + seq - 25] = renumbered(lines[at + seq - 25], seq + 1)
        fabricated = entry_of(export.lines[at]).replace(b'"label":"object 25"', b'"label":"never happened"')
        lines.insert(at, line_of(fabricated))
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert_fails_at(run, 25, "now stands as seq 26", "1 entry was inserted")

    def test_reordered_entries_renumbered(self, export):
        lines = list(export.lines)
        at = export.entry_at(25)
        lines[at], lines[at + 1] = renumbered(lines[at + 1], 25), renumbered(lines[at], 26)
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert_fails_at(run, 25, "seq 26 now stands as seq 25")

    def test_entry_inserted_just_before_a_tree_head(self, export):
        """The fabricated entry completes the tree head of size 33; the duplicate number shows only after it."""
        lines = list(export.lines)
        at = export.entry_at(32)
        fabricated = entry_of(lines[at]).replace(b'"label":"object 32"', b'"label":"never happened"')
        lines.insert(at, line_of(fabricated))
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert_fails_at(run, 32, "a second entry numbered 32")

    def test_edited_entry_with_its_leaf_hash_rewritten(self, export):
        """Nothing in the export says which entry changed: the message names where the unverified range starts."""
        lines = list(export.lines)
        at = export.entry_at(25)
        lines[at] = line_of(entry_of(lines[at]).replace(b'"label":"object 25"', b'"label":"object 52"'))
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert_fails_at(run, 20, "entries from seq 20 to seq 32 do not match the tree head of size 33")

    def test_an_altered_leaf_hash_does_not_hide_a_later_edit(self, export):
        lines = list(export.lines)
        at = export.entry_at(5)
        lines[at] = line_of(entry_of(lines[at]), leaf=leaf_hash(b"something else"))
        at = export.entry_at(25)
        lines[at] = lines[at].replace(b'"label":"object 25"', b'"label":"object 52"')
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert_fails_at(run, 25, "edited")

    def test_truncated_tail_with_the_header_left_alone(self, export):
        kept = export.lines[1 : export.entry_at(35)]
        lines = [export.lines[0], *(line for line in kept if b'"tree_size":40}' not in line)]
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert_fails_at(run, 35, "its header says it holds 40", "truncated")


class TestTreeHeadsAndLines:
    def test_bad_signature(self, export):
        lines = list(export.lines)
        at = next(i for i, line in enumerate(lines) if b'"tree_size":20}' in line)
        head = json.loads(lines[at])
        head["tree_head"]["signed_at"] = head["tree_head"]["signed_at"].replace("Z", "1Z")
        lines[at] = canonical_json(head) + b"\n"
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert run.status == 1, run
        assert "The tree head of size 20" in run.err
        assert "has a bad signature" in run.err

    def test_untrusted_key(self, export, tmp_path):
        other = tmp_path / "other.pub"
        other.write_bytes(
            Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        run = run_verifier(export.folder, export.write(export.lines), "--public-key", other)
        assert run.status == 1, run
        assert f"signed with key {signing.signing_key_id()}, which is not a trusted key" in run.err

    def test_forked_tree_head(self, export):
        """Two validly signed heads of one size with different roots: the server showed two different logs."""
        signed_at = "2026-01-01T00:00:00.000000Z"
        root = leaf_hash(b"another history").hex()
        message = tree_head_message(tree_size=20, root_hash=root, signed_at=signed_at, key=signing.signing_key_id())
        fork = {
            "tree_size": 20,
            "root_hash": root,
            "signed_at": signed_at,
            "key_id": signing.signing_key_id(),
            "public_key": signing.public_key_base64(),
            "signature": signing.sign(message),
        }
        lines = [export.lines[0], canonical_json({"tree_head": fork}) + b"\n", *export.lines[1:]]
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert run.status == 1, run
        assert "Two validly signed tree heads of size 20 have different roots" in run.err
        assert "the log forked" in run.err

    def test_a_tree_head_missing_a_field(self, export):
        lines = list(export.lines)
        at = next(i for i, line in enumerate(lines) if b'"tree_size":20}' in line)
        head = json.loads(lines[at])
        del head["tree_head"]["signed_at"]
        lines[at] = canonical_json(head) + b"\n"
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert run.status == 1, run
        assert "A tree head is malformed or is missing a field" in run.err

    def test_a_line_that_is_not_json(self, export):
        lines = list(export.lines)
        lines.insert(export.entry_at(26), b"this is not JSON\n")
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert_fails_at(run, 26, "(after seq 25) is not JSON")

    def test_an_entry_not_in_the_exact_byte_form(self, export):
        lines = list(export.lines)
        at = export.entry_at(25)
        lines[at] = lines[at].replace(b'","entry":', b'", "entry":')
        run = run_verifier(export.folder, export.write(lines), "--public-key", export.public_key)
        assert_fails_at(run, 25, "exact byte form")

    def test_usage_errors_exit_2(self, export, tmp_path):
        assert run_verifier(export.folder, tmp_path / "absent.jsonl").status == 2
        bad_key = tmp_path / "bad.pub"
        bad_key.write_text("not a key")
        run = run_verifier(export.folder, export.write(export.lines), "--public-key", bad_key)
        assert run.status == 2, run
        assert run.err.startswith("error: ")
        not_a_head = tmp_path / "list.json"
        not_a_head.write_text("[]")
        run = run_verifier(export.folder, export.write(export.lines), "--tree-head", not_a_head)
        assert run.status == 2, run
        assert "does not hold a JSON object" in run.err

    def test_the_harness_really_keeps_django_and_the_server_out(self, tmp_path):
        """The runs above would fail had the verifier imported Django, or anything of the server."""
        alone = copied_alone(tmp_path / "auditor", *STANDALONE_FILES)
        assert sorted(str(path.relative_to(alone)) for path in alone.rglob("*") if path.is_file()) == sorted(
            STANDALONE_FILES
        )
        script = alone / "reaches_for_the_server.py"
        for statement, error in (
            ("import django", "import of django halted"),
            ("import core.audit.tree", "No module named 'core'"),
        ):
            # The path the tool sets up, and the import it makes, work; the server's modules are not there.
            script.write_text(
                f"import sys\nsys.path.insert(0, {str(alone / CLIENT_PACKAGE)!r})\nimport provenant_client.merkle\n"
                f"{statement}\n"
            )
            completed = subprocess.run(without_django(script), cwd=alone, capture_output=True, text=True, check=False)
            assert completed.returncode == 1, completed
            assert f"ModuleNotFoundError: {error}" in completed.stderr, completed.stderr


def test_in_process_verification_names_the_same_seq(export):
    """Called in process, as the export tests call it, the verifier raises with the same message."""
    lines = list(export.lines)
    del lines[export.entry_at(7)]
    with pytest.raises(VerificationFailed, match=r"^seq 7: the entry is missing"):
        verify_export(export.write(lines), [signing.public_key_bytes()])
    report = verify_export(export.write(export.lines), [signing.public_key_bytes()])
    assert report.entries == ENTRIES
    assert [head["tree_size"] for head in report.tree_heads] == [10, 20, 33, 40]


# Any one tampering, anywhere: a property test on synthetic exports, in process -----------------------------------

SYNTHETIC_KEY = Ed25519PrivateKey.generate()
SYNTHETIC_PUBLIC = SYNTHETIC_KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def synthetic_export(count: int, head_sizes: set[int]) -> tuple[list[bytes], list[dict]]:
    """Lines of an export of `count` entries (in the format export_lines writes) with heads at `head_sizes`."""
    kid = key_id(SYNTHETIC_PUBLIC)
    frontier, heads, entries = Frontier(), [], []
    for seq in range(count):
        document = {
            "seq": seq,
            "time": "2026-11-22T12:00:00.000000Z",
            "actor": {"kind": "system", "user_id": None, "label": "task x", "token_id": None},
            "action": "project.updated",
            "object": {"type": "test", "id": str(seq), "label": f"object {seq}"},
            "project": {"id": None, "label": ""},
            "artifact_id": None,
            "request": {"id": "", "ip": "", "user_agent": ""},
            "changes": {},
        }
        entries.append(line_of(canonical_json(document)))
        frontier.append(leaf_hash(canonical_json(document)))
        if frontier.size in head_sizes:
            root, signed_at = frontier.root().hex(), f"2026-11-22T12:00:{frontier.size % 60:02d}.000000Z"
            message = tree_head_message(tree_size=frontier.size, root_hash=root, signed_at=signed_at, key=kid)
            heads.append(
                {
                    "tree_size": frontier.size,
                    "root_hash": root,
                    "signed_at": signed_at,
                    "key_id": kid,
                    "public_key": "",
                    "signature": base64.b64encode(SYNTHETIC_KEY.sign(message)).decode(),
                }
            )
    header = {"format": EXPORT_FORMAT, "tree_size": count, "exported_at": "", "public_keys": {}}
    lines = [canonical_json({"header": header}) + b"\n"]
    lines += [canonical_json({"tree_head": head}) + b"\n" for head in heads]
    return lines + entries, heads


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    count=st.integers(min_value=2, max_value=80),
    tampering=st.sampled_from(["edit", "delete", "swap", "insert", "truncate"]),
)
def test_any_single_tampering_is_named_by_its_first_bad_seq(tmp_path_factory, data, count, tampering):
    head_sizes = {count, *data.draw(st.sets(st.integers(min_value=1, max_value=count), max_size=6))}
    lines, heads = synthetic_export(count, head_sizes)
    first_entry = 1 + len(heads)
    seq = data.draw(st.integers(min_value=0, max_value=count - 2 if tampering == "swap" else count - 1))
    at = first_entry + seq
    extra = []
    if tampering == "edit":
        lines[at] = lines[at].replace(b'"label":"object %d"' % seq, b'"label":"edited"')
    elif tampering == "delete":
        del lines[at]
    elif tampering == "swap":
        lines[at], lines[at + 1] = lines[at + 1], lines[at]
    elif tampering == "insert":
        fabricated = entry_of(lines[at]).replace(b'"label":"object %d"' % seq, b'"label":"fabricated"')
        lines.insert(at + data.draw(st.integers(min_value=0, max_value=1)), line_of(fabricated))
    else:  # the tail cut off with the heads that cover it and the header made to agree; the latest head fetched apart
        extra = [heads[-1]]
        kept = [
            line
            for line in lines[1:at]
            if not line.startswith(b'{"tree_head"') or json.loads(line)["tree_head"]["tree_size"] <= seq
        ]
        lines = [lines[0].replace(b'"tree_size":%d' % count, b'"tree_size":%d' % seq), *kept]
    path = tmp_path_factory.mktemp("export") / "export.jsonl"
    path.write_bytes(b"".join(lines))
    with pytest.raises(VerificationFailed) as failure:
        verify_export(path, [SYNTHETIC_PUBLIC], extra)
    assert str(failure.value).startswith(f"seq {seq}: "), (tampering, str(failure.value))
