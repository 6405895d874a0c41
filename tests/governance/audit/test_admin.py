"""The audit log in the admin: read-only, filtered to what the staff member may audit, and cheap to page through."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from artifacts.access.roles import Role
from core.audit.recorder import audit_record, tree_head_sign
from core.models import AuditEntry, SignedTreeHead
from tests.artifacts.factories import ArtifactFactory, ProjectFactory, UserFactory, grant

pytestmark = pytest.mark.django_db

ENTRIES = reverse("admin:core_auditentry_changelist")
HEADS = reverse("admin:core_signedtreehead_changelist")


def entry_url(entry: AuditEntry, view: str = "change") -> str:
    return reverse(f"admin:core_auditentry_{view}", args=[entry.seq])


def listed(response) -> set[int]:
    return {entry.seq for entry in response.context["cl"].result_list}


def test_changelist_and_entry_page_render_with_changes_pretty_printed(admin_client):
    project = ProjectFactory(slug="churn")
    entry = audit_record("project.updated", obj=project, changes={"name": ["Old", "New"]})

    changelist = admin_client.get(ENTRIES)
    page = admin_client.get(entry_url(entry))

    assert changelist.status_code == page.status_code == 200
    assert entry.seq in listed(changelist)
    assert "project.updated" in changelist.content.decode()
    body = page.content.decode()
    assert "<pre>{\n  &quot;name&quot;: [\n    &quot;Old&quot;," in body
    assert bytes(entry.leaf_hash).hex() in body


def test_entries_cannot_be_added_changed_or_deleted(admin_client):
    entry = audit_record("project.updated", obj=ProjectFactory())

    assert admin_client.get(reverse("admin:core_auditentry_add")).status_code == 403
    assert admin_client.post(entry_url(entry), {"action": "forged"}).status_code == 403
    assert admin_client.post(entry_url(entry, "delete"), {"post": "yes"}).status_code == 403
    assert 'name="_save"' not in admin_client.get(entry_url(entry)).content.decode()
    assert 'name="action"' not in admin_client.get(ENTRIES).content.decode()  # no bulk actions
    assert AuditEntry.objects.get(seq=entry.seq).action == "project.updated"


def test_tree_heads_are_shown_read_only(admin_client):
    audit_record("project.updated", obj=ProjectFactory())
    head = tree_head_sign()

    changelist = admin_client.get(HEADS)

    assert changelist.status_code == 200
    assert head.root_hash in changelist.content.decode()
    assert admin_client.get(reverse("admin:core_signedtreehead_add")).status_code == 403
    delete = reverse("admin:core_signedtreehead_delete", args=[head.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert SignedTreeHead.objects.filter(pk=head.pk).exists()


def test_a_staff_auditor_sees_only_the_entries_they_may_audit(client):
    project, other = ProjectFactory(), ProjectFactory()
    staff = UserFactory(is_staff=True)
    grant(Role.AUDITOR, on=project, user=staff)
    mine = audit_record("project.updated", obj=project)
    theirs = audit_record("project.updated", obj=other)
    secret = audit_record("artifact.updated", obj=ArtifactFactory(project=project, restricted=True))
    client.force_login(staff)

    response = client.get(ENTRIES)

    assert response.status_code == 200
    assert mine.seq in listed(response)
    assert not {theirs.seq, secret.seq} & listed(response)
    assert client.get(entry_url(theirs)).status_code == 302  # the admin's answer for an object not in the queryset


def test_staff_without_audit_rights_do_not_see_the_log(client):
    staff = UserFactory(is_staff=True)
    grant(Role.MAINTAINER, on=ProjectFactory(), user=staff)
    client.force_login(staff)

    assert client.get(ENTRIES).status_code == 403


def test_filters_and_search(admin_client):
    project = ProjectFactory(slug="churn")
    downloaded = audit_record("blob.downloaded", obj=ArtifactFactory(project=project, name="classifier"))
    updated = audit_record("project.updated", obj=project)

    by_action = admin_client.get(ENTRIES, {"action": "blob.downloaded"})
    by_search = admin_client.get(ENTRIES, {"q": "classifier"})

    assert downloaded.seq in listed(by_action)
    assert updated.seq not in listed(by_action)
    assert listed(by_search) == {downloaded.seq}


def test_paging_does_not_count_the_whole_log(admin_client):
    project = ProjectFactory()
    for _ in range(5):
        audit_record("project.updated", obj=project)
    admin_client.get(ENTRIES)

    with CaptureQueriesContext(connection) as unfiltered:
        response = admin_client.get(ENTRIES)
    with CaptureQueriesContext(connection) as filtered:
        admin_client.get(ENTRIES, {"action": "project.updated"})

    assert response.context["cl"].result_count == AuditEntry.objects.count()

    def entry_counts(queries: CaptureQueriesContext) -> list[str]:
        sqls = [query["sql"] for query in queries.captured_queries]
        return [sql for sql in sqls if "COUNT(" in sql.upper() and AuditEntry._meta.db_table in sql]

    assert entry_counts(unfiltered) == []  # the log's size is its head row
    assert entry_counts(filtered)
    assert all(" LIMIT " in sql.upper() for sql in entry_counts(filtered)), entry_counts(filtered)
