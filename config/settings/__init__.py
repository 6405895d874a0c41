"""Provenant's one settings entry point. Every value comes from the environment (see README's table);
the per-concern modules below read their own variables."""

import dj_database_url

from config.settings.accounts import *  # noqa: F403
from config.settings.attestations import *  # noqa: F403
from config.settings.audit import *  # noqa: F403
from config.settings.celery import *  # noqa: F403
from config.settings.email import *  # noqa: F403
from config.settings.env import (  # noqa: F401 (DEBUG is a setting)
    BASE_DIR,
    DEBUG,
    VAR_DIR,
    env_int,
    env_positive_int,
    env_str,
)
from config.settings.logs import *  # noqa: F403
from config.settings.operations import *  # noqa: F403
from config.settings.portal import *  # noqa: F403
from config.settings.security import *  # noqa: F403
from config.settings.storages import *  # noqa: F403
from config.settings.webhooks import *  # noqa: F403

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "axes",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "csp",
    "core",
    "artifacts",
    "governance.supplychain",
    "governance.registry",
    "governance.access",
    "governance.audit",
    "governance.webhooks",
    "governance.lifecycle",
    "governance.portal",
]

MIDDLEWARE = [
    # First, so a request's time includes every other middleware's (core/metrics.py).
    "core.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # Before anything reads the query string or resolves the path: NUL characters, a missing trailing slash.
    "core.api.middleware.ApiRequestGuard",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.http.PrivateResponsesMiddleware",
    "core.audit.context.AuditContextMiddleware",
    # After the audit context, so that a session it ends is logged with the request's id and address.
    "core.sessions.SessionTimeoutMiddleware",
    # After the request id is set: binds it (and later the user, token, project) to every log line of the request.
    "core.logs.RequestLogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Turns a step-up refusal (allauth's ReauthenticationRequired) into the re-authentication page.
    "allauth.account.middleware.AccountMiddleware",
    # After the session's user is known: sends those who must use a second factor and have none to enrol.
    "artifacts.access.mfa.MfaEnrolmentMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Messages live in the session, never in a cookie: the admin shows a new webhook secret once as a message.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'provenant.sqlite3'}",
        conn_max_age=env_int("PROVENANT_DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE takes SQLite's write lock up front, so two writers queue instead of failing
    # half-way with "database is locked"; WAL lets readers go on while one writes.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username and address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    # ModelBackend, refusing service accounts (they sign in only with tokens).
    "governance.access.backends.InteractiveLoginBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# Anonymous requests are refused before any permission check, so guardian needs no "AnonymousUser" row (which
# would otherwise appear among the users that access reviews and the admin list).
ANONYMOUS_USER_NAME = None

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_str("DJANGO_STATIC_ROOT") or str(VAR_DIR / "static")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.access.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["artifacts.access.api_permission.AuthenticatedWithinTokenScope"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.NewestFirstCursorPagination",
    # Adds what every operation shares to drf-spectacular's description: error answers, refused unknown fields,
    # the constraints the server enforces (core/api/schema.py).
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.ProvenantAutoSchema",
    "EXCEPTION_HANDLER": "core.api.exceptions.exception_handler",
    # Request bodies are JSON, as the schema says: a form field's text would be parsed again by each JSON field,
    # past the body's checks (NUL, depth), and a contract that says JSON should not quietly take something else.
    # Any other content type is a 415 saying what to send (see core/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.JSONParser"],
    # JSON out, errors included, whatever the client's Accept header asks: the interactive docs at /api/v1/docs/
    # are the way to explore the API in a browser.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "PAGE_SIZE": 50,
    # No OPTIONS metadata: the OpenAPI schema describes every operation, OPTIONS is none of them (405, as for any
    # method an endpoint does not offer), and DRF's metadata crashes on views that switch serializers by method.
    "DEFAULT_METADATA_CLASS": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Provenant API",
    "DESCRIPTION": "Content-addressed artifact storage, lineage and governance for ML teams.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a `state`; each enum gets a name of its own in the schema.
    "ENUM_NAME_OVERRIDES": {
        "WebhookDeliveryStateEnum": "governance.webhooks.models.WebhookDelivery.State",
        "ModelStageEnum": "governance.registry.models.Stage",
        "TargetStageEnum": "governance.registry.models.TARGET_STAGE_CHOICES",
        "PromotionKindEnum": "governance.registry.models.PromotionRequest.Kind",
        "PromotionStateEnum": "governance.registry.models.PromotionRequest.State",
        "ArtifactKindEnum": "artifacts.models.artifacts.Artifact.Kind",
        "UploadSessionStateEnum": "artifacts.models.uploads.UploadSession.State",
        "RetentionPlanStateEnum": "governance.lifecycle.models.RetentionPlan.State",
        "RetentionPlanItemStateEnum": "governance.lifecycle.models.RetentionPlanItem.State",
        "RetentionPlanItemActionEnum": "governance.lifecycle.models.RetentionPlanItem.Action",
        # Two vocabularies, named apart: what the audit log records, and what webhooks announce.
        "AuditActionEnum": "core.audit.actions.AuditAction",
        "EventTypeEnum": "core.events.EventType",
        "SubscribableEventTypeEnum": "core.events.SUBSCRIBABLE_TYPES",
        "RunStatusEnum": "artifacts.models.runs.Run.Status",
        "TokenScopeEnum": "artifacts.access.roles.Scope",
        "TokenStatusEnum": "governance.access.models.tokens.TOKEN_STATUSES",
    },
    # The API's bodies are JSON: DRF also parses forms, but a form cannot carry the objects and lists most bodies
    # hold, so the schema offers clients JSON alone (byte uploads declare application/octet-stream themselves).
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.add_head_operations",
    ],
}

# API tokens: how long a token issued without an explicit lifetime stays valid.
PROVENANT_TOKEN_DEFAULT_DAYS = env_int("PROVENANT_TOKEN_DEFAULT_DAYS", 90)

# Access reviews: how long reviewers have by default, and how long without activity in a project (runs,
# versions, uploads) before a grant there is flagged as unused. The schedule is in config/settings/celery.py.
PROVENANT_ACCESS_REVIEW_DUE_DAYS = env_positive_int("PROVENANT_ACCESS_REVIEW_DUE_DAYS", 14)
PROVENANT_ACCESS_REVIEW_UNUSED_DAYS = env_positive_int("PROVENANT_ACCESS_REVIEW_UNUSED_DAYS", 90)

for _folder in ("blobs", "media"):
    (VAR_DIR / _folder).mkdir(parents=True, exist_ok=True)
