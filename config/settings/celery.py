"""Background work: in-process by default, Redis-backed workers and beat when a broker is named."""

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.settings.env import VAR_DIR, env_int, env_positive_int, env_str
from config.settings.webhooks import PROVENANT_WEBHOOK_RELAY_INTERVAL_SECONDS

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
CELERY_TASK_ROUTES = {"artifacts.tasks.*": {"queue": "default"}, "governance.*": {"queue": "default"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes every database connection around each task unless this is set; set, it closes them
# only every this many tasks, and config/celery.py closes what Django itself would (CONN_MAX_AGE, a broken or
# unhealthy connection) around each task instead. A new connection per task was most of a webhook delivery's time.
CELERY_DB_REUSE_MAX = 10_000
# A task is acknowledged when it ends, so a worker that dies mid-task leaves its message unacknowledged, and
# Redis hands it to another worker once this long has passed since it was taken. It must outlast the longest
# verification (the largest blob over the slowest read from storage): a shorter one would start a second copy
# of a verification still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("PROVENANT_CELERY_VISIBILITY_TIMEOUT", 6 * 3600)}
CELERY_TIMEZONE = "UTC"
# Beat keeps its schedule's state (when each entry last ran) in a file: under var/, the one folder the systemd units
# let the services write (deploy/systemd), rather than in the working directory, which is the read-only checkout.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")


_CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def env_crontab(name: str, default: str) -> crontab:
    """A schedule written as a crontab line, "minute hour day-of-month month day-of-week", in UTC."""
    raw = env_str(name) or default
    fields = raw.split()
    example = f'e.g. "{default}"'
    if len(fields) != len(_CRONTAB_FIELDS):
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a crontab: give five fields, minute hour day-of-month month day-of-week "
            f"({example})."
        )
    try:
        return crontab(**dict(zip(_CRONTAB_FIELDS, fields, strict=True)))
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a valid crontab: {error} ({example}).") from None


# The scrub: every interval, beat queues re-verification of the stored blobs proved least recently, up to this
# many bytes, so the whole store is re-proved about every (store size / bytes per run) intervals.
PROVENANT_SCRUB_INTERVAL_SECONDS = env_positive_int("PROVENANT_SCRUB_INTERVAL_SECONDS", 3600)
PROVENANT_SCRUB_BYTES_PER_RUN = env_positive_int("PROVENANT_SCRUB_BYTES_PER_RUN", 50 * 1024**3)
# Quarterly by default: 06:00 UTC on the first day of January, April, July and October.
PROVENANT_ACCESS_REVIEW_SCHEDULE = env_crontab("PROVENANT_ACCESS_REVIEW_SCHEDULE", "0 6 1 1,4,7,10 *")
# Tree heads of the audit log are signed on this schedule (crontab, UTC) whenever the log has grown since the last.
PROVENANT_AUDIT_TREE_HEAD_SCHEDULE = env_crontab("PROVENANT_AUDIT_TREE_HEAD_SCHEDULE", "*/10 * * * *")
# Retention rules are run on this schedule (crontab, UTC): a plan per project with rules, applied at once where the
# project opted in. Daily at 03:30 by default, when stores are quiet.
PROVENANT_RETENTION_SCHEDULE = env_crontab("PROVENANT_RETENTION_SCHEDULE", "30 3 * * *")
# The e-mail digest of what awaits each person (crontab, UTC): daily at 07:00 by default, before the working day.
PROVENANT_DIGEST_SCHEDULE = env_crontab("PROVENANT_DIGEST_SCHEDULE", "0 7 * * *")
# Storage snapshots (crontab, UTC): hourly by default, a few minutes past the hour.
PROVENANT_STORAGE_SNAPSHOT_SCHEDULE = env_crontab("PROVENANT_STORAGE_SNAPSHOT_SCHEDULE", "7 * * * *")
# Format scans (governance/supplychain): every interval, beat queues scans of the next this many blobs with no scan by
# the current scanner version, so an upgraded scanner rescans the store in bounded batches.
PROVENANT_RESCAN_INTERVAL_SECONDS = env_positive_int("PROVENANT_RESCAN_INTERVAL_SECONDS", 3600)
PROVENANT_RESCAN_BATCH_SIZE = env_positive_int("PROVENANT_RESCAN_BATCH_SIZE", 500)
CELERY_BEAT_SCHEDULE = {
    "scrub-blobs": {
        "task": "artifacts.tasks.scrub_blobs",
        "schedule": PROVENANT_SCRUB_INTERVAL_SECONDS,
        "kwargs": {"byte_budget": PROVENANT_SCRUB_BYTES_PER_RUN},
        # A run no worker started within its interval is dropped: the next one chooses the same blobs, and runs
        # piled up during an outage would only queue the same verifications again.
        "options": {"expires": PROVENANT_SCRUB_INTERVAL_SECONDS},
    },
    # Each version deletion queues its blob's collection; this sweep removes the bytes of those a broker outage lost.
    "collect-garbage": {
        "task": "artifacts.tasks.collect_garbage",
        "schedule": 3600,
        "options": {"expires": 3600},
    },
    # Scans blobs the current scanner has not: never scanned (a broker outage lost the scan), or by an older version.
    "rescan-outdated-blobs": {
        "task": "governance.supplychain.tasks.rescan_outdated_blobs",
        "schedule": PROVENANT_RESCAN_INTERVAL_SECONDS,
        "kwargs": {"batch_size": PROVENANT_RESCAN_BATCH_SIZE},
        # A run no worker started within its interval is dropped: the next one chooses the same blobs.
        "options": {"expires": PROVENANT_RESCAN_INTERVAL_SECONDS},
    },
    # Abandoned upload sessions expire after PROVENANT_UPLOAD_SESSION_TTL_SECONDS; this removes them and their
    # partial data (and any partial data of an upload whose process died).
    "expire-upload-sessions": {
        "task": "artifacts.tasks.expire_upload_sessions",
        "schedule": 900,
        "options": {"expires": 900},
    },
    # Hands due webhook deliveries to the workers: retries, and events written while the broker was down.
    "relay-webhook-deliveries": {
        "task": "governance.webhooks.tasks.relay_webhook_deliveries",
        "schedule": PROVENANT_WEBHOOK_RELAY_INTERVAL_SECONDS,
        "options": {"expires": PROVENANT_WEBHOOK_RELAY_INTERVAL_SECONDS},
    },
    # Signs a tree head of the audit log when it has grown (see governance/*/tasks.py).
    "sign-audit-tree-head": {
        "task": "governance.audit.tasks.sign_audit_tree_head",
        "schedule": PROVENANT_AUDIT_TREE_HEAD_SCHEDULE,
        "options": {"expires": 600},
    },
    # Closes promotion requests nobody decided within their policy's time to live (acting on one closes it too).
    "expire-promotion-requests": {
        "task": "governance.registry.tasks.expire_promotion_requests",
        "schedule": 600,
        "options": {"expires": 600},
    },
    # Takes a storage snapshot of every project not yet snapshotted this hour (the dashboard, the lifecycle pages and
    # the storage API read the newest), and prunes hourly snapshots after 48 hours (the daily ones stay).
    "take-storage-snapshots": {
        "task": "governance.lifecycle.tasks.take_storage_snapshots",
        "schedule": PROVENANT_STORAGE_SNAPSHOT_SCHEDULE,
        # A run no worker started within the hour is dropped: the next one snapshots the same projects.
        "options": {"expires": 3600},
    },
    # Opens an access review of every project's grants, unless the one it opened last is still open.
    "open-access-reviews": {
        "task": "governance.access.tasks.open_scheduled_access_reviews",
        "schedule": PROVENANT_ACCESS_REVIEW_SCHEDULE,
    },
    # E-mails each person with something waiting for them (governance/portal/tasks.py), at most once a day; a run no
    # worker started within the hour is dropped, and the next day's covers what still waits.
    "send-inbox-digests": {
        "task": "governance.portal.tasks.send_inbox_digests",
        "schedule": PROVENANT_DIGEST_SCHEDULE,
        "options": {"expires": 3600},
    },
    # Plans every project's retention (governance/lifecycle/tasks.py); a run missed during an outage is dropped: the
    # next one plans from the rules and versions as they stand then.
    "plan-retention": {
        "task": "governance.lifecycle.tasks.plan_retention",
        "schedule": PROVENANT_RETENTION_SCHEDULE,
        "options": {"expires": 3600},
    },
}
