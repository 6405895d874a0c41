"""The gates that read the supply-chain evidence about the bytes themselves (governance/registry/gates.py): "no
unsafe format findings" (the format scan's verdict), "format allowed" (the format the scan detected, against the
stage's allowlist) and "signed by a trusted key" (a model-signing signature the server verified). Each blocks a
promotion to production through the API with a sentence saying why, and lets the fixed version through. The files
are real (a PyTorch checkpoint whose pickle calls os.system, safetensors, ONNX) and the signature is made by the
model_signing library."""

from pathlib import Path

import pytest

from artifacts.access.roles import Role
from governance.registry.gates import gates_evaluate
from governance.registry.models import PromotionPolicy
from governance.supplychain.services.signatures import trusted_key_revoke
from tests.artifacts.factories import ProjectFactory
from tests.governance.factories import ModelVersionFactory, RegisteredModelFactory, artifact_version_with_lineage
from tests.governance.registry.test_supply_chain_gates import gate, person, promote, set_policy
from tests.governance.supplychain import files, signing
from tests.governance.supplychain.factories import TrustedSigningKeyFactory, VersionSignatureFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def published(django_capture_on_commit_callbacks, project):
    """`published(content)`: a version of `project` with those bytes, verified and scanned (the worker's tasks run
    eagerly once the publishing commits)."""

    def publish(content: bytes):
        with django_capture_on_commit_callbacks(execute=True):
            return artifact_version_with_lineage(project, content=content)

    return publish


def test_an_unsafe_checkpoint_is_blocked_and_the_safetensors_version_passes(api_as, project, published):
    model = RegisteredModelFactory(project=project)
    assert set_policy(api_as, project, block_unsafe_formats=True)["block_unsafe_formats"] is True

    asked, decided = promote(api_as, model, published(files.hostile_torch_checkpoint()))

    passed, detail = gate(asked, "format_scan")
    assert not passed
    assert detail.startswith("Unsafe: code run on load")
    assert "PyTorch checkpoint" in detail
    assert "system" in detail  # the import the pickle makes
    assert "Publish the weights in a format that runs no code on loading, such as safetensors." in detail
    assert decided["state"] == "open"
    assert decided["blocked_by"].startswith("Gates fail: format_scan: Unsafe")

    asked, decided = promote(api_as, model, published(files.clean_safetensors()))

    passed, detail = gate(asked, "format_scan")
    assert passed, detail
    assert detail.startswith("No unsafe finding (safetensors, scanned by picklescan")
    assert decided["state"] == "approved"


def test_a_stage_that_accepts_safetensors_and_onnx_refuses_a_clean_pickle_checkpoint(api_as, project, published):
    model = RegisteredModelFactory(project=project)
    policy = set_policy(api_as, project, allowed_formats=["onnx", "safetensors", "onnx"])
    assert policy["allowed_formats"] == ["onnx", "safetensors"]

    asked, decided = promote(api_as, model, published(files.clean_torch_checkpoint()))

    assert gate(asked, "format_allowed") == (
        False,
        "The bytes are PyTorch checkpoint (zip archive or legacy pickle) (detected from their content), which this "
        "stage does not accept: it allows onnx, safetensors.",
    )
    assert decided["state"] == "open"

    asked, decided = promote(api_as, model, published(files.onnx_graph()))

    assert gate(asked, "format_allowed") == (True, "ONNX model is allowed here (onnx, safetensors).")
    assert decided["state"] == "approved"


def test_an_unsigned_version_is_blocked_and_one_signed_by_a_trusted_key_passes(
    api_as, project, published, django_capture_on_commit_callbacks, tmp_path: Path
):
    model = RegisteredModelFactory(project=project)
    set_policy(api_as, project, require_trusted_signature=True)
    content = files.clean_safetensors()

    asked, decided = promote(api_as, model, published(content))

    passed, detail = gate(asked, "trusted_signature")
    assert not passed
    assert "carries no signature verified by a key its project trusts" in detail
    assert decided["state"] == "open"

    key = signing.ec_key(tmp_path / "keys", "release-ci")
    TrustedSigningKeyFactory(project=project, name="release-ci", pem=key.public_pem)
    version = artifact_version_with_lineage(project, content=content + b"\n")  # the next version's bytes
    model_file = tmp_path / "model.safetensors"
    model_file.write_bytes(content + b"\n")
    with django_capture_on_commit_callbacks(execute=True):
        VersionSignatureFactory(artifact_version=version, bundle=signing.sign_with_key(model_file, key))

    asked, decided = promote(api_as, model, version)

    assert gate(asked, "trusted_signature") == (
        True,
        "Signed, and verified against the bytes, by trusted key 'release-ci'.",
    )
    assert decided["state"] == "approved"


def test_a_signature_by_a_key_revoked_since_no_longer_counts(project, django_capture_on_commit_callbacks, tmp_path):
    key = signing.ec_key(tmp_path / "keys", "old")
    trusted = TrustedSigningKeyFactory(project=project, name="old", pem=key.public_pem)
    content = files.clean_safetensors()
    (tmp_path / "m.safetensors").write_bytes(content)
    version = ModelVersionFactory(
        registered_model=RegisteredModelFactory(project=project),
        artifact_version=artifact_version_with_lineage(project, content=content),
    )
    with django_capture_on_commit_callbacks(execute=True):
        VersionSignatureFactory(
            artifact_version=version.artifact_version, bundle=signing.sign_with_key(tmp_path / "m.safetensors", key)
        )
    policy = PromotionPolicy(project=project, stage="production", version=1, require_trusted_signature=True)

    def judged() -> bool:
        results = gates_evaluate(policy, version, current_production=None, now=None)
        (result,) = [r for r in results if r["gate"] == "trusted_signature"]
        return result["passed"]

    assert judged()
    trusted_key_revoke(key=trusted, revoked_by=person(Role.MAINTAINER, project))
    assert not judged()  # at once, before the re-check the revocation queues has run


def test_bytes_not_scanned_yet_fail_both_format_gates_saying_so(project):
    version = ModelVersionFactory(
        registered_model=RegisteredModelFactory(project=project),
        artifact_version=artifact_version_with_lineage(project),  # no on-commit: the scan was never run
    )
    policy = PromotionPolicy(
        project=project, stage="production", version=1, block_unsafe_formats=True, allowed_formats=["safetensors"]
    )

    results = [r for r in gates_evaluate(policy, version, current_production=None, now=None) if "format" in r["gate"]]

    assert [(r["gate"], r["passed"]) for r in results] == [("format_scan", False), ("format_allowed", False)]
    assert all("is not scanned yet: a worker scans the bytes once they are verified" in r["detail"] for r in results)


@pytest.mark.parametrize(
    ("formats", "fault"),
    [
        (["pdf"], '"pdf" is not a valid choice.'),
        ("safetensors", 'Expected a list of items but got type "str".'),
    ],
)
def test_a_format_allowlist_naming_no_known_format_is_refused(api_as, project, formats, fault):
    response = api_as(person(Role.MAINTAINER, project)).post(
        "/api/v1/promotion-policies/",
        {"project": project.slug, "stage": "production", "allowed_formats": formats},
        format="json",
    )

    assert response.status_code == 400
    assert fault in str(response.json()["allowed_formats"])
    assert not PromotionPolicy.objects.filter(project=project).exists()
