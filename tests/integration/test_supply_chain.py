"""The supply-chain checks against real services: bytes uploaded to the S3 server are verified, then scanned, by a
real Celery worker reading them back from the bucket (a PyTorch checkpoint whose pickle calls os.system is found
unsafe, a safetensors file clean), and a model-signing bundle is verified by the worker against the bucket's bytes
and a key the project trusts. Real PostgreSQL, Redis, a Celery worker process and moto's S3 server (conftest.py).
"""

import time
from pathlib import Path

import pytest

from governance.supplychain.models import BlobScan, VersionSignature
from tests.artifacts.factories import sha256
from tests.governance.supplychain import files, signing
from tests.integration.conftest import WORKER_TIMEOUT
from tests.integration.test_artifact_store import created, model_artifact, project_with_blobs

pytestmark = pytest.mark.integration


def eventually(read, what: str, worker):
    """Poll `read()` until it answers something, failing with the worker's log after WORKER_TIMEOUT."""
    deadline = time.monotonic() + WORKER_TIMEOUT
    while (found := read()) is None:
        worker.assert_running()
        if time.monotonic() > deadline:
            pytest.fail(f"No {what} after {WORKER_TIMEOUT:.0f} s. The worker's log ends:\n{worker.log_tail()}")
        time.sleep(0.1)
    return found


@pytest.mark.django_db(transaction=True)
def test_the_worker_scans_what_it_verified_in_the_bucket(api, s3_bucket, celery_worker):
    hostile, clean = files.hostile_torch_checkpoint(), files.clean_safetensors()
    project = project_with_blobs(api, hostile, clean)
    artifact = model_artifact(api, project)
    version = created(api, "/api/v1/artifact-versions/", {"artifact": artifact["id"], "digest": sha256(hostile)})

    scans = {
        content: eventually(
            lambda content=content: (
                BlobScan.objects.filter(blob__digest=sha256(content).removeprefix("sha256:")).order_by("-id").first()
            ),
            "scan",
            celery_worker,
        )
        for content in (hostile, clean)
    }

    assert (scans[hostile].detected_format, scans[hostile].verdict) == ("pytorch", "unsafe")
    assert any("system" in str(finding) for finding in scans[hostile].findings)
    assert (scans[clean].detected_format, scans[clean].verdict) == ("safetensors", "clean")
    answer = api.get(f"/api/v1/artifact-versions/{version['id']}/scan/")
    assert answer.status_code == 200, answer.content
    assert answer.json()["verdict"] == "unsafe"


@pytest.mark.django_db(transaction=True)
def test_the_worker_verifies_a_signature_against_the_bucket_bytes_and_a_trusted_key(
    api, s3_bucket, celery_worker, tmp_path: Path
):
    content = files.clean_safetensors()
    project = project_with_blobs(api, content)
    version = created(
        api, "/api/v1/artifact-versions/", {"artifact": model_artifact(api, project)["id"], "digest": sha256(content)}
    )
    key = signing.ec_key(tmp_path / "keys", "release-ci")
    created(
        api, f"/api/v1/projects/{project}/trusted-keys/", {"name": "release-ci", "method": "key", "pem": key.public_pem}
    )
    model_file = tmp_path / "model.safetensors"
    model_file.write_bytes(content)

    created(
        api,
        f"/api/v1/artifact-versions/{version['id']}/signatures/",
        {"bundle": signing.sign_with_key(model_file, key)},
    )
    signature = eventually(
        lambda: VersionSignature.objects.filter(artifact_version_id=version["id"], verified_at__isnull=False).first(),
        "signature check",
        celery_worker,
    )

    assert signature.verified, signature.detail
    assert signature.trusted_key.name == "release-ci"
