"""Background work: in-process by default, Redis-backed workers and beat when a broker is named."""

from config.settings.env import env_int, env_str

# With no broker a fresh machine still works: tasks run in-process, right after the commit that queued them
# (the in-memory transport is never used then; it only keeps kombu from guessing a broker on localhost).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "memory://"
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL == "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Every task is routed by name, so an operator can move one to its own queue and workers here.
CELERY_TASK_ROUTES = {"artifacts.tasks.*": {"queue": "default"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Unacknowledged tasks are redelivered after this long; it must outlast the longest verification.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("PROVENANT_CELERY_VISIBILITY_TIMEOUT", 6 * 3600)}
CELERY_TIMEZONE = "UTC"
