"""Logging: structured lines from every logger (Django's, Celery's, ours), as JSON or as text for a terminal.

PROVENANT_LOG_FORMAT is `json` (one JSON object a line, for a log collector) or `console` (aligned text). By default
it is `console` in the embedded debug mode (DJANGO_DEBUG=true, what `make run` uses) and `json` otherwise, as a
production deployment runs with debug off. See core/logs.py for what each line carries.
"""

from django.core.exceptions import ImproperlyConfigured

from config.settings.celery import CELERY_TASK_ALWAYS_EAGER
from config.settings.env import DEBUG, env_str
from core.logs import configure_structlog, logging_config

LOG_FORMATS = ("json", "console")
PROVENANT_LOG_FORMAT = env_str("PROVENANT_LOG_FORMAT").lower() or ("console" if DEBUG else "json")
if PROVENANT_LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(f"PROVENANT_LOG_FORMAT={PROVENANT_LOG_FORMAT!r}: use one of {', '.join(LOG_FORMATS)}.")

LOGGING = logging_config(
    log_format=PROVENANT_LOG_FORMAT,
    level=env_str("PROVENANT_LOG_LEVEL", "INFO"),
    quiet_loggers={
        # django-axes logs every sign-in at INFO; the audit log records them already, lockouts stay visible.
        "axes": {"level": "WARNING"},
        # In-process tasks would log a line per task into every command's and request's output.
        **(
            {"celery.app.trace": {"level": "WARNING"}, "kombu.connection": {"level": "ERROR"}}
            if CELERY_TASK_ALWAYS_EAGER
            else {}
        ),
    },
)
configure_structlog()
