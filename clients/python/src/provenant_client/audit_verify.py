#!/usr/bin/env python3
"""Check a Provenant audit-log export offline, without trusting the server that produced it.

Auditors install the client with its `audit` extra (`pip install 'provenant-client[audit]'`: `cryptography`, for
Ed25519) and run, with Python 3.9 or later and nothing of the server:

    provenant audit verify export.jsonl --public-key audit-key.pem [--tree-head sth.json ...]

(or `python -m provenant_client.audit_verify ...`; from a checkout of the server, `python tools/audit_verify.py`
runs this same module). The hashing and signing rules come from `provenant_client.merkle`, which is the server's
own `core/crypto/merkle.py` shipped in the client (one file, linked, never a copy), so the server and the auditor
cannot disagree on them.

It recomputes the Merkle tree of RFC 6962 / RFC 9162 over the exported entries (leaf = SHA-256(0x00 || entry),
node = SHA-256(0x01 || left || right)) and checks it against every signed tree head it is given: those in the
export and those fetched separately (from the bucket where the server also writes them, under Object Lock). An
edited, deleted, reordered or inserted entry and a truncated tail are each reported with the first bad sequence
number; the exit status is 0 when the log verifies, 1 when it does not, and 2 when it could not be checked (a file
missing or unreadable, a key not understood).

Take the public key from a source other than the export (the README says where): an export can carry a key of its
own making. And fetch the latest tree head yourself: a log cut short together with its last tree heads can only
be caught by a tree head the cutter could not withhold.

It also checks a filtered export (the entries one auditor may read that match a filter, as the portal's audit
explorer and GET /api/v1/audit/entries/export/?<filters> give them), which it recognises by its first line:

    {"format": "provenant-audit-filtered-export/1", "tree_head": <signed tree head>, "public_key": "<base64>",
     "filter": {<the filter applied, e.g. "project": "churn">}, "entries": <how many matched>, ...}

then, in sequence order, one line per matching entry the head covers (seq < tree_size):

    {"leaf_hash":"<hex>","inclusion_proof":{"audit_path":["<hex>", ...],"leaf_index":<seq>,"tree_size":<size>},
     "entry":<the entry's exact bytes, as in the whole-log export>}

Each entry is hashed as it stands and its audit path must lead from that leaf, at index seq, to the root the head
signs (RFC 9162, 2.1.3.2); the head's signature, the order of the entries and their number against the header's
are checked too. A failure names the line and the sequence number. What a filtered export cannot show is that no
matching entry was left out: the server chose them. For completeness, verify the whole-log export.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from provenant_client.merkle import (
    EMPTY_ROOT,
    EXPORT_FORMAT,
    FILTERED_EXPORT_FORMAT,
    Frontier,
    key_id,
    leaf_hash,
    tree_head_signature_ok,
    verify_inclusion,
)

# An entry line is exactly {"leaf_hash":"<64 hex>","entry":<canonical entry>}: the entry's bytes are hashed as
# they stand, so nothing is re-serialised, and any change to them, even of white space, is a change.
ENTRY_LINE = re.compile(rb'\{"leaf_hash":"([0-9a-f]{64})","entry":(\{.*\})\}\r?\n?\Z', re.DOTALL)
# In a canonical entry the keys are sorted, so the top-level "seq" and "time" are always its last two.
ENTRY_TAIL = re.compile(rb',"seq":(0|[1-9][0-9]*),"time":"[^"]*"\}\Z')
# A filtered export's entry line puts the proof between the two: a proof holds no braces, and the entry, last, is
# again taken as the exact bytes that were hashed.
PROVEN_ENTRY_LINE = re.compile(
    rb'\{"leaf_hash":"([0-9a-f]{64})","inclusion_proof":(\{[^{}]*\}),"entry":(\{.*\})\}\r?\n?\Z', re.DOTALL
)
HEX_HASH = re.compile(r"[0-9a-f]{64}\Z")


# Reading the inputs ------------------------------------------------------------------------------------------


def load_public_key(text: str) -> bytes:
    """A public key as the server publishes it: a PEM block, or the 32 raw bytes in base64."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("The PEM file does not hold an Ed25519 public key.")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError("An Ed25519 public key is 32 bytes.")
    return raw


# Checking an export ------------------------------------------------------------------------------------------

ENTRY_PREFIX = b'{"leaf_hash":'
HEAD_TEXT_FIELDS = ("root_hash", "signed_at", "key_id", "signature")


class VerificationFailed(Exception):
    """The log does not verify; the message says where and why."""


@dataclass
class Report:
    entries: int = 0
    tree_heads: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        latest = self.tree_heads[-1]
        span = f" (seq 0 to {self.entries - 1})" if self.entries else ""
        lines = [
            f"OK: {self.entries} entries{span} verified against {len(self.tree_heads)} signed tree head(s); "
            f"the latest covers {latest['tree_size']} entries and was signed at {latest['signed_at']}."
        ]
        return "\n".join(lines + [f"warning: {warning}" for warning in self.warnings])


def _entry_seq(line: bytes) -> int | None:
    """An entry line's sequence number, or None when the line is not an entry in the exact byte form."""
    match = ENTRY_LINE.match(line) if line.startswith(ENTRY_PREFIX) else None
    tail = ENTRY_TAIL.search(match.group(2)) if match else None
    return int(tail.group(1)) if tail else None


def _tree_heads(lines: Iterable[bytes]) -> tuple[dict | None, list[dict]]:
    """First pass: the export's header and the tree heads it carries, wherever they stand in the file."""
    header, heads, entries = None, [], 0
    for number, line in enumerate(lines, 1):
        if line.startswith(ENTRY_PREFIX):
            entries += 1
            continue
        # Name the sequence number the line stands at, so a line damaged among the entries is easy to find.
        where = f"seq {entries}: line {number} (after seq {entries - 1})" if entries else f"Line {number}"
        try:
            record = json.loads(line)
        except ValueError:
            raise VerificationFailed(f"{where} is not JSON.") from None
        if not isinstance(record, dict):
            raise VerificationFailed(f"{where} is not a JSON object.")
        if "header" in record and header is None and number == 1:
            header = record["header"]
        elif "tree_head" in record:
            heads.append(record["tree_head"])
        elif "leaf_hash" in record or "entry" in record:
            raise VerificationFailed(f"{where} is an entry that is not in the export's exact byte form.")
        else:
            raise VerificationFailed(f"{where} is neither a header, a tree head nor an entry.")
    return header, heads


def _checked_heads(heads: list[dict], keys: dict[str, bytes]) -> list[dict]:
    """Every tree head's signature checked; one root per size (two that disagree are themselves proof of a fork)."""
    by_size: dict[int, dict] = {}
    for head in heads:
        try:
            size = head["tree_size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise TypeError
            if not all(isinstance(head[name], str) for name in HEAD_TEXT_FIELDS):
                raise TypeError
        except (KeyError, TypeError):
            raise VerificationFailed(f"A tree head is malformed or is missing a field: {head!r}.") from None
        key, root = keys.get(head["key_id"]), head["root_hash"]
        if key is None:
            raise VerificationFailed(
                f"The tree head of size {size} is signed with key {head['key_id']}, which is not a trusted key."
            )
        if not tree_head_signature_ok(head, key):
            raise VerificationFailed(
                f"The tree head of size {size} (signed at {head['signed_at']}) has a bad signature."
            )
        if size == 0 and root != EMPTY_ROOT.hex():
            raise VerificationFailed("The tree head of size 0 does not have the empty tree's root.")
        if size in by_size and by_size[size]["root_hash"] != root:
            raise VerificationFailed(
                f"Two validly signed tree heads of size {size} have different roots ({by_size[size]['root_hash']} "
                f"signed at {by_size[size]['signed_at']}, {root} signed at {head['signed_at']}): the log forked."
            )
        by_size[size] = head
    return [by_size[size] for size in sorted(by_size)]


def _sequence_break(expected: int, found: int, line_number: int, rest: Iterator[bytes]) -> str:
    """Say what happened where the numbers stop following on: an entry came twice (inserted), came later
    (reordered) or never (deleted)."""
    if found < expected:
        return (
            f"seq {found}: a second entry numbered {found} stands on line {line_number}, after seq {expected - 1}: "
            "an entry was inserted (or moved)."
        )
    for line in rest:
        if _entry_seq(line) == expected:
            return f"seq {expected}: entries are out of order (seq {found} stands where seq {expected} belongs)."
    return f"seq {expected}: the entry is missing (deleted); the export goes on with seq {found}."


def _first_sequence_break(expected: int, line_number: int, rest: Iterator[bytes]) -> str | None:
    """The first break in the numbering among the lines after `line_number`, if it is about a seq below
    `expected` (a tree head of that size failed: an entry inserted just before it shows up only after it)."""
    limit = expected
    for number, line in enumerate(rest, line_number + 1):
        seq = _entry_seq(line)
        if seq is None:
            continue
        if seq != expected:
            return _sequence_break(expected, seq, number, rest) if min(seq, expected) < limit else None
        expected += 1
    return None


def _renumbered_from(seq: int, entry: bytes, recorded: bytes, reach: int = 64) -> int | None:
    """The sequence number the entry at `seq` was recorded with, if its content is intact but renumbered (as
    when entries are deleted, inserted or moved and the rest renumbered to hide the gap)."""
    tail = ENTRY_TAIL.search(entry)
    if tail is None:
        return None
    before, after = entry[: tail.start(1)], entry[tail.end(1) :]
    for shift in range(1, reach + 1):
        for original in (seq + shift, seq - shift):
            if original >= 0 and leaf_hash(before + str(original).encode() + after) == recorded:
                return original
    return None


@dataclass
class _Mismatch:
    """The first entry since the last verified tree head whose content does not hash to its recorded leaf hash."""

    seq: int
    entry: bytes
    recorded_leaf: bytes

    def note(self) -> str:
        return f"seq {self.seq}: the entry's content does not hash to its recorded leaf hash"


def _head_mismatch(
    head: dict,
    last_verified: int,
    mismatch: _Mismatch | None,
    recorded: Frontier | None,
    line_number: int,
    rest: Iterator[bytes],
) -> str:
    """Why the entries read so far do not match `head`, naming the first bad sequence number as well as the
    export allows."""
    size = head["tree_size"]
    covers = f"the tree head of size {size} (signed at {head['signed_at']})"
    if mismatch is not None:
        if recorded is not None and recorded.root().hex() == head["root_hash"]:
            return (
                f"seq {mismatch.seq}: the entry was edited; its content no longer hashes to the leaf that {covers} "
                "covers."
            )
        original = _renumbered_from(mismatch.seq, mismatch.entry, mismatch.recorded_leaf)
        if original is not None and original > mismatch.seq:
            return (
                f"seq {mismatch.seq}: the entry recorded as seq {mismatch.seq} is missing (deleted or moved), and the "
                f"entries after it were renumbered to close the gap: seq {original} now stands as seq {mismatch.seq}."
            )
        if original is not None:
            return (
                f"seq {original}: the entry recorded as seq {original} now stands as seq {mismatch.seq}: "
                f"{mismatch.seq - original} entr{'y was' if mismatch.seq - original == 1 else 'ies were'} inserted "
                f"(or moved) from seq {original} on, and the entries after renumbered."
            )
        return f"{mismatch.note()}, and the entries from seq {last_verified} to seq {size - 1} do not match {covers}."
    numbering = _first_sequence_break(size, line_number, rest)
    if numbering is not None:
        return numbering
    return (
        f"seq {last_verified}: the entries from seq {last_verified} to seq {size - 1} do not match {covers}: one "
        "of them was edited, deleted, inserted or moved, with its recorded leaf hash rewritten to hide it; the "
        f"entries before seq {last_verified} verified."
    )


def verify_export(path: Path, public_keys: list[bytes] | None = None, extra_heads: Iterable[dict] = ()) -> Report:
    """Check the export at `path`; raise VerificationFailed naming the first bad sequence number."""
    report = Report()
    with path.open("rb") as handle:
        header, heads = _tree_heads(handle)
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise VerificationFailed(f"Line 1 is not the header of a {EXPORT_FORMAT} export.")
    if public_keys:
        keys = {key_id(key): key for key in public_keys}
    else:
        try:
            keys = {name: base64.b64decode(value) for name, value in header.get("public_keys", {}).items()}
        except (AttributeError, TypeError, ValueError):
            raise VerificationFailed("The export's header names its public keys in a form not understood.") from None
        report.warnings.append(
            "no --public-key was given, so the keys named in the export itself were trusted; "
            "pass the key published by your Provenant server to rule out a forged export."
        )
    heads = _checked_heads([*heads, *extra_heads], keys)
    if not heads:
        raise VerificationFailed("No signed tree head to check the entries against.")

    # The heads still to reach, smallest first; one of size 0 covers nothing (its root was checked above).
    pending = [head for head in heads if head["tree_size"] > 0]
    pending.reverse()
    next_size = pending[-1]["tree_size"] if pending else -1
    actual = Frontier()  # the tree of the entries as they stand
    recorded: Frontier | None = None  # the tree of the leaf hashes they claim, once the two part ways
    mismatch: _Mismatch | None = None  # the first such parting since the last verified head
    altered_leaf_hashes: list[int] = []
    last_verified = 0
    unhex = binascii.a2b_hex
    with path.open("rb") as handle:
        lines = iter(handle)
        for number, line in enumerate(lines, 1):
            if not line.startswith(ENTRY_PREFIX):
                continue
            match = ENTRY_LINE.match(line)
            tail = ENTRY_TAIL.search(match.group(2)) if match else None
            if tail is None:
                raise VerificationFailed(
                    f"seq {actual.size}: line {number} is not an entry in the export's exact byte form."
                )
            seq = int(tail.group(1))
            if seq != actual.size:
                problem = _sequence_break(actual.size, seq, number, lines)
                if mismatch is not None and mismatch.seq < min(seq, actual.size):
                    problem = f"{mismatch.note()}; and further on, {problem}"
                raise VerificationFailed(problem)
            entry = match.group(2)
            leaf = leaf_hash(entry)
            if recorded is not None:
                recorded.append(unhex(match.group(1)))
            elif leaf != unhex(match.group(1)):
                mismatch = _Mismatch(seq, entry, unhex(match.group(1)))
                recorded = actual.copy()
                recorded.append(mismatch.recorded_leaf)
            actual.append(leaf)
            if actual.size != next_size:
                continue
            head = pending.pop()
            next_size = pending[-1]["tree_size"] if pending else -1
            if actual.root().hex() != head["root_hash"]:
                raise VerificationFailed(_head_mismatch(head, last_verified, mismatch, recorded, number, lines))
            last_verified = actual.size
            if mismatch is not None:
                altered_leaf_hashes.append(mismatch.seq)
                mismatch, recorded = None, None
    report.entries = actual.size
    if pending:
        head = pending[0]
        raise VerificationFailed(
            f"seq {actual.size}: the export ends after {actual.size} entries, but the tree head signed at "
            f"{head['signed_at']} covers {head['tree_size']}: the entries from seq {actual.size} on are missing "
            "(the log was truncated)."
        )
    promised = header.get("tree_size")
    if isinstance(promised, int) and actual.size < promised:
        raise VerificationFailed(
            f"seq {actual.size}: the export ends after {actual.size} entries, but its header says it holds "
            f"{promised}: the entries from seq {actual.size} on are missing (the log was truncated)."
        )
    covered = heads[-1]["tree_size"]
    if actual.size > covered:
        report.warnings.append(
            f"the entries from seq {covered} on are not covered by any signed tree head, so they are unverified."
        )
    report.warnings.extend(
        f"seq {seq}: the recorded leaf hash was altered, but the entry itself verifies." for seq in altered_leaf_hashes
    )
    if mismatch is not None:
        report.warnings.append(
            f"{mismatch.note()}; no signed tree head covers it, so it cannot be told whether the entry or the "
            "recorded hash was altered."
        )
    report.tree_heads = heads
    return report


# Checking a filtered export ----------------------------------------------------------------------------------


@dataclass
class FilteredReport:
    """What a filtered export proved: `entries` lines, each included, unedited, in the log `tree_head` signs."""

    tree_head: dict
    filter: dict
    entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = self.tree_head
        span = f" (seq {self.first_seq} to {self.last_seq})" if self.entries else ""
        shown = ", ".join(f"{name}={value}" for name, value in sorted(self.filter.items())) or "none"
        lines = [
            f"OK: {self.entries} entries{span} matching the filter ({shown}) are each included, unedited, in the "
            f"signed tree head of {head['tree_size']} entries signed at {head['signed_at']}.",
            "note: a filtered export proves the entries it holds; it cannot prove that no matching entry was left "
            "out. Verify the whole-log export for that.",
        ]
        return "\n".join(lines + [f"warning: {warning}" for warning in self.warnings])


def _filtered_header(line: bytes | None) -> dict:
    try:
        header = json.loads(line) if line else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FILTERED_EXPORT_FORMAT:
        raise VerificationFailed(f"Line 1 is not the header of a {FILTERED_EXPORT_FORMAT} export.")
    count = header.get("entries")
    if not isinstance(header.get("tree_head"), dict):
        raise VerificationFailed("Line 1 (the header) has no signed tree head.")
    if not isinstance(header.get("filter"), dict):
        raise VerificationFailed("Line 1 (the header) does not say which filter was applied.")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise VerificationFailed("Line 1 (the header) does not say how many entries matched.")
    return header


def _filtered_keys(header: dict, public_key: bytes | list[bytes] | None, report: FilteredReport) -> dict[str, bytes]:
    if public_key:
        trusted = [public_key] if isinstance(public_key, bytes) else public_key
        return {key_id(key): key for key in trusted}
    try:
        key = base64.b64decode(header["public_key"], validate=True)
    except (KeyError, TypeError, ValueError):
        raise VerificationFailed("Line 1 (the header) names its public key in a form not understood.") from None
    report.warnings.append(
        "no --public-key was given, so the key named in the export itself was trusted; "
        "pass the key published by your Provenant server to rule out a forged export."
    )
    return {key_id(key): key}


def _inclusion_proof(text: bytes, size: int) -> tuple[int, list[bytes]] | None:
    """The leaf index and audit path of a proof against the tree of `size` leaves, or None when malformed."""
    try:
        proof = json.loads(text)
        index, path = proof["leaf_index"], proof["audit_path"]
    except (ValueError, TypeError, KeyError):
        return None
    if proof.get("tree_size") != size or not isinstance(index, int) or isinstance(index, bool):
        return None
    if not isinstance(path, list) or not all(isinstance(digest, str) and HEX_HASH.match(digest) for digest in path):
        return None
    return index, [bytes.fromhex(digest) for digest in path]


def _proven_entry(number: int, line: bytes, size: int, after: int | None) -> tuple[int, bytes, bytes, list[bytes]]:
    """A filtered export's entry line taken apart: (seq, the entry's bytes, its recorded leaf, its audit path)."""
    match = PROVEN_ENTRY_LINE.match(line)
    if match is None:
        where = f"Line {number}" + (f" (after seq {after})" if after is not None else "")
        raise VerificationFailed(f"{where} is not an entry with its inclusion proof in the export's exact byte form.")
    entry = match.group(3)
    tail = ENTRY_TAIL.search(entry)
    if tail is None:
        raise VerificationFailed(f"Line {number}: the entry is not in the export's exact byte form.")
    seq = int(tail.group(1))
    proof = _inclusion_proof(match.group(2), size)
    if proof is None:
        raise VerificationFailed(
            f"Line {number} (seq {seq}): the inclusion proof is malformed or is not against the header's tree of "
            f"{size} entries."
        )
    index, path = proof
    if index != seq:
        raise VerificationFailed(
            f"Line {number} (seq {seq}): the inclusion proof is for leaf {index}, not for the entry's seq {seq}."
        )
    if after is not None and seq <= after:
        raise VerificationFailed(
            f"Line {number} (seq {seq}): entries must be in rising sequence order, but seq {seq} follows seq {after}."
        )
    return seq, entry, binascii.a2b_hex(match.group(1)), path


def verify_filtered_export(lines: Iterable[bytes], public_key: bytes | list[bytes] | None = None) -> FilteredReport:
    """Check a filtered export, read once line by line (a file opened in binary mode will do), in constant memory.

    `public_key` is the trusted key (32 raw bytes), or a list of them; without one the key the header names is
    trusted, with a warning. Raises VerificationFailed naming the first bad line and its sequence number.
    """
    numbered = enumerate(lines, 1)
    header = _filtered_header(next(numbered, (1, None))[1])
    report = FilteredReport(tree_head=header["tree_head"], filter=header["filter"])
    keys = _filtered_keys(header, public_key, report)
    try:
        (head,) = _checked_heads([header["tree_head"]], keys)
    except VerificationFailed as failure:
        raise VerificationFailed(f"Line 1 (the header): {failure}") from None
    size, root = head["tree_size"], bytes.fromhex(head["root_hash"])
    for number, line in numbered:
        seq, entry, recorded, path = _proven_entry(number, line, size, report.last_seq)
        leaf = leaf_hash(entry)
        if not verify_inclusion(seq, size, leaf, path, root):
            if leaf != recorded and verify_inclusion(seq, size, recorded, path, root):
                reason = (
                    "the entry was edited: its content no longer hashes to the leaf the signed tree head covers "
                    "(its recorded leaf hash and audit path still lead to the signed root)"
                )
            else:
                reason = (
                    f"the audit path does not lead from the entry's leaf to the signed root {head['root_hash']}: "
                    "the entry, its leaf hash or its proof was altered"
                )
            raise VerificationFailed(f"Line {number} (seq {seq}): {reason}.")
        if leaf != recorded:
            report.warnings.append(f"line {number} (seq {seq}): recorded leaf hash altered; the entry verifies.")
        report.entries += 1
        report.first_seq = seq if report.first_seq is None else report.first_seq
        report.last_seq = seq
    if report.entries != header["entries"]:
        after = f" after seq {report.last_seq}" if report.entries else ""
        raise VerificationFailed(
            f"Line {report.entries + 1}: the export ends{after} with {report.entries} entries, but line 1 says "
            f"{header['entries']} matched: "
            + (
                "entries were removed, or the export was cut short."
                if report.entries < header["entries"]
                else "entries were added."
            )
        )
    return report


def _is_filtered_export(path: Path) -> bool:
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        header = json.loads(first)
    except ValueError:
        return False
    return isinstance(header, dict) and header.get("format") == FILTERED_EXPORT_FORMAT


def verify(
    path: Path, public_keys: list[bytes] | None = None, tree_heads: Iterable[dict] = ()
) -> Report | FilteredReport:
    """Check the export at `path`, whole-log or filtered (told apart by its first line), against `public_keys` (32
    raw bytes each; without one, the keys the export names, with a warning) and, for a whole-log export, tree heads
    fetched separately. Raises VerificationFailed naming the first bad sequence number, ValueError for a tree head
    given with a filtered export."""
    heads = list(tree_heads)
    if not _is_filtered_export(path):
        return verify_export(path, public_keys, [head.get("tree_head", head) for head in heads])
    if heads:
        raise ValueError(
            "--tree-head applies to the whole-log export; a filtered export is checked against the head it carries "
            "(compare that head with one you fetched yourself)."
        )
    with path.open("rb") as handle:
        return verify_filtered_export(handle, public_keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "export",
        type=Path,
        help="the JSON Lines export: the whole log (GET /api/v1/audit/export/) or a filtered one "
        "(GET /api/v1/audit/entries/export/?<filters>)",
    )
    parser.add_argument(
        "--public-key", type=Path, action="append", default=[], help="a trusted public key file (PEM or base64)"
    )
    parser.add_argument(
        "--tree-head", type=Path, action="append", default=[], help="a signed tree head fetched separately (JSON)"
    )
    args = parser.parse_args(argv)
    try:
        keys = [load_public_key(path.read_text()) for path in args.public_key]
        extra = [json.loads(path.read_text()) for path in args.tree_head]
        if not all(isinstance(head, dict) for head in extra):
            raise ValueError("A --tree-head file does not hold a JSON object.")
        report = verify(args.export, keys, extra)
    except VerificationFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
