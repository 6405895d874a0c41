"""An auditor's pipeline reads its project's audit trail with a read token; the whole log's export stays an admin
token's (the read scope keeps the view and audit verbs: artifacts.access.roles.SCOPE_VERBS)."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from artifacts.access.roles import Role, Scope
from core.audit.recorder import audit_record
from governance.access.services import api_token_issue
from tests.artifacts.factories import ProjectFactory, grant

pytestmark = pytest.mark.django_db


def test_an_auditors_read_token_reads_its_projects_entries_and_nothing_else():
    project, other = ProjectFactory(), ProjectFactory()
    auditor = grant(Role.AUDITOR, on=project).user
    mine, theirs = audit_record("project.updated", obj=project), audit_record("project.updated", obj=other)
    _, plaintext = api_token_issue(user=auditor, name="siem", lifetime=timedelta(days=1), scope=Scope.READ)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")

    assert client.get(reverse("api:auditentry-detail", kwargs={"seq": mine.seq})).status_code == 200
    assert client.get(reverse("api:auditentry-detail", kwargs={"seq": theirs.seq})).status_code == 404
    listed = client.get(reverse("api:auditentry-list"), {"project": project.slug})
    assert listed.status_code == 200
    assert mine.seq in [entry["seq"] for entry in listed.json()["results"]]
    # Its export holds the entries it audits, never the whole log (that takes the log-wide permission and an admin
    # token restricted to no project).
    export = client.get(reverse("api:auditentry-export"))
    assert export.status_code == 200
    lines = [json.loads(line) for line in b"".join(export.streaming_content).decode().splitlines() if line]
    seqs = [line["entry"]["seq"] for line in lines if "entry" in line]
    assert mine.seq in seqs
    assert theirs.seq not in seqs
