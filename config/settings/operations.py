"""Running it in production: health probes and the Prometheus scrape (config/health.py, config/metrics.py)."""

from config.settings.env import env_positive_int, env_str
from config.settings.webhooks import _networks

# /metrics is answered only to a scraper that sends this token (Authorization: Bearer) and/or comes from one of these
# networks; with neither set it is a 404, so a deployment never publishes its backlogs and traffic by default.
PROVENANT_METRICS_TOKEN = env_str("PROVENANT_METRICS_TOKEN")
PROVENANT_METRICS_ALLOWED_NETWORKS = _networks("PROVENANT_METRICS_ALLOWED_NETWORKS")
# How long the readiness probe waits for the broker before it calls this worker not ready.
PROVENANT_HEALTH_BROKER_TIMEOUT_SECONDS = env_positive_int("PROVENANT_HEALTH_BROKER_TIMEOUT_SECONDS", 2)

# Load balancers probe over plain HTTP by address: no redirect to HTTPS for the probes.
SECURE_REDIRECT_EXEMPT = [r"^health/"]
