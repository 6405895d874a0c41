"""Background work: in-process by default, Redis-backed workers and beat when a broker is named."""

from django.core.exceptions import ImproperlyConfigured

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
# A task is acknowledged when it ends, so a worker that dies mid-task leaves its message unacknowledged, and
# Redis hands it to another worker once this long has passed since it was taken. It must outlast the longest
# verification (the largest blob over the slowest read from storage): a shorter one would start a second copy
# of a verification still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("PROVENANT_CELERY_VISIBILITY_TIMEOUT", 6 * 3600)}
CELERY_TIMEZONE = "UTC"


def _positive(name: str, default: int) -> int:
    value = env_int(name, default)
    if value < 1:
        raise ImproperlyConfigured(f"{name}={value} must be a positive whole number.")
    return value


# The scrub: every interval, beat queues re-verification of the stored blobs proved least recently, up to this
# many bytes, so the whole store is re-proved about every (store size / bytes per run) intervals.
PROVENANT_SCRUB_INTERVAL_SECONDS = _positive("PROVENANT_SCRUB_INTERVAL_SECONDS", 3600)
PROVENANT_SCRUB_BYTES_PER_RUN = _positive("PROVENANT_SCRUB_BYTES_PER_RUN", 50 * 1024**3)
CELERY_BEAT_SCHEDULE = {
    "scrub-blobs": {
        "task": "artifacts.tasks.scrub_blobs",
        "schedule": PROVENANT_SCRUB_INTERVAL_SECONDS,
        "kwargs": {"byte_budget": PROVENANT_SCRUB_BYTES_PER_RUN},
        # A run no worker started within its interval is dropped: the next one chooses the same blobs, and runs
        # piled up during an outage would only queue the same verifications again.
        "options": {"expires": PROVENANT_SCRUB_INTERVAL_SECONDS},
    },
    # Abandoned upload sessions expire after PROVENANT_UPLOAD_SESSION_TTL_SECONDS; this removes them and their
    # partial data (and any partial data of an upload whose process died).
    "expire-upload-sessions": {
        "task": "artifacts.tasks.expire_upload_sessions",
        "schedule": 900,
        "options": {"expires": 900},
    },
}
