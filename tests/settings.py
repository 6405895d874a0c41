"""Settings for the test suites: the real entry point, with the few environment values tests need.

The integration suite sets DATABASE_URL, CELERY_BROKER_URL and PROVENANT_S3_* in the environment
(see the Makefile's test-integration target); these defaults only fill what is not set.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-not-a-secret-" + "k" * 40)
os.environ.setdefault("PROVENANT_HTTPS", "false")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# Production's default requires a second factor of reviewers, maintainers, auditors and staff; the tests that are
# about it turn it on (tests/core/test_accounts.py), the rest sign such people in with a password alone.
os.environ.setdefault("PROVENANT_MFA_REQUIRED", "false")
if "PROVENANT_VAR_DIR" not in os.environ:
    # A folder of this run's own, removed when the run ends; processes it starts (the integration suite's
    # worker) inherit the variable and share it.
    os.environ["PROVENANT_VAR_DIR"] = tempfile.mkdtemp(prefix="provenant-tests-")
    atexit.register(shutil.rmtree, os.environ["PROVENANT_VAR_DIR"], ignore_errors=True)

from config.settings import *  # noqa: F403

# Hashing passwords slowly is a production virtue and a test-suite cost.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
