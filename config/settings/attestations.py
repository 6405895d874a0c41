"""Provenance attestations: the Ed25519 key that signs them (README, "Provenance attestations")."""

from config.settings.env import VAR_DIR, env_str

# PEM text (PKCS#8) in the variable itself, or a file holding it; with neither, a key is generated on first use in
# var/. Give every web and worker process the same key, as a secret, and keep it apart from the audit log's key: the
# two are rotated on their own schedules. `manage.py rotate_attestation_key` replaces the file's key; every public
# key ever used stays published at GET /api/v1/attestations/keys/, so envelopes signed before a rotation still verify.
PROVENANT_ATTESTATION_SIGNING_KEY = env_str("PROVENANT_ATTESTATION_SIGNING_KEY")
PROVENANT_ATTESTATION_SIGNING_KEY_FILE = env_str("PROVENANT_ATTESTATION_SIGNING_KEY_FILE") or str(
    VAR_DIR / "attestation-signing-key.pem"
)
