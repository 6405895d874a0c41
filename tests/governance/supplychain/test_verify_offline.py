"""The offline verifier (the client's provenant_client/attestation_verify.py, behind `provenant attestation verify`
and tools/verify_attestation.py) on real attestations, run as a user runs it: the client's package copied alone into
an empty folder (dsse.py is the server's core/crypto/dsse.py, copied as the file it links to), in a Python where
importing Django fails."""

import base64
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from provenant_client.cli import main as provenant

from governance.supplychain import keys
from tests.governance.supplychain.factories import produced_version
from tests.standalone import ROOT, copied_alone, module_without_django, without_django

CLIENT_PACKAGE = Path("clients/python/src")
STANDALONE_FILES = tuple(
    str(path.relative_to(ROOT)) for path in sorted((ROOT / CLIENT_PACKAGE / "provenant_client").glob("*.py"))
)


@dataclass
class Case:
    folder: Path
    envelope: Path
    model: Path
    keys: Path
    pem: Path


@dataclass
class Outcome:
    status: int
    out: str
    err: str


@pytest.fixture
def case(api, tmp_path) -> Case:
    """A produced model, its attestation as the API hands it out, and the keys as the API publishes them."""
    produced = produced_version(content=b"the weights of a real model\n" * 1000)
    envelope = tmp_path / "classifier.intoto.jsonl"
    envelope.write_bytes(api.get(f"/api/v1/artifact-versions/{produced.version.pk}/attestation/").content)
    keys = api.get("/api/v1/attestations/keys/").json()
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    (tmp_path / "key.pem").write_text(keys[0]["pem"])
    model = tmp_path / "model.bin"
    model.write_bytes(produced.content)
    return Case(tmp_path, envelope, model, tmp_path / "keys.json", tmp_path / "key.pem")


def run_verifier(folder: Path, *args: str | Path) -> Outcome:
    alone = copied_alone(folder / "verifier", *STANDALONE_FILES)
    completed = subprocess.run(
        module_without_django(alone / CLIENT_PACKAGE, "provenant_client.attestation_verify", *args),
        cwd=alone,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Outcome(completed.returncode, completed.stdout, completed.stderr)


def test_a_good_attestation_of_the_file_verifies_and_names_what_made_it(case):
    outcome = run_verifier(case.folder, case.envelope, "--key", case.keys, "--file", case.model)

    assert outcome.status == 0, outcome.err
    assert "OK: signed by key" in outcome.out
    assert "matches the subject's SHA-256" in outcome.out
    assert "run: train-42 (2026-11-02T09:30:00Z to 2026-11-02T11:45:12Z)" in outcome.out
    assert "materials: 3" in outcome.out
    assert "churn/customers@v1" in outcome.out
    assert "churn/base-model@v1" in outcome.out
    assert "gitCommit:" in outcome.out


def test_a_pem_key_works_as_well_as_the_published_list(case):
    assert run_verifier(case.folder, case.envelope, "--key", case.pem, "--file", case.model).status == 0


def test_another_file_fails(case):
    other = case.folder / "other.bin"
    other.write_bytes(b"not the model")

    outcome = run_verifier(case.folder, case.envelope, "--key", case.keys, "--file", other)

    assert outcome.status == 1
    assert "FAILED: " in outcome.err
    assert "the attestation is about" in outcome.err


def test_an_edited_statement_fails(case):
    envelope = json.loads(case.envelope.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["buildDefinition"]["resolvedDependencies"].pop()
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    case.envelope.write_text(json.dumps(envelope))

    outcome = run_verifier(case.folder, case.envelope, "--key", case.keys, "--file", case.model)

    assert outcome.status == 1
    assert "No signature in the envelope verifies" in outcome.err


def test_a_key_that_did_not_sign_fails_and_a_missing_key_file_cannot_be_checked(case):
    stranger = case.folder / "stranger.pem"
    stranger.write_text(keys.public_pem(keys.parse_private_pem(keys.new_private_pem(), "a stranger's key").public_raw))

    assert run_verifier(case.folder, case.envelope, "--key", stranger).status == 1
    missing = run_verifier(case.folder, case.envelope, "--key", case.folder / "nowhere.pem")
    assert missing.status == 2
    assert "error:" in missing.err


def test_tools_verify_attestation_runs_from_the_checkout_without_django(case):
    completed = subprocess.run(
        without_django(
            ROOT / "tools" / "verify_attestation.py", case.envelope, "--key", case.keys, "--file", case.model
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "OK: signed by key" in completed.stdout


def test_the_clients_command(case, capsys):
    assert (
        provenant(["attestation", "verify", str(case.envelope), "--key", str(case.keys), "--file", str(case.model)])
        == 0
    )
    assert "OK: signed by key" in capsys.readouterr().out
    assert provenant(["attestation", "verify", str(case.envelope), "--key", str(case.keys), "--file", __file__]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert provenant(["--json", "attestation", "verify", str(case.envelope), "--key", str(case.keys)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True
    assert document["statement"]["subject"][0]["name"] == "churn/classifier@v1"
    assert document["warnings"] == [
        "no --file given: the signature is good, but no file was checked against the subject"
    ]
