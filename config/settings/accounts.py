"""Signing in with django-allauth: local accounts by username (no self-signup, no e-mail verification), multi-factor
authentication (TOTP authenticator apps and recovery codes), who must use it, and step-up (a fresh authentication
before the most consequential acts)."""

from config.settings.env import DEBUG, env_bool, env_positive_int
from config.settings.security import HTTPS

ACCOUNT_ADAPTER = "core.accounts.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_SESSION_REMEMBER = True  # no "remember me" box: the session limits of core/sessions.py hold for everyone
ACCOUNT_RATE_LIMITS = {
    # Sign-ins are throttled by django-axes (config/settings/portal.py), per username and the address the audit log
    # records (behind the trusted proxies); allauth's own counts would answer first, with a different rule, and key
    # on the proxy's address. Its other limits (second-factor codes, re-authentication) stay.
    "login": None,
    "login_failed": None,
}
# django-allauth's "reauthenticated" record is what step-up reads besides the sign-in itself (core/accounts.py).
PROVENANT_STEP_UP_MINUTES = env_positive_int("PROVENANT_STEP_UP_MINUTES", 15)
ACCOUNT_REAUTHENTICATION_TIMEOUT = PROVENANT_STEP_UP_MINUTES * 60

# Authenticator apps (TOTP), security keys and passkeys (WebAuthn, as a second factor after the password) and
# recovery codes.
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
# WebAuthn checks the page's origin is https; a server deliberately run over plain HTTP (PROVENANT_HTTPS=false: on
# localhost, in the browser tests) would refuse every key.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not HTTPS
MFA_TOTP_ISSUER = "Provenant"
MFA_RECOVERY_CODE_COUNT = 10
# Who must use a second factor: superusers, staff, and anyone holding a maintainer, reviewer or auditor role. Off
# by default only with DJANGO_DEBUG (the demo's people sign in with its published password); on in production.
PROVENANT_MFA_REQUIRED = env_bool("PROVENANT_MFA_REQUIRED", default=not DEBUG)
