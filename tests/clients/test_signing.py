"""Signing on push: `provenant push --sign-key` and `Client.push(sign_key=…)` sign the file with model_signing
before sending it, attach the bundle to the new version, and the server (a real process on the demo) checks it
against the project's trusted keys, which a maintainer registered over the API."""

import json
import os

import pytest
from provenant_client import Client, cli

from tests.clients.conftest import PROJECT
from tests.governance.supplychain import signing


@pytest.fixture(scope="module")
def trusted(demo_server, tmp_path_factory) -> signing.KeyPair:
    """A key pair whose public half mara, fraud-detection's maintainer, registered as trusted."""
    key = signing.ec_key(tmp_path_factory.mktemp("keys"), "pipeline")
    with Client(demo_server.url, demo_server.maintainer_token, backoff=0) as mara:
        mara.post(f"/projects/{PROJECT}/trusted-keys/", {"name": "pipeline", "method": "key", "pem": key.public_pem})
    return key


def test_push_with_sign_key_attaches_a_signature_the_server_verifies(
    demo_server, trusted, monkeypatch, capsys, tmp_path
):
    monkeypatch.setenv("PROVENANT_URL", demo_server.url)
    monkeypatch.setenv("PROVENANT_TOKEN", demo_server.contributor_token)
    model = tmp_path / "scorer.onnx"
    model.write_bytes(os.urandom(100_000))

    code = cli.main(
        ["push", str(model), "--project", PROJECT, "--artifact", "signed-scorer", "--sign-key",
         str(trusted.private_path), "--json"]
    )  # fmt: skip

    out = capsys.readouterr().out
    assert code == 0
    pushed = json.loads(out)
    assert pushed["signature"]["method"] == "key"
    with Client(demo_server.url, demo_server.viewer_token, cache_dir=tmp_path / "cache", backoff=0) as lena:
        [signature] = lena.signatures(pushed["version"]["id"])
    assert (signature["verified"], signature["trusted"], signature["trusted_key"]["name"]) == (True, True, "pipeline")


def test_a_signature_by_a_key_the_project_does_not_trust_is_kept_but_not_verified(demo_server, trusted, tmp_path):
    stranger = signing.ec_key(tmp_path / "keys", "stranger")
    model = tmp_path / "scorer.bin"
    model.write_bytes(os.urandom(50_000))

    with Client(demo_server.url, demo_server.contributor_token, cache_dir=tmp_path / "cache", backoff=0) as dana:
        pushed = dana.push(model, project=PROJECT, artifact="signed-scorer", sign_key=stranger.private_path)
        [signature] = dana.signatures(pushed.version["id"])

    assert signature["id"] == pushed.signature["id"]
    assert signature["verified"] is False
    assert "No trusted key of the project made this signature" in signature["detail"]


def test_sign_certificate_without_a_key_is_refused_before_anything_is_sent(demo_server, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PROVENANT_URL", demo_server.url)
    monkeypatch.setenv("PROVENANT_TOKEN", demo_server.contributor_token)
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")

    code = cli.main(["push", str(model), "--project", PROJECT, "--artifact", "a", "--sign-certificate", "c.pem"])

    assert code != 0
    assert "--sign-key" in capsys.readouterr().err
