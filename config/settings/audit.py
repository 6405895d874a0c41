"""The audit log: the key that signs its tree heads, how long their copies are locked, and who is the client."""

from django.core.exceptions import ImproperlyConfigured

from config.settings.env import VAR_DIR, env_int, env_positive_int, env_str

# The Ed25519 key that signs tree heads: PEM text (PKCS#8) in the variable itself, or a file holding it. With
# neither, a key is generated on first use in var/ (fine for one machine; in production give every web and worker
# process the same key, kept as a secret). Auditors check signatures with the public key: GET /api/v1/audit/public-key/.
PROVENANT_AUDIT_SIGNING_KEY = env_str("PROVENANT_AUDIT_SIGNING_KEY")
PROVENANT_AUDIT_SIGNING_KEY_FILE = env_str("PROVENANT_AUDIT_SIGNING_KEY_FILE") or str(VAR_DIR / "audit-signing-key.pem")

# Copies of signed tree heads in an S3 bucket with Object Lock enabled are retained this long, in this mode
# (COMPLIANCE: nobody, root included, can delete them early; GOVERNANCE: holders of s3:BypassGovernanceRetention can).
PROVENANT_AUDIT_OBJECT_LOCK_DAYS = env_positive_int("PROVENANT_AUDIT_OBJECT_LOCK_DAYS", 7 * 365)
PROVENANT_AUDIT_OBJECT_LOCK_MODE = env_str("PROVENANT_AUDIT_OBJECT_LOCK_MODE") or "COMPLIANCE"
if PROVENANT_AUDIT_OBJECT_LOCK_MODE not in {"COMPLIANCE", "GOVERNANCE"}:
    raise ImproperlyConfigured(
        f"PROVENANT_AUDIT_OBJECT_LOCK_MODE={PROVENANT_AUDIT_OBJECT_LOCK_MODE!r}: use COMPLIANCE or GOVERNANCE."
    )

# How many reverse proxies in front of Provenant append to X-Forwarded-For. 0 (the default) takes the peer
# address; with N, the log records the address the outermost of the N proxies saw.
PROVENANT_TRUSTED_PROXY_HOPS = env_int("PROVENANT_TRUSTED_PROXY_HOPS", 0)
if PROVENANT_TRUSTED_PROXY_HOPS < 0:
    raise ImproperlyConfigured("PROVENANT_TRUSTED_PROXY_HOPS must be 0 or more.")
