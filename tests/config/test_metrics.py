"""GET /metrics: refused to the public, and its values move when work happens (uploads, downloads, verification,
webhook backlog, the audit log and its signed tree heads, promotion requests)."""

import json
import re
from pathlib import Path

import pytest
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from artifacts.access.roles import Role
from artifacts.models import Blob
from artifacts.services.integrity import blob_verify
from core.audit.recorder import tree_head_sign
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, BlobFactory, grant
from tests.governance.factories import PromotionRequestFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token-" + "m" * 20
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def scrape(settings):
    settings.PROVENANT_METRICS_TOKEN = TOKEN

    def scrape() -> dict[str, float]:
        response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200, response.content
        samples = {}
        for family in text_string_to_metric_families(response.content.decode()):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()) if k != "le")
                if "le" not in sample.labels:
                    samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    return scrape


def test_with_no_token_and_no_allowlist_there_is_no_metrics_page(settings):
    settings.PROVENANT_METRICS_TOKEN = ""
    settings.PROVENANT_METRICS_ALLOWED_NETWORKS = []
    assert Client().get("/metrics").status_code == 404


def test_a_scrape_without_the_token_or_from_outside_the_allowlist_is_refused(settings):
    settings.PROVENANT_METRICS_TOKEN = TOKEN
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200

    from ipaddress import ip_network

    settings.PROVENANT_METRICS_TOKEN = ""
    settings.PROVENANT_METRICS_ALLOWED_NETWORKS = [ip_network("10.0.0.0/8")]
    assert Client().get("/metrics").status_code == 403  # the test client comes from 127.0.0.1
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200


def test_uploads_downloads_and_verification_move_the_values(scrape, api, user):
    before = scrape()
    assert before["provenant_blobs_pending_verification"] == 0

    data = b"weights " * 1000
    blob = BlobFactory(content=data)  # its verification is queued on commit, which a test never reaches
    after_upload = scrape()
    assert after_upload["provenant_uploaded_bytes_total"] - before.get("provenant_uploaded_bytes_total", 0) == len(data)
    assert after_upload["provenant_blobs_pending_verification"] == 1
    assert after_upload["provenant_verification_lag_seconds"] >= 0

    blob_verify(blob=blob)
    verified = scrape()
    assert verified["provenant_blobs_pending_verification"] == 0
    assert verified["provenant_verification_lag_seconds"] == 0
    assert Blob.objects.get(pk=blob.pk).state == Blob.State.VERIFIED

    project = blob.project_links.get().project
    grant(Role.VIEWER, on=project, user=user)
    response = api.get(f"/api/v1/projects/{project.slug}/blobs/{blob.prefixed_digest}", HTTP_RANGE="bytes=0-99")
    assert response.status_code == 206
    b"".join(response.streaming_content)
    downloaded = scrape()
    key = 'provenant_downloaded_bytes_total{via="server"}'
    assert downloaded[key] - verified.get(key, 0) == 100
    view = [name for name in downloaded if name.startswith("provenant_http_request_duration_seconds_count{")]
    assert any('status="206"' in name for name in view), view


def test_webhook_backlog_audit_tail_and_promotion_requests_move(scrape, receiver):
    artifact = ArtifactFactory()
    WebhookEndpointFactory(project=artifact.project, url=receiver.url)
    start = scrape()
    assert start["provenant_webhook_deliveries_pending"] == 0

    ArtifactVersionFactory(artifact=artifact)  # its delivery is attempted after a commit, which a test never reaches
    grown = scrape()
    assert grown["provenant_webhook_deliveries_pending"] == 1
    assert grown["provenant_webhook_backlog_age_seconds"] >= 0
    assert grown["provenant_audit_log_entries"] > start["provenant_audit_log_entries"]
    assert grown["provenant_audit_unsigned_entries"] == grown["provenant_audit_log_entries"]

    tree_head_sign()
    signed = scrape()
    assert signed["provenant_audit_unsigned_entries"] == 0
    assert signed["provenant_audit_tree_head_age_seconds"] < 60

    PromotionRequestFactory()
    assert scrape()["provenant_promotion_requests_open"] == signed["provenant_promotion_requests_open"] + 1


#: Names a query uses that are PromQL's, not metrics.
PROMQL_WORDS = {
    "sum",
    "by",
    "rate",
    "histogram_quantile",
    "clamp_min",
    "and",
    "or",
    "le",
    "view",
    "via",
    "outcome",
    "status",
    "first",
    "value",
    "query",
    "with",
    "end",
    "humanizeDuration",
}


def metric_names(expression: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', "", re.sub(r"\[[^\]]*\]", "", expression))
    return {word for word in re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", without_strings) if word not in PROMQL_WORDS}


def test_the_dashboard_and_alert_rules_use_only_metrics_the_endpoint_exports(scrape):
    ArtifactVersionFactory()  # an upload, and
    Client().get("/api/v1/projects/")  # a request, so every family has samples
    scrape()
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    exported = {
        sample.name for family in text_string_to_metric_families(response.content.decode()) for sample in family.samples
    }

    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())["groups"][0]["rules"]
    alerts = [rule["expr"] for rule in rules]
    assert {"ProvenantVerificationLag", "ProvenantWebhookBacklog", "ProvenantUnsignedAuditTail"} <= {
        rule["alert"] for rule in rules
    }

    used = set().union(*(metric_names(query) for query in queries + alerts))
    assert used, "no metric found in the documents"
    assert used <= exported, sorted(used - exported)


#: Two "workers" in turn, as granian's forked processes would: each counts an upload into PROMETHEUS_MULTIPROC_DIR,
#: then a third process's scrape must show both.
MULTIPROCESS_WORKER = """
import django, sys
django.setup()
from core.metrics import UPLOADED_BYTES
UPLOADED_BYTES.inc(int(sys.argv[1]))
"""
MULTIPROCESS_SCRAPE = """
import django
django.setup()
from prometheus_client import generate_latest
from config.metrics import process_registry
print([line for line in generate_latest(process_registry()).decode().splitlines()
       if line.startswith("provenant_uploaded_bytes_total")][0])
"""


def test_in_multiprocess_mode_a_scrape_sums_every_workers_counts(tmp_path):
    import os
    import subprocess
    import sys

    env = os.environ | {"DJANGO_SETTINGS_MODULE": "tests.settings", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[2]

    def run(code: str, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", code, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout.strip()

    run(MULTIPROCESS_WORKER, "1000")
    run(MULTIPROCESS_WORKER, "234")
    assert run(MULTIPROCESS_SCRAPE) == "provenant_uploaded_bytes_total 1234.0"
