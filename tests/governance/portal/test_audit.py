"""The portal's audit pages: the explorer scoped and filtered as the API is, an entry with a proof that verifies,
the latest signed head checked on demand (and caught when forged), and the exports the standalone verifier accepts:
the explorer's filtered view, for every auditor, and the whole log for the global permission.

(About 860 lines on purpose: the explorer's filters, its gap markers and its exports share one scoped log built
here; split by feature, each file would build it again.)"""

import base64
import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from artifacts.access.roles import Role
from core.audit import signing
from core.audit import tree as audit_tree
from core.audit.actions import RECORDED_AS, AuditAction
from core.audit.recorder import AuditObject, audit_record, tree_head_sign
from core.crypto.merkle import FILTERED_EXPORT_FORMAT, leaf_hash
from core.models import AuditEntry, SignedTreeHead
from governance.portal.templatetags.audit_names import breakable
from governance.portal.views.audit import PAGE_SIZE
from tests.artifacts.factories import ArtifactFactory, ProjectFactory, UserFactory, grant
from tests.governance.factories import ModelVersionFactory, RegisteredModelFactory, auditor_of, global_auditor
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


# Names as recorded, wrapped only between words ---------------------------------------------------------------


def test_action_object_and_field_names_may_break_only_after_a_dot_or_underscore(client):
    project = ProjectFactory()
    entry = record(
        "promotion_request.approved_by_reviewer",
        AuditObject(type="promotion_request", id="7", label="churn@v2", project_id=project.pk),
        changes={"model_card": ["", "# Card"], "DESCRIPTION": "as recorded"},
    )
    client.force_login(auditor_of(project))

    listing = client.get(EXPLORER).content.decode()
    page = client.get(reverse("portal:audit-entry", args=[entry.seq])).content.decode()

    broken = '<code class="audit-name">promotion_<wbr>request.<wbr>approved_<wbr>by_<wbr>reviewer</code>'
    assert broken in listing
    assert broken in page
    assert '<span class="audit-name">promotion_<wbr>request</span>' in listing
    assert '<code class="audit-name field-name">model_<wbr>card</code>' in page
    assert '<code class="audit-name field-name">DESCRIPTION</code>' in page


def test_the_audit_css_forbids_breaks_inside_words_and_shows_field_names_as_recorded():
    """The portal's `code` may wrap anywhere (hashes, digests) and its table headers are upper-cased: the log's
    names opt out of both (checked in a browser by tests/e2e/test_audit.py at desktop and phone widths)."""
    css = (Path(settings.BASE_DIR) / "static" / "portal" / "audit.css").read_text()

    assert re.search(r"\.audit-name \{ overflow-wrap: normal; word-break: normal; \}", css)
    assert re.search(r'table\.changes th\[scope="row"\][^{]*\{ text-transform: none;', css)


def test_the_breakable_filter_escapes_the_name_first():
    assert breakable('a_b.<script>"') == "a_<wbr>b.<wbr>&lt;script&gt;&quot;"


# By model or artifact name -----------------------------------------------------------------------------------


def test_an_artifact_name_lists_what_happened_to_that_artifact_only(client):
    project = ProjectFactory(slug="churn")
    scorer, other = ArtifactFactory(project=project, name="scorer"), ArtifactFactory(project=project, name="other")
    about_it = record("artifact.updated", scorer)
    record("artifact.updated", other)
    record("project.updated", project)
    client.force_login(auditor_of(project))

    response = client.get(EXPLORER, {"name": "scorer"})

    assert listed(response) == [about_it.seq]
    assert "Entries about the artifact <strong>churn/scorer</strong>" in response.content.decode()
    assert listed(client.get(EXPLORER, {"artifact": str(scorer.pk)})) == [about_it.seq]


def test_a_model_name_lists_the_model_and_the_artifacts_its_versions_come_from(client):
    version = ModelVersionFactory(registered_model=RegisteredModelFactory(name="fraud-scorer"))
    model, project = version.registered_model, version.registered_model.project
    unrelated = record("artifact.updated", ArtifactFactory(project=project, name="unrelated"))
    person = auditor_of(project)
    client.force_login(person)

    seqs = listed(client.get(EXPLORER, {"name": "fraud-scorer"}))

    about_model = AuditEntry.objects.filter(object_type="registered_model", object_id=str(model.pk))
    about_artifact = AuditEntry.objects.filter(artifact_id=version.artifact_version.artifact_id)
    assert about_model.exists()
    assert about_artifact.exists()
    assert set(seqs) == {*about_model.values_list("seq", flat=True), *about_artifact.values_list("seq", flat=True)}
    assert unrelated.seq not in seqs
    assert AuditEntry.objects.get(seq__in=seqs, action="model_version.registered")


def test_a_name_matches_by_its_start_when_nothing_is_named_so_whole(client):
    project = ProjectFactory(slug="churn")
    entry = record("artifact.updated", ArtifactFactory(project=project, name="evaluation-report"))
    client.force_login(auditor_of(project))

    assert listed(client.get(EXPLORER, {"name": "Evaluation"})) == [entry.seq]


def test_a_name_in_several_projects_offers_the_choices_and_a_choice_lists_its_entries(client):
    churn, fraud = ProjectFactory(slug="churn"), ProjectFactory(slug="fraud")
    in_churn = record("artifact.updated", ArtifactFactory(project=churn, name="model"))
    in_fraud = record("artifact.updated", ArtifactFactory(project=fraud, name="model"))
    person = auditor_of(churn)
    grant(Role.AUDITOR, on=fraud, user=person)
    client.force_login(person)

    response = client.get(EXPLORER, {"name": "model", "action": "artifact."})

    assert response.status_code == 200
    assert listed(response) == []
    body = response.content.decode()
    assert "“model” names 2 things you may see: choose one" in body
    links = re.findall(r'<li><a href="\?([^"]+)">Artifact <strong>model</strong> in the project (\w+)</a>', body)
    assert [project for _, project in links] == ["churn", "fraud"]
    chosen = {project: query for query, project in links}
    assert listed(client.get(f"{EXPLORER}?{html.unescape(chosen['fraud'])}")) == [in_fraud.seq]
    assert "action=artifact." in html.unescape(chosen["churn"])
    assert listed(client.get(EXPLORER, {"name": "model", "project": "churn"})) == [in_churn.seq]


def test_a_model_and_an_artifact_of_one_name_are_told_apart_by_kind(client):
    registered = RegisteredModelFactory(name="scorer")
    project = registered.project
    artifact_entry = record("artifact.updated", ArtifactFactory(project=project, name="scorer"))
    client.force_login(auditor_of(project))

    both = client.get(EXPLORER, {"name": "scorer"})
    artifact_only = client.get(EXPLORER, {"name": "scorer", "kind": "artifact"})
    model_only = client.get(EXPLORER, {"name": "scorer", "kind": "model"})

    assert [choice.kind for choice, _ in both.context["choices"]] == ["model", "artifact"]
    assert listed(artifact_only) == [artifact_entry.seq]
    model_created = AuditEntry.objects.get(action="registered_model.created", object_id=str(registered.pk))
    assert listed(model_only) == [model_created.seq]


def test_an_unknown_name_or_one_the_viewer_may_not_see_is_a_400_saying_so(client):
    project, hidden = ProjectFactory(slug="churn"), ProjectFactory(slug="secret")
    record("artifact.updated", ArtifactFactory(project=hidden, name="secret-model"))
    client.force_login(auditor_of(project))

    for name in ("nothing-like-it", "secret-model"):
        response = client.get(EXPLORER, {"name": name})
        assert response.status_code == 400
        assert response.context["rows"] == []
        body = response.content.decode()
        assert f"No model or artifact you may see is named &#x27;{name}&#x27;" in body
        assert "not valid" in body
    assert client.get(EXPLORER, {"name": "x", "kind": "dataset"}).status_code == 400


def test_the_export_takes_the_name_and_says_what_it_named(client):
    project = ProjectFactory(slug="churn")
    scorer = ArtifactFactory(project=project, name="scorer")
    about_it = [record("artifact.updated", scorer) for _ in range(2)]
    record("project.updated", project)
    tree_head_sign()
    client.force_login(auditor_of(project))

    lines = exported_lines(client.get(EXPORT, {"name": "scorer"}))

    header = json.loads(lines[0])
    assert header["filter"] == {"artifact": "churn/scorer", "artifact_id": scorer.pk}
    assert exported_seqs(lines) == [entry.seq for entry in about_it]
    assert verify_filtered_export(lines, signing.public_key_bytes()).entries == 2
    assert client.get(EXPORT, {"name": "nothing-like-it"}).status_code == 400


# Entries the viewer may not see ------------------------------------------------------------------------------


def gap_markers(response) -> list[tuple[int, int]]:
    """(seq of the entry above the marker, the count it gives), in page order."""
    assert response.status_code == 200
    return [(row.entry.seq, row.hidden_after) for row in response.context["rows"] if row.hidden_after]


def test_a_jump_in_sequence_is_marked_with_how_many_entries_the_viewer_may_not_see(client):
    mine, theirs = ProjectFactory(), ProjectFactory()
    person = auditor_of(mine)
    first = record("project.updated", mine)
    for _ in range(3):
        record("project.updated", theirs)
    second = record("project.updated", mine)
    record("project.updated", theirs)
    third = record("project.updated", mine)
    client.force_login(person)

    response = client.get(EXPLORER)

    assert gap_markers(response) == [(third.seq, 1), (second.seq, 3)]
    assert (second.seq, first.seq) == (first.seq + 4, second.seq - 4)
    body = response.content.decode()
    assert "3 entries not visible to you" in body
    assert "1 entry not visible to you" in body
    assert client.get(EXPLORER, {"action": "project.updated"}).context["rows"][0].hidden_after == 1


def test_with_filters_only_the_entries_the_viewer_may_not_see_are_counted(client):
    """Entries the viewer may read but the filter leaves out are not "not visible": only the others count."""
    mine, theirs = ProjectFactory(), ProjectFactory()
    person = auditor_of(mine)
    older = record("project.updated", mine)
    record("project.updated", theirs)
    record("artifact.updated", ArtifactFactory(project=mine))  # readable, filtered out
    record("project.updated", theirs)
    newer = record("project.updated", mine)
    client.force_login(person)

    response = client.get(EXPLORER, {"action": "project.updated"})

    assert [row.entry.seq for row in response.context["rows"]][:2] == [newer.seq, older.seq]
    assert gap_markers(response)[0] == (newer.seq, 2)


def test_a_jump_across_pages_is_marked_at_the_foot_of_the_newer_page(client):
    mine, theirs = ProjectFactory(slug="mine"), ProjectFactory()
    person = auditor_of(mine)
    last_of_second_page = record("project.updated", mine)
    for _ in range(2):
        record("project.updated", theirs)
    made = [record("project.updated", mine) for _ in range(PAGE_SIZE)]
    client.force_login(person)

    first_page = client.get(EXPLORER, {"project": "mine"})

    assert gap_markers(first_page) == [(made[0].seq, 2)]
    assert first_page.context["rows"][-1].next_seq == last_of_second_page.seq


def test_whoever_reads_the_whole_log_sees_no_marker(client):
    for project in (ProjectFactory(), ProjectFactory(), ProjectFactory()):
        record("project.updated", project)
    client.force_login(global_auditor())

    assert gap_markers(client.get(EXPLORER)) == []
    assert gap_markers(client.get(EXPLORER, {"action": "project.updated"})) == []


# The glossary of actions -------------------------------------------------------------------------------------

ACTIONS = reverse("portal:audit-actions")


def test_the_glossary_lists_every_action_the_log_can_record_with_its_meaning_and_event(client):
    client.force_login(auditor_of(ProjectFactory()))

    response = client.get(ACTIONS)

    assert response.status_code == 200
    body = html.unescape(re.sub(r"<wbr>", "", response.content.decode()))
    for action in AuditAction:
        assert f'<tr id="{action.value}">' in body
        assert action.label in body
    approval = body[body.index('<tr id="promotion_request.approved_by_reviewer">') :].split("</tr>")[0]
    assert "promotion.approved" in approval
    assert "none" in body[body.index('<tr id="blob.downloaded">') :].split("</tr>")[0]
    assert "webhook.test" in body[body.index("Webhook events the log does not record") :]
    assert f'href="{EXPLORER}?action=promotion_request.approved_by_reviewer"' in body


def test_every_event_type_is_named_in_the_glossary_against_the_actions_recording_it(client):
    client.force_login(UserFactory())
    body = html.unescape(client.get(ACTIONS).content.decode().replace("<wbr>", ""))

    for event, actions in RECORDED_AS.items():
        for action in actions:
            row = body[body.index(f'<tr id="{action}">') :].split("</tr>")[0]
            assert event in row


def test_the_glossary_is_for_anyone_signed_in_with_explorer_links_only_for_auditors(client):
    assert client.get(ACTIONS).status_code == 302
    client.force_login(UserFactory())

    body = client.get(ACTIONS).content.decode()

    assert "Audit actions and webhook events" in body
    assert f'href="{EXPLORER}' not in body


def test_the_explorer_and_its_action_filter_link_the_glossary(client):
    project = ProjectFactory()
    entry = record("project.updated", project)
    client.force_login(auditor_of(project))

    body = client.get(EXPLORER).content.decode()
    help_text = body[body.index('id="h-action"') :].split("</div>")[0]
    entry_page = client.get(reverse("portal:audit-entry", args=[entry.seq])).content.decode()

    assert f'href="{ACTIONS}"' in body
    assert f'href="{ACTIONS}"' in help_text
    assert f'href="{ACTIONS}#project.updated"' in entry_page


def test_no_export_is_offered_until_an_ambiguous_name_is_settled(client):
    churn, fraud = ProjectFactory(slug="churn"), ProjectFactory(slug="fraud")
    for project in (churn, fraud):
        ArtifactFactory(project=project, name="model")
    client.force_login(global_auditor())

    body = client.get(EXPLORER, {"name": "model"}).content.decode()

    assert "Choose one of the models or artifacts above to export the entries they select." in body
    assert f'href="{EXPORT}' not in body
    assert client.get(EXPORT, {"name": "model"}).status_code == 400
    assert not AuditEntry.objects.filter(action="audit_log.exported").exists()


def test_a_filtered_page_with_jumps_costs_the_same_queries_for_1_or_10_entries(client):
    mine, theirs = ProjectFactory(), ProjectFactory()
    client.force_login(auditor_of(mine))

    def made_with_a_jump() -> None:
        record("project.updated", theirs)
        record("project.updated", mine)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(EXPLORER, {"action": "project.updated"}).status_code == 200
        return len(captured)

    made_with_a_jump()
    made_with_a_jump()
    two = queries()
    for _ in range(9):
        made_with_a_jump()
    assert queries() == two


def test_whoever_reads_the_whole_log_finds_any_model_or_artifact_by_name(client):
    """They hold no role on the project, but its entries, names included, are theirs to read."""
    project = ProjectFactory(slug="churn")
    about_it = record("artifact.updated", ArtifactFactory(project=project, name="scorer"))
    client.force_login(global_auditor())

    assert listed(client.get(EXPLORER, {"name": "scorer"})) == [about_it.seq]
