"""Backup and restore as README's Production section documents it ("Backup and restore"), done for real: the
installation's PostgreSQL database dumped with `pg_dump -Fc`, its bucket copied object by object (what `aws s3
sync` does), its key files copied; then the database dropped, the bucket emptied and the keys deleted; then
`pg_restore` into a new database, the objects put back and the keys returned. Every version must download with its
digest, `verify_blobs` must re-prove the bytes, and `audit_verify_bucket` must find the log consistent with every
signed tree head in the bucket. Then the failure the copies exist for: a database restored from a dump older than
the newest signed head is reported by the verifier, naming that head.

Nothing is simulated: the PostgreSQL server, the S3 server and the worker are conftest.py's, the commands are the
PostgreSQL client programs the procedure names.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, connections
from rest_framework.test import APIClient

from artifacts.access.roles import Role
from artifacts.models import ArtifactVersion, Blob
from core.audit import signing
from core.audit import tree as audit_tree
from core.models import SignedTreeHead
from governance.registry.models import ModelVersion
from governance.registry.services.registry import promotion_policy_set
from tests.artifacts.factories import ProjectFactory, grant, sha256
from tests.governance.factories import ModelVersionFactory, RegisteredModelFactory, token_for
from tests.integration.conftest import REPO_ROOT, CeleryWorker, S3Bucket

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


# The procedure's commands ---------------------------------------------------------------------------------------


def database_url(name: str) -> str:
    """DATABASE_URL with the database `name` in place of the configured one."""
    return urlsplit(os.environ["DATABASE_URL"])._replace(path="/" + quote(name, safe="")).geturl()


def run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(argv[:2])} failed ({done.returncode}):\n{done.stderr}"


def back_up(bucket: S3Bucket, folder: Path) -> Path:
    """Database first, then the bucket, then the keys: blobs are immutable and content-addressed, so a bucket copy
    taken after the dump holds every blob and every tree head the dump names."""
    folder.mkdir()
    dump = folder / "provenant.dump"
    run("pg_dump", "--format=custom", f"--file={dump}", database_url(connection.settings_dict["NAME"]))
    for key in sorted(bucket.object_keys()):  # aws s3 sync s3://<bucket> <folder>/bucket
        target = folder / "bucket" / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bucket.read(key))
    for name in ("PROVENANT_AUDIT_SIGNING_KEY_FILE", "PROVENANT_ATTESTATION_SIGNING_KEY_FILE"):
        key_file = Path(getattr(settings, name))
        if key_file.exists():
            (folder / "keys").mkdir(exist_ok=True)
            shutil.copy2(key_file, folder / "keys" / key_file.name)
    return dump


def drop_database(worker: CeleryWorker) -> None:
    """The database is lost: nothing is running against it (the worker is idle, this process disconnected)."""
    worker.wait_until_idle()
    connections.close_all()
    name = connection.settings_dict["NAME"]
    run("dropdb", "--force", f"--maintenance-db={database_url('postgres')}", name)


def destroy(bucket: S3Bucket, worker: CeleryWorker) -> None:
    drop_database(worker)
    empty(bucket)
    Path(settings.PROVENANT_AUDIT_SIGNING_KEY_FILE).unlink()
    signing.signing_key.cache_clear()


def empty(bucket: S3Bucket) -> None:
    for key in bucket.object_keys():
        bucket.client.delete_object(Bucket=bucket.name, Key=key)


def restore_database(dump: Path) -> None:
    name = connection.settings_dict["NAME"]
    run("createdb", f"--maintenance-db={database_url('postgres')}", name)
    run("pg_restore", "--no-owner", "--exit-on-error", f"--dbname={database_url(name)}", str(dump))


def restore(bucket: S3Bucket, folder: Path) -> None:
    restore_database(folder / "provenant.dump")
    copies = folder / "bucket"
    for path in sorted(copies.rglob("*")):  # aws s3 sync <folder>/bucket s3://<bucket>
        if path.is_file():
            bucket.write(path.relative_to(copies).as_posix(), path.read_bytes())
    for name in ("PROVENANT_AUDIT_SIGNING_KEY_FILE", "PROVENANT_ATTESTATION_SIGNING_KEY_FILE"):
        key_file = Path(getattr(settings, name))
        if (folder / "keys" / key_file.name).exists():
            shutil.copy2(folder / "keys" / key_file.name, key_file)
    signing.signing_key.cache_clear()


def verify_export_offline(bucket: S3Bucket, folder: Path) -> subprocess.CompletedProcess:
    """The deeper check the README offers after a restore: the whole log exported (every entry re-hashed by the
    offline verifier), against every tree head fetched from the bucket (`aws s3 cp`) and the pinned public key."""
    folder.mkdir()
    export = folder / "audit.jsonl"
    call_command("audit_export", str(export), stdout=StringIO())
    key = folder / "audit-key.pem"
    key.write_text(signing.public_key_pem())
    heads = []
    for name in sorted(bucket.object_keys()):
        if name.startswith("audit/tree-heads/"):
            heads += ["--tree-head", str(folder / Path(name).name)]
            (folder / Path(name).name).write_bytes(bucket.read(name))
    return subprocess.run(
        [sys.executable, "tools/audit_verify.py", str(export), "--public-key", str(key), *heads],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def verify_bucket_in_a_new_process() -> subprocess.CompletedProcess:
    """`manage.py audit_verify_bucket` as an operator runs it after a restore: its own process and exit status."""
    return subprocess.run(
        [sys.executable, "manage.py", "audit_verify_bucket"],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url(connection.settings_dict["NAME"]),
            "PROVENANT_VAR_DIR": str(settings.VAR_DIR),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# A populated installation ---------------------------------------------------------------------------------------


def client(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return api


def publish(api: APIClient, project: str, artifact: int, data: bytes) -> dict:
    stored = api.put(f"/api/v1/projects/{project}/blobs/{sha256(data)}", data, content_type="application/octet-stream")
    assert stored.status_code in (200, 201), stored.content
    version = api.post("/api/v1/artifact-versions/", {"artifact": artifact, "digest": sha256(data)}, format="json")
    assert version.status_code == 201, version.content
    return version.json()


def populate(api: APIClient, wait_for_blob_state) -> list[dict]:
    """Two projects with three versions each (one shared blob across projects), a promotion to production decided
    by a reviewer, downloads, and two signed tree heads whose copies land in the bucket."""
    shared = os.urandom(3000)
    versions = []
    for slug in ("churn", "fraud"):
        created = api.post("/api/v1/projects/", {"slug": slug, "name": slug.title()}, format="json")
        assert created.status_code == 201, created.content
        artifact = api.post("/api/v1/artifacts/", {"project": slug, "name": "model", "kind": "model"}, format="json")
        assert artifact.status_code == 201, artifact.content
        for data in (os.urandom(200_000), os.urandom(1), shared):
            versions.append(publish(api, slug, artifact.json()["id"], data))
        call_command("audit_sign_tree_head", stdout=StringIO())
    for version in versions:
        wait_for_blob_state(version["digest"], Blob.State.VERIFIED)

    project = ProjectFactory(slug="ranking")
    maintainer = grant(Role.MAINTAINER, on=project).user
    promotion_policy_set(
        project=project,
        stage="production",
        changed_by=maintainer,
        approvals_required=1,
        require_complete_lineage=False,
        require_model_card=False,
    )
    model_version = ModelVersionFactory(registered_model=RegisteredModelFactory(project=project))
    asked = client(grant(Role.CONTRIBUTOR, on=project).user).post(
        "/api/v1/promotions/",
        {"model_version": model_version.pk, "target_stage": "production", "justification": "Better recall."},
        format="json",
    )
    assert asked.status_code == 201, asked.content
    approved = client(grant(Role.REVIEWER, on=project).user).post(
        f"/api/v1/promotions/{asked.json()['id']}/approve/", {"comment": "ok"}
    )
    assert approved.status_code == 200, approved.content
    assert ModelVersion.objects.get(pk=model_version.pk).stage == "production"
    versions.append(client(maintainer).get(f"/api/v1/artifact-versions/{model_version.artifact_version_id}/").json())
    wait_for_blob_state(versions[-1]["digest"], Blob.State.VERIFIED)
    call_command("audit_sign_tree_head", stdout=StringIO())
    return versions


def downloaded_digest(api: APIClient, version: dict) -> str:
    response = api.get(version["download_url"])
    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return "sha256:" + hashlib.sha256(body).hexdigest()


# The test -------------------------------------------------------------------------------------------------------


def test_a_restored_installation_serves_every_version_and_its_audit_log_matches_the_heads_in_the_bucket(
    api, s3_bucket, celery_worker, wait_for_blob_state, tmp_path
):
    empty(s3_bucket)  # a new installation's bucket (earlier tests' heads belong to databases since flushed)
    versions = populate(api, wait_for_blob_state)
    heads = list(SignedTreeHead.objects.order_by("tree_size").values_list("storage_name", "tree_size", "key_id"))
    assert len(heads) == 3
    assert {name for name, _, _ in heads} <= s3_bucket.object_keys()
    log_size = audit_tree.log_size()

    backup = tmp_path / "backup"
    back_up(s3_bucket, backup)
    destroy(s3_bucket, celery_worker)
    assert s3_bucket.object_keys() == set()
    restore(s3_bucket, backup)

    # The installation is back: the keys, the log, every version's bytes under their digest.
    assert signing.signing_key_id() == heads[-1][2]
    assert audit_tree.log_size() == log_size
    assert ArtifactVersion.objects.count() == len(versions)
    for version in versions:
        assert downloaded_digest(api, version) == version["digest"], version["download_url"]
        call_command("verify_blobs", "--digest", version["digest"], stdout=StringIO())
        assert Blob.objects.get(digest=version["digest"].removeprefix("sha256:")).state == Blob.State.VERIFIED
    assert ModelVersion.objects.get(stage="production").artifact_version_id == versions[-1]["id"]
    # The downloads above were recorded; the log grew past every head, and stays consistent with them all.
    assert audit_tree.log_size() > log_size
    verified = verify_bucket_in_a_new_process()
    assert verified.returncode == 0, verified.stderr
    assert f"consistent with all {len(heads)} signed tree head(s)" in verified.stdout
    assert heads[-1][0] in verified.stdout
    offline = verify_export_offline(s3_bucket, tmp_path / "offline")
    assert offline.returncode == 0, offline.stdout + offline.stderr

    # A database restored from a dump older than the newest signed head is found out.
    older = tmp_path / "older.dump"
    run("pg_dump", "--format=custom", f"--file={older}", database_url(connection.settings_dict["NAME"]))
    publish(api, "churn", versions[0]["artifact"], os.urandom(5000))
    newer = SignedTreeHead.objects.get(storage_name=sign_tree_head())
    assert newer.storage_name in s3_bucket.object_keys()
    drop_database(celery_worker)
    restore_database(older)

    assert audit_tree.log_size() < newer.tree_size
    refused = verify_bucket_in_a_new_process()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"{newer.storage_name} (size {newer.tree_size}" in refused.stderr
    assert f"fewer than the {newer.tree_size} this head signed" in refused.stderr
    # The heads the older database already knew still pass; only the newer one fails.
    assert "1 failure(s)" in refused.stderr
    with pytest.raises(CommandError, match=newer.storage_name):
        call_command("audit_verify_bucket")
    # The offline verifier, given the bucket's heads, finds the same loss entry by entry (the export it reads is an
    # act on the older database, so it comes last).
    truncated = verify_export_offline(s3_bucket, tmp_path / "offline-older")
    assert truncated.returncode == 1, truncated.stdout + truncated.stderr
    assert f"covers {newer.tree_size}" in truncated.stdout + truncated.stderr
    assert "(the log was truncated)" in truncated.stdout + truncated.stderr


def sign_tree_head() -> str:
    """Sign a tree head now, as beat would, and return the name of its copy in the bucket."""
    call_command("audit_sign_tree_head", stdout=StringIO())
    return SignedTreeHead.objects.order_by("-tree_size", "-signed_at").values_list("storage_name", flat=True)[0]
