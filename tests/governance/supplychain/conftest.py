import pytest


@pytest.fixture(autouse=True)
def attestation_key_file(settings, tmp_path):
    """Each test signs with a key of its own, generated on first use in its own folder (as a fresh install does)."""
    settings.PROVENANT_ATTESTATION_SIGNING_KEY = ""
    settings.PROVENANT_ATTESTATION_SIGNING_KEY_FILE = str(tmp_path / "attestation-signing-key.pem")
    settings.PROVENANT_PUBLIC_URL = "https://provenant.example.com"
    return tmp_path / "attestation-signing-key.pem"
