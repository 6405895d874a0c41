"""Configuration from the environment: production refuses to run insecurely, and check --deploy is clean."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION = {
    "DJANGO_SECRET_KEY": "p" * 30 + "R4nd0m-Enough-For-Django-Checks!" + "q" * 20,
    "DJANGO_ALLOWED_HOSTS": "provenant.example.com",
    "DATABASE_URL": "postgres://provenant@db.example.com:5432/provenant",
    "PROVENANT_S3_BUCKET": "provenant-blobs",
    "CELERY_BROKER_URL": "redis://redis.example.com:6379/0",
    "PROVENANT_AUDIT_SIGNING_KEY_FILE": "/run/secrets/provenant-audit-key.pem",
    "PROVENANT_ATTESTATION_SIGNING_KEY_FILE": "/run/secrets/provenant-attestation-key.pem",
    "PROVENANT_PUBLIC_URL": "https://provenant.example.com",
}


def run_manage(*args: str, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PROVENANT_", "DATABASE_URL", "CELERY_"))
    }
    clean |= {"DJANGO_SETTINGS_MODULE": "config.settings", "PROVENANT_VAR_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_each_host_would_generate_its_own_audit_key(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "PROVENANT_AUDIT_SIGNING_KEY_FILE"}
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "governance.W001" in result.stderr + result.stdout


def test_check_deploy_warns_when_event_links_would_point_at_the_default_address(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "PROVENANT_PUBLIC_URL"}
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "governance.W002" in result.stderr + result.stdout
    assert "http://127.0.0.1:8000" in result.stderr + result.stdout


def test_check_deploy_warns_when_each_host_would_generate_its_own_attestation_key(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "PROVENANT_ATTESTATION_SIGNING_KEY_FILE"}
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "supplychain.W001" in result.stderr + result.stdout


def test_check_deploy_refuses_an_attestation_key_that_is_not_ed25519_pem(tmp_path):
    env = {**PRODUCTION, "PROVENANT_ATTESTATION_SIGNING_KEY": "not a key"}
    result = run_manage("check", "--deploy", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "supplychain.E001" in result.stderr + result.stdout


def test_check_deploy_refuses_an_audit_key_that_is_not_ed25519_pem(tmp_path):
    env = {**PRODUCTION, "PROVENANT_AUDIT_SIGNING_KEY": "not a key"}
    result = run_manage("check", "--deploy", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "governance.E001" in result.stderr + result.stdout


def test_production_without_a_secret_key_refuses_to_start(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_SECRET_KEY"}
    result = run_manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize(
    ("env", "expression", "expected"),
    [
        ({}, "settings.STORAGES['blobs']['BACKEND']", "django.core.files.storage.FileSystemStorage"),
        (PRODUCTION, "settings.STORAGES['blobs']['BACKEND']", "storages.backends.s3.S3Storage"),
        ({}, "settings.CELERY_TASK_ALWAYS_EAGER", "True"),
        (PRODUCTION, "settings.CELERY_TASK_ALWAYS_EAGER", "False"),
        ({}, "settings.DATABASES['default']['ENGINE']", "django.db.backends.sqlite3"),
        (PRODUCTION, "settings.DATABASES['default']['ENGINE']", "django.db.backends.postgresql"),
        ({"PROVENANT_S3_BUCKET": "b", "PROVENANT_S3_ENDPOINT_URL": "http://127.0.0.1:9000"},
         "settings.STORAGES['blobs']['OPTIONS']['endpoint_url']", "http://127.0.0.1:9000"),
        ({}, "repr(settings.PROVENANT_ACCEL_REDIRECT)", "''"),
        ({}, "settings.SECRET_KEY_FALLBACKS", "[]"),
        ({**PRODUCTION, "DJANGO_SECRET_KEY_FALLBACKS": "old-key-1, old-key-2"},
         "settings.SECRET_KEY_FALLBACKS", "['old-key-1', 'old-key-2']"),
        ({"PROVENANT_ACCEL_REDIRECT": "/_provenant_blobs/"}, "settings.PROVENANT_ACCEL_REDIRECT", "/_provenant_blobs/"),
        (PRODUCTION, "settings.STORAGES['blobs']['OPTIONS']['object_parameters']", "{}"),
        ({**PRODUCTION, "PROVENANT_S3_SSE": "AES256"},
         "settings.STORAGES['blobs']['OPTIONS']['object_parameters']", "{'ServerSideEncryption': 'AES256'}"),
        ({**PRODUCTION, "PROVENANT_S3_SSE": "aws:kms"},
         "settings.STORAGES['blobs']['OPTIONS']['object_parameters']", "{'ServerSideEncryption': 'aws:kms'}"),
        ({**PRODUCTION, "PROVENANT_S3_SSE": "aws:kms", "PROVENANT_S3_SSE_KMS_KEY_ID": "alias/provenant-blobs"},
         "settings.STORAGES['blobs']['OPTIONS']['object_parameters']",
         "{'ServerSideEncryption': 'aws:kms', 'SSEKMSKeyId': 'alias/provenant-blobs'}"),
        # S3 reads and writes SSE-KMS objects only on SigV4-signed requests, presigned URLs included, and buckets
        # made since AWS retired SigV2 (2020) refuse it whatever their encryption: SigV4 always.
        ({**PRODUCTION, "PROVENANT_S3_SSE": "aws:kms"},
         "settings.STORAGES['blobs']['OPTIONS']['signature_version']", "s3v4"),
        (PRODUCTION, "settings.STORAGES['blobs']['OPTIONS']['signature_version']", "s3v4"),
        ({}, "settings.PROVENANT_ARCHIVE_STORAGE_CLASS", "GLACIER_IR"),
        ({"PROVENANT_ARCHIVE_STORAGE_CLASS": "DEEP_ARCHIVE"},
         "settings.PROVENANT_ARCHIVE_STORAGE_CLASS", "DEEP_ARCHIVE"),
        # Logs: text for a terminal in the embedded debug mode, JSON lines in production, either on request.
        ({}, "settings.PROVENANT_LOG_FORMAT", "console"),
        (PRODUCTION, "settings.PROVENANT_LOG_FORMAT", "json"),
        ({"PROVENANT_LOG_FORMAT": "JSON"}, "settings.PROVENANT_LOG_FORMAT", "json"),
        ({**PRODUCTION, "PROVENANT_LOG_FORMAT": "console"}, "settings.PROVENANT_LOG_FORMAT", "console"),
        # A second factor is required of maintainers, reviewers, auditors and staff in production, not in the demo.
        (PRODUCTION, "settings.PROVENANT_MFA_REQUIRED", "True"),
        ({}, "settings.PROVENANT_MFA_REQUIRED", "False"),
        ({**PRODUCTION, "PROVENANT_MFA_REQUIRED": "false"}, "settings.PROVENANT_MFA_REQUIRED", "False"),
        ({}, "settings.ACCOUNT_REAUTHENTICATION_TIMEOUT", "900"),
        ({"PROVENANT_STEP_UP_MINUTES": "5"}, "settings.ACCOUNT_REAUTHENTICATION_TIMEOUT", "300"),
    ],
)  # fmt: skip
def test_embedded_defaults_and_production_services_come_from_the_environment(tmp_path, env, expression, expected):
    base = {} if env.get("DJANGO_SECRET_KEY") else {"DJANGO_DEBUG": "true"}
    result = run_manage("shell", "-v", "0", "-c", f"from django.conf import settings; print({expression})",
                        env={**base, **env}, tmp_path=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_an_unknown_log_format_is_named(tmp_path):
    result = run_manage("check", env={"DJANGO_DEBUG": "true", "PROVENANT_LOG_FORMAT": "xml"}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "PROVENANT_LOG_FORMAT='xml': use one of json, console." in result.stderr


def test_production_logs_are_json_lines_from_every_logger(tmp_path):
    """Django's own loggers and ours write through the same JSON formatter (what a log collector reads)."""
    code = (
        "import logging; logging.getLogger('django.request')"
        ".warning('refused', extra={'status_code': 403, 'request': object()})"
    )
    result = run_manage("shell", "-v", "0", "-c", code, env=PRODUCTION, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(text) for text in result.stderr.splitlines() if text.startswith("{")]
    assert line["logger"] == "django.request"
    assert line["level"] == "warning"
    assert line["event"] == "refused"
    assert line["status_code"] == 403
    assert "request" not in line


def test_a_malformed_boolean_is_named(tmp_path):
    result = run_manage("check", env={"DJANGO_DEBUG": "maybe"}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr


@pytest.mark.parametrize("prefix", ["_provenant_blobs/", "/_provenant_blobs", "/", "/blobs?x/", "/a b/"])
def test_an_accel_redirect_prefix_that_is_not_a_location_path_is_named(tmp_path, prefix):
    result = run_manage("check", env={"DJANGO_DEBUG": "true", "PROVENANT_ACCEL_REDIRECT": prefix}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert f"PROVENANT_ACCEL_REDIRECT={prefix!r} is not the path of an nginx location" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROVENANT_S3_SSE": "aes256"}, "PROVENANT_S3_SSE='aes256' is not a server-side encryption: use AES256"),
        ({"PROVENANT_S3_SSE": "SSE-KMS"}, "PROVENANT_S3_SSE='SSE-KMS' is not a server-side encryption"),
        ({"PROVENANT_S3_SSE": "AES256", "PROVENANT_S3_SSE_KMS_KEY_ID": "alias/provenant-blobs"},
         "PROVENANT_S3_SSE_KMS_KEY_ID is set but PROVENANT_S3_SSE is 'AES256'"),
        ({"PROVENANT_S3_SSE_KMS_KEY_ID": "alias/provenant-blobs"},
         "PROVENANT_S3_SSE_KMS_KEY_ID is set but PROVENANT_S3_SSE is ''"),
        ({"PROVENANT_S3_SSE": "aws:kms", "PROVENANT_S3_SSE_KMS_KEY_ID": "alias/provenant blobs"},
         "PROVENANT_S3_SSE_KMS_KEY_ID='alias/provenant blobs' is not a KMS key"),
        ({"PROVENANT_S3_BUCKET": "", "PROVENANT_S3_SSE": "AES256"},
         "PROVENANT_S3_SSE='AES256' encrypts objects in an S3 bucket, and PROVENANT_S3_BUCKET is empty"),
    ],
)  # fmt: skip
def test_server_side_encryption_that_would_not_encrypt_as_meant_refuses_to_start(tmp_path, env, message):
    result = run_manage("check", env={**PRODUCTION, **env}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize("storage_class", ["glacier", "STANDARD", "EXPRESS_ONEZONE", "COLD"])
def test_an_archive_storage_class_archival_cannot_move_bytes_to_is_named(tmp_path, storage_class):
    result = run_manage(
        "check", env={"DJANGO_DEBUG": "true", "PROVENANT_ARCHIVE_STORAGE_CLASS": storage_class}, tmp_path=tmp_path
    )
    assert result.returncode != 0
    assert (
        f"PROVENANT_ARCHIVE_STORAGE_CLASS={storage_class!r} is not an S3 storage class archival can move bytes to: "
        "use one of STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE"
    ) in result.stderr
