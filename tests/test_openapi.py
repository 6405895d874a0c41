"""The API describes itself, and its docs work offline."""

import re

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_lists_every_resource(api):
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/v1/projects/",
        "/api/v1/datasets/",
        "/api/v1/dataset-versions/",
        "/api/v1/runs/",
        "/api/v1/artifacts/",
        "/api/v1/artifact-versions/",
        "/api/v1/artifact-versions/{id}/download/",
        "/api/v1/lineage/{node_type}/{node_id}/",
        "/api/v1/projects/{slug}/blobs/{digest}",
        "/api/v1/audit/entries/",
        "/api/v1/audit/entries/{seq}/proof/",
        "/api/v1/audit/entries/export/",
        "/api/v1/audit/tree-heads/",
        "/api/v1/audit/tree-heads/consistency/",
        "/api/v1/audit/export/",
        "/api/v1/audit/public-key/",
        "/api/v1/webhooks/endpoints/",
        "/api/v1/webhooks/endpoints/{id}/",
        "/api/v1/webhooks/endpoints/{id}/rotate-secret/",
        "/api/v1/webhooks/endpoints/{id}/test/",
        "/api/v1/webhooks/deliveries/",
        "/api/v1/webhooks/deliveries/{id}/",
        "/api/v1/webhooks/deliveries/{id}/resend/",
        "/api/v1/webhooks/event-types/",
        "/api/v1/models/",
        "/api/v1/models/{id}/",
        "/api/v1/models/{id}/aliases/",
        "/api/v1/models/{id}/aliases/{alias}/",
        "/api/v1/models/{id}/stage-history/",
        "/api/v1/models/{id}/stages/",
        "/api/v1/models/{id}/rollback/",
        "/api/v1/model-versions/",
        "/api/v1/model-versions/{id}/",
        "/api/v1/promotions/",
        "/api/v1/promotions/awaiting-me/",
        "/api/v1/promotions/{id}/",
        "/api/v1/promotions/{id}/approve/",
        "/api/v1/promotions/{id}/reject/",
        "/api/v1/promotions/{id}/withdraw/",
        "/api/v1/promotions/{id}/apply/",
        "/api/v1/promotion-policies/",
        "/api/v1/promotion-policies/{id}/",
        "/api/v1/promotion-policies/current/",
    ]:
        assert path in paths, path


def test_interactive_docs_load_every_asset_from_this_server(client, user):
    client.force_login(user)
    html = client.get("/api/v1/docs/").content.decode()
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert sources
    assert all(not s.startswith(("http://", "https://", "//")) for s in sources), sources


def test_schema_is_valid_without_warnings(tmp_path):
    """What `spectacular --validate --fail-on-warn` checks: a warning means a client generator guesses."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
