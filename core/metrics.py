"""The process's own Prometheus instruments: requests, and bytes in and out (config/metrics.py serves them).

Bottom layer: any area may count here without importing upward. What is read from the database at scrape time
(backlogs, lags, the audit log's size) is a collector in config/metrics.py, the top layer, since it reads every area's
models. Under several web workers set PROMETHEUS_MULTIPROC_DIR (README, "Health and metrics"): prometheus_client then
keeps each process's values in a file there, and a scrape of any worker sums them all.
"""

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from prometheus_client import Counter, Histogram

REQUEST_SECONDS = Histogram(
    "provenant_http_request_duration_seconds",
    "Time to the response's headers (a streamed body is not included), by view name, method and status.",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPLOADED_BYTES = Counter(
    "provenant_uploaded_bytes",
    "Bytes of uploads completed and recorded (a re-upload of stored bytes counts too: the client sent them).",
)
DOWNLOADED_BYTES = Counter(
    "provenant_downloaded_bytes",
    "Bytes of blobs handed out: streamed by this server or by nginx, or a presigned S3 URL issued (`via`).",
    ["via"],
)
# Every series from the start, at 0: rate() over a series that appears with its first download misses that download.
for _via in ("server", "nginx", "presigned"):
    DOWNLOADED_BYTES.labels(via=_via)

# Probes and scrapes are polled every few seconds: timing them would bury the traffic the histogram is for.
_UNTIMED_PREFIXES = ("/health/", "/metrics")


class RequestMetricsMiddleware:
    """Times every request by the name of the view that answered it: names, never paths, so the label set stays
    small (a path holds digests and ids)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path.startswith(_UNTIMED_PREFIXES):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or "unnamed") if match is not None else "unresolved"
        REQUEST_SECONDS.labels(view=view, method=request.method, status=str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response
