"""Secret key, hosts, HTTPS, cookies and the browser security headers: production-safe unless DJANGO_DEBUG is on."""

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.settings.env import DEBUG, VAR_DIR, env_bool, env_int, env_list, env_str


def _debug_secret_key() -> str:
    """A per-checkout key kept under var/, so local sessions survive restarts without a shared default."""
    from django.core.management.utils import get_random_secret_key

    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(get_random_secret_key())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. In production set it to a long random value; "
            "for local use run with DJANGO_DEBUG=true (as `make run` does)."
        )
    SECRET_KEY = _debug_secret_key()

# Former keys, newest first, kept while sessions, signed links and webhook secrets made under them are still in use:
# Django checks signatures against them, and webhook secrets sealed under one still decrypt (governance/webhooks).
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS", [])

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Served over HTTPS unless told otherwise: a deployment gets HSTS, redirects and secure cookies by default.
HTTPS = env_bool("PROVENANT_HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("PROVENANT_HSTS_SECONDS", 31_536_000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("PROVENANT_TRUST_X_FORWARDED_PROTO", default=False):
    # Only behind a proxy that overwrites this header; otherwise a client could claim HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SESSION_COOKIE_HTTPONLY = True
# A portal or admin session ends after this long without a request, and this long after sign-in however busy
# (core/sessions.py); the cookie itself lives as long as the absolute limit.
PROVENANT_SESSION_IDLE_SECONDS = env_int("PROVENANT_SESSION_IDLE_MINUTES", 30) * 60
PROVENANT_SESSION_ABSOLUTE_SECONDS = env_int("PROVENANT_SESSION_MAX_HOURS", 12) * 3600
if not 0 < PROVENANT_SESSION_IDLE_SECONDS <= PROVENANT_SESSION_ABSOLUTE_SECONDS:
    raise ImproperlyConfigured(
        "PROVENANT_SESSION_IDLE_MINUTES must be above 0 and no longer than PROVENANT_SESSION_MAX_HOURS."
    )
SESSION_COOKIE_AGE = PROVENANT_SESSION_ABSOLUTE_SECONDS
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): every page's scripts, styles, images and fetches come from this server
# alone, and no page may run inline script or style. The portal has none, the admin's scripts are files, and the API
# docs load Swagger UI's start-up script as a file of its own (SpectacularSwaggerSplitView). The docs page alone
# adds (API_DOCS_CSP, in config/urls.py) the data: images Swagger UI's stylesheet draws its icons with, and the one
# inline <style> of drf-spectacular's template, by its hash. tests/test_security_headers.py reads every kind of
# page for inline code its policy would block, so an upgrade that changes that <style> fails there, not silently
# in a browser.
SWAGGER_UI_STYLE = "'sha256-MMpT0iDxyjALd9PdfepImGX3DBfJPXZ4IlDWdPAgtn0='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
API_DOCS_CSP = {"style-src": [SWAGGER_UI_STYLE], "img-src": ["data:"]}

# Permissions-Policy (django-permissions-policy): Provenant uses no device or powerful browser feature but WebAuthn
# (security keys and passkeys at sign-in, on its own pages alone), so nothing else is granted, to its pages or to
# anything they could ever embed.
PERMISSIONS_POLICY = {
    "publickey-credentials-create": ["self"],
    "publickey-credentials-get": ["self"],
} | {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "browsing-topics",
        "camera",
        "display-capture",
        "encrypted-media",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "screen-wake-lock",
        "usb",
        "xr-spatial-tracking",
    )
}
