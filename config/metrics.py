"""GET /metrics: Prometheus exposition of the process's instruments (core/metrics.py) and of gauges read from the
database at scrape time (ProvenantCollector), for operators' Prometheus only.

The collector sits here, in the top layer, because it reads every area's models. Each gauge is one aggregate over an
index (or the audit log's one-row head, never COUNT(*) of the log), so a scrape every 15 s costs a few milliseconds.
"""

import hmac
import ipaddress
import os
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from artifacts.models import Blob
from core.models import AuditLogHead, SignedTreeHead
from governance.registry.models import PromotionRequest
from governance.webhooks.models import WebhookAttempt, WebhookDelivery

#: How many of the newest webhook attempts the outcome gauge reads: a failure rate over recent work, by primary key.
RECENT_WEBHOOK_ATTEMPTS = 200


def _age(moment, now) -> float:
    return max((now - moment).total_seconds(), 0.0) if moment is not None else 0.0


class ProvenantCollector:
    """Backlogs and lags, read when Prometheus scrapes: they are facts of the database, the same whichever worker
    answers, so they are never kept in the process (nor in PROMETHEUS_MULTIPROC_DIR)."""

    def describe(self) -> list[Metric]:
        return []  # no eager collect() at registration: the database may not be there yet

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        stored = Blob.objects.filter(collected_at__isnull=True)
        pending = stored.filter(state=Blob.State.PENDING).aggregate(count=Count("id"), oldest=Min("created_at"))
        yield GaugeMetricFamily(
            "provenant_blobs_pending_verification", "Stored blobs whose bytes were not proved yet.", pending["count"]
        )
        yield GaugeMetricFamily(
            "provenant_verification_lag_seconds",
            "Age of the oldest blob pending verification (0 when none waits).",
            _age(pending["oldest"], now),
        )
        oldest_proof = (
            stored.filter(state=Blob.State.VERIFIED).order_by("verified_at", "id").values_list("verified_at", flat=True)
        ).first()  # index blob_scrub_order: the blob the scrub proves next
        yield GaugeMetricFamily(
            "provenant_scrub_oldest_proof_age_seconds",
            "Since the least recently proved verified blob was proved: the scrub's progress through the store "
            "(it stays under a full cycle while the scrub keeps up).",
            _age(oldest_proof, now),
        )
        yield GaugeMetricFamily(
            "provenant_blobs_corrupt",
            "Blobs quarantined by a failed verification.",
            Blob.objects.filter(state=Blob.State.CORRUPT).count(),
        )

        deliveries = WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING).aggregate(
            count=Count("id"), oldest=Min("created_at")
        )
        yield GaugeMetricFamily(
            "provenant_webhook_deliveries_pending",
            "Webhook deliveries not yet succeeded or given up.",
            deliveries["count"],
        )
        yield GaugeMetricFamily(
            "provenant_webhook_backlog_age_seconds",
            "Age of the oldest pending webhook delivery (0 when none waits).",
            _age(deliveries["oldest"], now),
        )
        recent = GaugeMetricFamily(
            "provenant_webhook_recent_attempts",
            f"Outcomes of the newest {RECENT_WEBHOOK_ATTEMPTS} webhook attempts (failure rate = failed / all).",
            labels=["outcome"],
        )
        newest = WebhookAttempt.objects.order_by("-id").values_list("outcome", flat=True)[:RECENT_WEBHOOK_ATTEMPTS]
        counts = dict.fromkeys(WebhookAttempt.Outcome.values, 0)
        for outcome in newest:
            counts[outcome] = counts.get(outcome, 0) + 1
        for outcome, count in counts.items():
            recent.add_metric([outcome], count)
        yield recent

        head = AuditLogHead.objects.filter(pk=1).values_list("size", flat=True).first() or 0
        signed = (
            SignedTreeHead.objects.order_by("-tree_size", "-signed_at").values_list("tree_size", "signed_at").first()
        )
        signed_size, signed_at = signed if signed is not None else (0, None)
        yield GaugeMetricFamily("provenant_audit_log_entries", "Entries in the audit log (its tree size).", head)
        yield GaugeMetricFamily(
            "provenant_audit_unsigned_entries",
            "Audit entries recorded since the last signed tree head: the tail no signature covers yet.",
            max(head - signed_size, 0),
        )
        yield GaugeMetricFamily(
            "provenant_audit_tree_head_age_seconds",
            "Since the last tree head was signed (0 before the first).",
            _age(signed_at, now),
        )
        yield GaugeMetricFamily(
            "provenant_promotion_requests_open",
            "Promotion requests waiting for a decision.",
            PromotionRequest.objects.filter(state=PromotionRequest.State.OPEN).count(),
        )


def process_registry() -> CollectorRegistry:
    """The process's own instruments: every worker's, summed, in multi-process mode (PROMETHEUS_MULTIPROC_DIR set),
    else this process's alone (with its CPU and memory)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    scraped = CollectorRegistry()
    MultiProcessCollector(scraped)
    return scraped


def exposition() -> bytes:
    """What a scrape answers: the process instruments, then the database's gauges (a registry of their own, so
    nothing reads the database when the process registry is built)."""
    database = CollectorRegistry(auto_describe=False)
    database.register(ProvenantCollector())
    return generate_latest(process_registry()) + generate_latest(database)


def scrape_refusal(request: HttpRequest) -> HttpResponse | None:
    """None for a scraper the settings let in, else the answer: 404 when metrics are off (no token and no address
    allowlist set), so a deployment publishes nothing by default rather than an open door or a page that only says
    no; 401 without the right token; 403 from an address outside the allowlist."""
    token: str = settings.PROVENANT_METRICS_TOKEN
    networks = settings.PROVENANT_METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return HttpResponseNotFound(b"Not found.\n", content_type="text/plain")
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = HttpResponse(
                b"Send the metrics token: Authorization: Bearer <PROVENANT_METRICS_TOKEN>.\n",
                status=401,
                content_type="text/plain",
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    if networks:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            address = None
        if address is None or not any(address in network for network in networks):
            return HttpResponse(
                b"This address is not in PROVENANT_METRICS_ALLOWED_NETWORKS.\n", status=403, content_type="text/plain"
            )
    return None


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if (refusal := scrape_refusal(request)) is not None:
        return refusal
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
