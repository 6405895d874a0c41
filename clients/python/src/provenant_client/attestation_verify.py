#!/usr/bin/env python3
"""Check a Provenant provenance attestation offline, without the server: its DSSE signature, that it is an in-toto
SLSA provenance statement, and that it is about the file in hand.

Install the client with its `audit` extra (`pip install 'provenant-client[audit]'`: `cryptography`, for Ed25519)
and run, with Python 3.9 or later and nothing of the server:

    provenant attestation verify model.intoto.jsonl --key attestation-keys.json --file model.bin

(or `python -m provenant_client.attestation_verify ...`; from a checkout of the server, `python
tools/verify_attestation.py`). `--key` takes a PEM public key, the 32 raw bytes in base64, or the JSON list that
GET /api/v1/attestations/keys/ answers (every key that ever signed, retired ones included); repeat it for several.
Take the keys from a source other than the attestation: an envelope names its key, it never vouches for it.

It checks the envelope's Ed25519 signature over DSSE's pre-authentication encoding (`provenant_client.dsse`, the
server's own core/crypto/dsse.py shipped in the client), that the payload is an in-toto Statement v1 with a SLSA
provenance v1 predicate, and, given `--file`, that the file's SHA-256 is a subject's digest; then prints what made
the file: the run, its code commit and its inputs (the statement's resolved dependencies) with their digests. The
exit status is 0 when the attestation verifies, 1 when it does not, 2 when it could not be checked (a file missing
or unreadable, a key not understood).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from provenant_client.dsse import IN_TOTO_PAYLOAD_TYPE, EnvelopeError, key_id, statement_of, verify_envelope

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
CHUNK = 1 << 20


class VerificationFailed(Exception):
    """The attestation does not verify; the message says why."""


def _raw_key(text: str) -> bytes:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("The PEM file does not hold an Ed25519 public key.")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("A key is a PEM block, 32 bytes in base64, or the JSON of /attestations/keys/.") from None
    if len(raw) != 32:
        raise ValueError("An Ed25519 public key is 32 bytes.")
    return raw


def load_keys(text: str) -> dict[str, bytes]:
    """Trusted keys by keyid, from one key file. Each keyid is computed here from the key, never read from the file."""
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        listed = json.loads(stripped)
        listed = listed if isinstance(listed, list) else [listed]
        raws = [_raw_key(str(item["public_key"])) for item in listed if isinstance(item, dict) and "public_key" in item]
        if not raws:
            raise ValueError("The JSON key file lists no public_key.")
    else:
        raws = [_raw_key(stripped)]
    return {key_id(raw): raw for raw in raws}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Report:
    keyid: str
    statement: dict
    file_checked: str | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        predicate = self.statement.get("predicate", {})
        build = predicate.get("buildDefinition", {})
        details = predicate.get("runDetails", {})
        metadata = details.get("metadata", {})
        subjects = ", ".join(
            f"{subject.get('name')} (sha256:{subject.get('digest', {}).get('sha256')})"
            for subject in self.statement.get("subject", [])
        )
        lines = [f"OK: signed by key {self.keyid}", f"subject: {subjects}"]
        if self.file_checked:
            lines.append(f"file: {self.file_checked} matches the subject's SHA-256")
        lines.append(f"builder: {details.get('builder', {}).get('id')}")
        if metadata.get("invocationId"):
            span = " to ".join(filter(None, [metadata.get("startedOn"), metadata.get("finishedOn")]))
            lines.append(f"run: {metadata['invocationId']}" + (f" ({span})" if span else ""))
        external = build.get("externalParameters", {})
        if external.get("entryPoint"):
            lines.append(f"entry point: {external['entryPoint']}")
        dependencies = build.get("resolvedDependencies", [])
        lines.append(f"materials: {len(dependencies)}")
        for dependency in dependencies:
            digest = ", ".join(f"{name}:{value}" for name, value in sorted(dependency.get("digest", {}).items()))
            lines.append(f"  {dependency.get('name', '')} {dependency.get('uri', '')} {digest}".rstrip())
        return "\n".join(lines + [f"warning: {warning}" for warning in self.warnings])


def read_envelope(text: str) -> dict:
    """The envelope in a `.json` file (pretty-printed or not) or the first line of a `.intoto.jsonl` file."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("The attestation file is empty.")
    try:
        envelope = json.loads(text)
    except ValueError:
        try:
            envelope = json.loads(lines[0])
        except ValueError:
            raise ValueError("The attestation file is not JSON (a DSSE envelope, or one per line).") from None
    if not isinstance(envelope, dict):
        raise ValueError("The attestation file does not hold a JSON object.")
    return envelope


def verify(envelope: dict, keys: dict[str, bytes], file: Path | None = None) -> Report:
    """Check `envelope` against the trusted `keys` (keyid → raw key) and, given `file`, against the file's bytes."""
    if not keys:
        raise ValueError("No trusted key given: pass --key (the server publishes them at /api/v1/attestations/keys/).")
    try:
        keyid, payload = verify_envelope(envelope, keys)
        if envelope.get("payloadType") != IN_TOTO_PAYLOAD_TYPE:
            raise VerificationFailed(
                f"The payload type is {envelope.get('payloadType')!r}, not {IN_TOTO_PAYLOAD_TYPE}."
            )
        statement = statement_of(payload)
    except EnvelopeError as error:
        raise VerificationFailed(str(error)) from None
    if statement.get("_type") != STATEMENT_TYPE:
        raise VerificationFailed(f"The payload is not an in-toto Statement v1 (_type {statement.get('_type')!r}).")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise VerificationFailed(f"The predicate is {statement.get('predicateType')!r}, not SLSA provenance v1.")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise VerificationFailed("The statement names no subject.")
    report = Report(keyid=keyid, statement=statement)
    if file is None:
        report.warnings.append("no --file given: the signature is good, but no file was checked against the subject")
        return report
    actual = file_sha256(file)
    if not any(isinstance(s, dict) and s.get("digest", {}).get("sha256") == actual for s in subjects):
        named = ", ".join(str(s.get("digest", {}).get("sha256")) for s in subjects if isinstance(s, dict))
        raise VerificationFailed(f"{file} has SHA-256 {actual}; the attestation is about {named}.")
    report.file_checked = str(file)
    return report


def verify_paths(attestation: Path, key_files: list[Path], file: Path | None) -> Report:
    keys: dict[str, bytes] = {}
    for path in key_files:
        keys.update(load_keys(path.read_text()))
    return verify(read_envelope(attestation.read_text()), keys, file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("attestation", type=Path, help="the envelope (.intoto.jsonl or .json)")
    parser.add_argument(
        "--key", type=Path, action="append", default=[], help="trusted keys: PEM, base64, or /attestations/keys/ JSON"
    )
    parser.add_argument("--file", type=Path, help="the file the attestation should be about")
    args = parser.parse_args(argv)
    try:
        report = verify_paths(args.attestation, args.key, args.file)
    except VerificationFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
