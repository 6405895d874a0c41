"""The portal's audit pages: the explorer scoped and filtered as the API is, an entry with a proof that verifies,
the latest signed head checked on demand (and caught when forged), and the exports the standalone verifier accepts:
the explorer's filtered view, for every auditor, and the whole log for the global permission."""

import base64
import json
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from artifacts.access.roles import Role
from core.audit import signing
from core.audit import tree as audit_tree
from core.audit.recorder import AuditObject, audit_record, tree_head_sign
from core.crypto.merkle import FILTERED_EXPORT_FORMAT, leaf_hash
from core.models import AuditEntry, SignedTreeHead
from governance.portal.views.audit import PAGE_SIZE
from tests.artifacts.factories import ArtifactFactory, ProjectFactory, UserFactory, grant
from tests.governance.factories import auditor_of, global_auditor
from tools.audit_verify import verify_export, verify_filtered_export

pytestmark = pytest.mark.django_db

EXPLORER = reverse("portal:audit")
VERIFY = reverse("portal:audit-verify")
EXPORT = reverse("portal:audit-export")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def record(action: str, obj, *, actor=None, at: datetime | None = None, changes: dict | None = None) -> AuditEntry:
    if at is None:
        return audit_record(action, obj=obj, actor=actor, changes=changes)
    with mock.patch("django.utils.timezone.now", return_value=at):
        return audit_record(action, obj=obj, actor=actor, changes=changes)


def entry_link(entry: AuditEntry) -> str:
    return f'href="{reverse("portal:audit-entry", args=[entry.seq])}"'


def listed(response) -> list[int]:
    assert response.status_code == 200
    return [entry.seq for entry in response.context["page"].rows]


# Who may look ------------------------------------------------------------------------------------------------


def test_signing_in_is_required(client):
    for url in (EXPLORER, VERIFY, EXPORT, reverse("portal:audit-entry", args=[0])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("portal:login"))


@pytest.mark.parametrize("role", [None, Role.VIEWER, Role.CONTRIBUTOR, Role.MAINTAINER, Role.REVIEWER])
def test_someone_who_audits_nothing_gets_404_on_every_audit_page(client, role):
    project = ProjectFactory()
    entry = record("project.updated", project)
    person = UserFactory() if role is None else grant(role, on=project).user
    client.force_login(person)

    for url in (EXPLORER, VERIFY, EXPORT, reverse("portal:audit-entry", args=[entry.seq])):
        assert client.get(url).status_code == 404
    assert client.post(VERIFY).status_code == 404
    assert 'href="/audit/"' not in client.get(reverse("portal:dashboard")).content.decode()


def test_a_project_auditor_sees_only_that_projects_entries(client):
    project, other = ProjectFactory(), ProjectFactory()
    mine = record("project.updated", project)
    theirs = record("project.updated", other)
    client.force_login(auditor_of(project))

    response = client.get(EXPLORER)

    assert mine.seq in listed(response)
    assert theirs.seq not in listed(response)
    assert entry_link(theirs) not in response.content.decode()
    assert client.get(reverse("portal:audit-entry", args=[theirs.seq])).status_code == 404
    assert client.get(reverse("portal:audit-entry", args=[mine.seq])).status_code == 200


def test_the_global_permission_sees_every_entry(client):
    made = [record("project.updated", ProjectFactory()).seq for _ in range(3)]
    client.force_login(global_auditor())

    assert set(made) <= set(listed(client.get(EXPLORER)))


# Filters and pages -------------------------------------------------------------------------------------------


def test_filters_by_object_actor_action_project_and_time(client):
    project, other = ProjectFactory(slug="churn"), ProjectFactory(slug="fraud")
    model = ArtifactFactory(project=project)
    dana = UserFactory(username="dana")
    early = record("project.updated", project, actor=dana, at=T0)
    late = record("artifact.updated", model, actor=dana, at=T0.replace(hour=14))
    system = record("project.updated", project, at=T0.replace(hour=13))
    elsewhere = record("project.updated", other, actor=dana, at=T0)
    client.force_login(global_auditor())

    def seqs(**query) -> set[int]:
        return set(listed(client.get(EXPLORER, query))) & {early.seq, late.seq, system.seq, elsewhere.seq}

    assert seqs(object_type="artifact", object_id=str(model.pk)) == {late.seq}
    assert seqs(actor="dana") == {early.seq, late.seq, elsewhere.seq}
    assert seqs(action="project.") == {early.seq, system.seq, elsewhere.seq}
    assert seqs(project="churn") == {early.seq, late.seq, system.seq}
    assert seqs(project="churn", since="2026-03-01T12:30", until="2026-03-01T13:30:00") == {system.seq}
    assert seqs(actor="dana", project="churn", action="project.updated") == {early.seq}


def test_a_time_the_form_shows_back_is_in_utc_for_the_datetime_input(client):
    client.force_login(global_auditor())

    response = client.get(EXPLORER, {"since": "2026-03-01T14:00:00+02:00"})

    assert 'value="2026-03-01T12:00:00"' in response.content.decode()


def test_invalid_filters_say_what_is_wrong_and_list_nothing(client):
    record("project.updated", ProjectFactory())
    client.force_login(global_auditor())

    response = client.get(EXPLORER, {"since": "yesterday", "action": "no spaces"})

    assert listed(response) == []
    body = response.content.decode()
    assert "Not a time." in body
    assert "No audit action is named" in body
    assert "not valid" in body


def test_a_time_error_shows_the_percent_encoding_as_it_is_to_be_written(client):
    """The help says to write + as %2B: the form's message is shown unformatted, so a % doubled for formatting
    would show as %%2B."""
    client.force_login(global_auditor())

    body = client.get(EXPLORER, {"since": "2026-03-01T12:00:00 01:00"}).content.decode()

    assert "write the + of an offset as %2B." in body
    assert "%%" not in body


def test_the_action_field_suggests_every_declared_action_and_kind(client):
    client.force_login(global_auditor())

    body = client.get(EXPLORER).content.decode()

    assert '<option value="promotion_request.">' in body
    assert '<option value="promotion_request.approved_by_reviewer">' in body


def test_an_action_filter_that_names_an_event_type_says_how_the_log_records_it(client):
    """`promotion.` is the webhook events' word; the log's is `promotion_request.`: say so instead of listing
    nothing."""
    record("project.updated", ProjectFactory())
    client.force_login(global_auditor())

    by_prefix = client.get(EXPLORER, {"action": "promotion."}).content.decode()
    by_event = client.get(EXPLORER, {"action": "promotion.approved"}).content.decode()

    assert "No audit action starts with" in by_prefix
    assert "For every action of those kinds use &#x27;promotion_request.&#x27;.</div>" in by_prefix
    assert "is a webhook event type, not an audit action" in by_event
    assert "promotion_request.approved_by_reviewer" in by_event


def test_every_filter_field_has_a_label(client):
    client.force_login(global_auditor())
    body = client.get(EXPLORER).content.decode()

    for name in ("object_type", "object_id", "actor", "action", "project", "artifact", "since", "until"):
        field_id = f"f-{name.replace('_', '-')}"
        assert f'name="{name}"' in body
        assert f'<label for="{field_id}">' in body


def test_pages_walk_the_log_by_sequence_keeping_the_filters(client):
    project = ProjectFactory(slug="churn")
    client.force_login(auditor_of(project))
    made = [record("project.updated", project).seq for _ in range(PAGE_SIZE + 5)]

    first = client.get(EXPLORER, {"project": "churn", "action": "project.updated"})
    assert listed(first) == made[::-1][:PAGE_SIZE]
    older = first.context["page"].older
    assert "project=churn" in older
    assert first.context["page"].newer is None

    second = client.get(f"{EXPLORER}?{older}")
    assert listed(second) == made[::-1][PAGE_SIZE:]
    assert second.context["page"].older is None

    back = client.get(f"{EXPLORER}?{second.context['page'].newer}")
    assert listed(back) == made[::-1][:PAGE_SIZE]
    assert listed(client.get(EXPLORER, {"before": "²", "after": "9" * 30})) == listed(client.get(EXPLORER))


def test_an_empty_log_says_so(client):
    client.force_login(auditor_of(ProjectFactory()))

    response = client.get(EXPLORER, {"project": "nothing-here"})

    assert listed(response) == []
    assert "No entry you may read matches these filters." in response.content.decode()


def test_the_explorer_costs_the_same_queries_for_1_or_10_entries(client):
    project = ProjectFactory()
    person = auditor_of(project)
    client.force_login(person)
    record("project.updated", project)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(EXPLORER).status_code == 200
        return len(captured)

    one = queries()
    for _ in range(9):
        record("project.updated", project)
    assert queries() == one


# An entry and its proof --------------------------------------------------------------------------------------


def test_an_entry_shows_its_changes_and_a_proof_that_verifies(client):
    project = ProjectFactory()
    for _ in range(6):
        record("project.updated", project)
    entry = record("project.updated", project, changes={"name": ["Old", "New"], "note": "as is"})
    record("project.updated", project)
    head = tree_head_sign()
    client.force_login(auditor_of(project))

    response = client.get(reverse("portal:audit-entry", args=[entry.seq]))

    assert response.status_code == 200
    assert response.context["verified"] is True
    assert all(check.ok for check in response.context["checks"])
    body = response.content.decode()
    assert response.context["head"] == head
    assert head.root_hash in body
    assert head.signature in body
    for digest in response.context["proof"]["audit_path"]:
        assert digest in body
    assert {"field": "name", "before": "Old", "after": "New", "changed": True} in response.context["changes"]
    assert {"field": "note", "before": "", "after": "as is", "changed": False} in response.context["changes"]


def test_an_entry_newer_than_every_head_gets_a_head_that_covers_it(client):
    project = ProjectFactory()
    tree_head_sign()
    entry = record("project.updated", project)
    client.force_login(auditor_of(project))

    response = client.get(reverse("portal:audit-entry", args=[entry.seq]))

    assert response.context["head"].tree_size > entry.seq
    assert response.context["verified"] is True


def test_an_entry_whose_head_is_forged_does_not_verify(client):
    project = ProjectFactory()
    entry = record("project.updated", project)
    forge_latest_head()
    client.force_login(auditor_of(project))

    response = client.get(reverse("portal:audit-entry", args=[entry.seq]))

    assert response.context["verified"] is False
    assert "failed" in response.content.decode()


def test_an_entry_page_costs_the_same_queries_whatever_the_log_size(client):
    project = ProjectFactory()
    person = auditor_of(project)
    client.force_login(person)
    first = record("project.updated", project)
    tree_head_sign()

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("portal:audit-entry", args=[first.seq])).status_code == 200
        return len(captured)

    one = queries()
    for _ in range(9):
        record("project.updated", project)
    tree_head_sign()
    assert queries() == one


# Verify now --------------------------------------------------------------------------------------------------


def forge_latest_head() -> SignedTreeHead:
    """A head row written straight into the database, claiming the log's current size and root, with a
    signature the server's key never made."""
    size = audit_tree.log_size()
    return SignedTreeHead.objects.create(
        tree_size=size,
        root_hash=audit_tree.root_at(size).hex(),
        signed_at=timezone.now(),
        key_id=signing.signing_key_id(),
        public_key=signing.public_key_base64(),
        signature=base64.b64encode(b"\x01" * 64).decode(),
        storage_name="forged",
    )


def test_verify_now_checks_the_head_its_root_and_its_consistency_with_the_previous_one(client):
    project = ProjectFactory()
    for _ in range(5):
        record("project.updated", project)
    tree_head_sign()
    for _ in range(20):
        record("project.updated", project)
    latest = tree_head_sign()
    client.force_login(auditor_of(project))

    page = client.get(VERIFY)
    assert page.context["checks"] is None
    assert latest.root_hash in page.content.decode()

    response = client.post(VERIFY)

    assert response.status_code == 200
    assert response.context["verified"] is True
    labels = [check.label for check in response.context["checks"]]
    assert len(labels) == 5
    assert any("Consistency" in label for label in labels)
    assert any("hashed again" in label for label in labels)
    assert "The latest head is signed by this server" in response.content.decode()


def test_verify_now_catches_a_forged_head(client):
    project = ProjectFactory()
    record("project.updated", project)
    tree_head_sign()
    record("project.updated", project)
    forge_latest_head()
    client.force_login(auditor_of(project))

    response = client.post(VERIFY)

    assert response.context["verified"] is False
    failed = [check for check in response.context["checks"] if not check.ok]
    assert [check.label.startswith("Signature of the latest tree head") for check in failed] == [True]
    assert "does not verify" in response.content.decode()


def test_verify_now_catches_a_head_whose_root_the_database_no_longer_matches(client):
    project = ProjectFactory()
    record("project.updated", project)
    tree_head_sign()
    record("project.updated", project)
    # A head validly signed over a root the database does not hold (as after the log was rewritten).
    with mock.patch("core.audit.tree.root_at", return_value=b"\x00" * 32):
        tree_head_sign()
    client.force_login(auditor_of(project))

    response = client.post(VERIFY)

    assert response.context["verified"] is False
    failed = {check.label.split(" (")[0].split(" from")[0] for check in response.context["checks"] if not check.ok}
    assert "The root recomputed" in failed
    assert "Consistency" in failed


def test_verify_now_without_any_head_says_none_was_signed(client):
    client.force_login(auditor_of(ProjectFactory()))

    response = client.post(VERIFY)

    assert response.status_code == 200
    assert "No tree head has been signed yet" in response.content.decode()


# Export ------------------------------------------------------------------------------------------------------


def test_the_export_is_the_whole_log_and_the_standalone_verifier_accepts_it(client, tmp_path):
    for n in range(20):
        record("project.updated", ProjectFactory(), changes={"n": n})
    tree_head_sign()
    person = global_auditor()
    client.force_login(person)

    response = client.get(EXPORT)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].startswith("attachment;")
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    report = verify_export(path, public_keys=[signing.public_key_bytes()])
    exported = AuditEntry.objects.get(action="audit_log.exported")
    assert report.entries == audit_tree.log_size() == exported.seq + 1
    assert exported.actor_label == person.username


def exported_lines(response) -> list[bytes]:
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-entries-')
    return b"".join(response.streaming_content).splitlines(keepends=True)


def exported_seqs(lines: list[bytes]) -> list[int]:
    return [json.loads(line)["entry"]["seq"] for line in lines[1:]]


def test_the_export_honours_the_explorers_filters_and_verifies(client):
    churn, fraud = ProjectFactory(slug="churn"), ProjectFactory(slug="fraud")
    matching = [record("project.updated", churn, at=T0.replace(hour=13)) for _ in range(3)]
    record("project.updated", churn, at=T0)
    record("project.updated", fraud, at=T0.replace(hour=13))
    tree_head_sign()
    client.force_login(global_auditor())

    lines = exported_lines(client.get(EXPORT, {"project": "churn", "since": "2026-03-01T12:30", "before": "99"}))

    header = json.loads(lines[0])
    assert header["format"] == FILTERED_EXPORT_FORMAT
    assert header["filter"] == {"project": "churn", "since": "2026-03-01T12:30:00.000000Z"}
    assert header["entries"] == 3
    assert exported_seqs(lines) == [entry.seq for entry in matching]
    assert verify_filtered_export(lines, signing.public_key_bytes()).entries == 3
    exported = AuditEntry.objects.get(action="audit_log.exported")
    assert json.loads(exported.changes) == {"format": FILTERED_EXPORT_FORMAT, "filter": header["filter"]}


def test_a_project_auditor_exports_their_projects_entries_with_proofs(client):
    project, other = ProjectFactory(slug="churn"), ProjectFactory()
    mine = [record("project.updated", project) for _ in range(4)]
    theirs = record("project.updated", other)
    person = auditor_of(project)
    client.force_login(person)

    lines = exported_lines(client.get(EXPORT, {"action": "project.updated"}))

    assert exported_seqs(lines) == [entry.seq for entry in mine]
    assert theirs.seq not in exported_seqs(lines)
    assert verify_filtered_export(lines, signing.public_key_bytes()).entries == len(mine)
    exported = AuditEntry.objects.get(action="audit_log.exported")
    assert exported.actor_label == person.username


def test_a_project_auditor_without_filters_gets_every_entry_they_may_read_not_the_whole_log(client):
    project = ProjectFactory()
    record("project.updated", project)
    record("project.updated", ProjectFactory())
    client.force_login(auditor_of(project))

    lines = exported_lines(client.get(EXPORT))

    assert json.loads(lines[0])["filter"] == {}
    in_project = AuditEntry.objects.filter(project_id=project.pk).order_by("seq").values_list("seq", flat=True)
    assert exported_seqs(lines) == list(in_project)
    assert verify_filtered_export(lines, signing.public_key_bytes()).entries == len(in_project)


def test_the_explorer_links_the_export_with_its_filters(client):
    project = ProjectFactory(slug="churn")
    record("project.updated", project)
    client.force_login(auditor_of(project))

    unfiltered = client.get(EXPLORER).content.decode()
    filtered = client.get(EXPLORER, {"project": "churn", "action": "project.", "before": "5"}).content.decode()

    assert f'href="{EXPORT}"' in unfiltered
    assert "Download your entries" in unfiltered
    assert "Download the whole log" not in unfiltered
    assert f'href="{EXPORT}?project=churn&amp;action=project."' in filtered
    assert "Download these entries" in filtered


def test_the_global_permission_is_offered_the_whole_log_beside_the_filtered_view(client):
    client.force_login(global_auditor())

    unfiltered = client.get(EXPLORER).content.decode()
    filtered = client.get(EXPLORER, {"project": "churn"}).content.decode()

    assert "Download the log (.jsonl)" in unfiltered
    assert f'href="{EXPORT}?project=churn"' in filtered
    assert "Download the whole log" in filtered


def test_an_export_with_invalid_filters_shows_the_errors_and_records_nothing(client):
    client.force_login(auditor_of(ProjectFactory()))

    response = client.get(EXPORT, {"since": "yesterday"})

    assert response.status_code == 400
    assert "Not a time." in response.content.decode()
    assert f'href="{EXPORT}' not in response.content.decode()
    assert not AuditEntry.objects.filter(action="audit_log.exported").exists()


def test_verify_now_catches_an_entry_rewritten_together_with_its_recorded_hash(client):
    """The root check trusts the recorded hashes; the content check hashes the entries again."""
    from django.db import connection

    from core.audit.recorder import entry_bytes

    superuser = UserFactory(is_superuser=True)
    for number in range(40):  # past 32 entries: the root is folded from kept subtree hashes, not from the leaves
        audit_record("project.updated", obj=AuditObject(type="thing", id=str(number), label=f"thing {number}"))
    tree_head_sign()
    victim = AuditEntry.objects.get(seq=2)
    victim.object_label = "rewritten"
    forged = leaf_hash(entry_bytes(victim))
    with connection.cursor() as cursor:
        table = AuditEntry._meta.db_table
        cursor.execute(f"DROP TRIGGER IF EXISTS {table}_refuse_update")
        cursor.execute(
            f"UPDATE {table} SET object_label = %s, leaf_hash = %s WHERE seq = 2",  # noqa: S608
            ["rewritten", forged],
        )
    client.force_login(superuser)

    response = client.post("/audit/verify/")

    failed = [check for check in response.context["checks"] if not check.ok]
    assert response.context["verified"] is False
    assert any("seq 0 to 15" in check.detail for check in failed)  # the kept subtree holding entry 2
