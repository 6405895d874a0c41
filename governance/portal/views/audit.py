"""Portal pages for auditors: the audit log filtered and paged, an entry with the proof that it is in the signed
log, a check of the latest signed tree head on demand, and the verifiable exports (the filtered view, with each
entry's proof, for every auditor; the whole log for the global permission).

Entries are read through `selectors.audit_entries_for(user)`, the API's scope, with the API's filterset, so the
portal shows exactly what `/api/v1/audit/entries/` answers. Someone who audits nothing gets a 404 from every page
here, as for anything else they may not see. Every check on these pages applies `core.crypto.merkle`, the
rules the offline verifier auditors run themselves (tools/audit_verify.py) applies too, under this server's own
public key: a head is never trusted for the key it carries.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from core.audit import signing
from core.audit import tree as audit_tree
from core.audit.actions import ACTION_PREFIXES, ANNOUNCED_AS, RECORDED_AS, AuditAction
from core.audit.recorder import (
    audit_export_begin,
    entry_bytes,
    export_filter_document,
    export_lines,
    filtered_export_lines,
    format_time,
    tree_head_document,
    tree_head_sign,
)
from core.crypto.merkle import leaf_hash, tree_head_signature_ok, verify_consistency, verify_inclusion
from core.errors import InvalidInput
from core.events import EventType
from core.models import AuditEntry, SignedTreeHead
from core.pagination import PAGING, KeysetPage, keyset_page
from governance.audit import selectors
from governance.audit.filters import AuditEntryFilter
from governance.portal import context as portal
from governance.portal import links
from governance.portal import selectors as portal_selectors
from governance.portal.selectors import AuditSubject

PAGE_SIZE = 50


def auditors_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in, and an auditor of something (or holding the global permission); anyone else gets a 404."""

    @login_required
    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not portal.audits(request):
            raise Http404("You audit nothing here.")
        return view(request, *args, **kwargs)

    return checked


# Checks ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One thing verified, whether it held, and what was compared, in words."""

    label: str
    ok: bool
    detail: str


def head_signature_check(head: SignedTreeHead, name: str) -> Check:
    """The head's signature under this server's key (not the key the row names, which a forged row would
    name too)."""
    label = f"Signature of the {name} ({head.tree_size} entries, signed at {format_time(head.signed_at)})"
    server_key = signing.signing_key_id()
    if head.key_id != server_key:
        return Check(label, False, f"Signed with key {head.key_id}, which is not this server's key ({server_key}).")
    if not tree_head_signature_ok(tree_head_document(head), signing.public_key_bytes()):
        return Check(label, False, f"The signature does not verify under this server's key {server_key}.")
    return Check(label, True, f"Verifies under this server's key {server_key}.")


def inclusion_checks(entry: AuditEntry, proof: dict, head: SignedTreeHead) -> list[Check]:
    """That the entry hashes to its leaf, that the leaf and its audit path lead to the signed root, and that the
    root is signed."""
    content_leaf = leaf_hash(entry_bytes(entry))
    recorded_leaf = bytes(entry.leaf_hash)
    included = verify_inclusion(
        entry.seq,
        head.tree_size,
        content_leaf,
        [bytes.fromhex(digest) for digest in proof["audit_path"]],
        bytes.fromhex(head.root_hash),
    )
    return [
        Check(
            "The entry's content hashes to its recorded leaf hash",
            content_leaf == recorded_leaf,
            f"SHA-256(0x00 ‖ entry) = {content_leaf.hex()}; recorded {recorded_leaf.hex()}.",
        ),
        Check(
            f"Inclusion in the signed tree of {head.tree_size} entries",
            included,
            f"The leaf and the {len(proof['audit_path'])} hashes of the audit path "
            f"{'lead' if included else 'do not lead'} to the signed root {head.root_hash}.",
        ),
        head_signature_check(head, "tree head"),
    ]


def previous_tree_head(head: SignedTreeHead) -> SignedTreeHead | None:
    """The latest head signed at a smaller size than `head`: the one the log must have grown from."""
    return SignedTreeHead.objects.filter(tree_size__lt=head.tree_size).order_by("-tree_size", "-signed_at").first()


#: How many of the newest entries "verify now" re-hashes from their content. Every entry is re-hashed by the offline
#: verifier over an export; a page cannot read a log of millions of entries while someone waits.
CONTENT_CHECKED = 1000


def content_check(size: int) -> Check:
    """The newest entries' contents hashed again: against their recorded leaf hashes, and against the kept subtree
    hashes the root is folded from (which an entry rewritten together with its leaf hash no longer matches)."""
    first = max(0, size - CONTENT_CHECKED)
    first -= first % audit_tree.KEPT_WIDTH
    leaves, rewritten = {}, []
    for entry in AuditEntry.objects.filter(seq__gte=first, seq__lt=size).order_by("seq").iterator(chunk_size=500):
        leaves[entry.seq] = leaf_hash(entry_bytes(entry))
        if leaves[entry.seq] != bytes(entry.leaf_hash):
            rewritten.append(str(entry.seq))
    rewritten += [f"{start} to {end - 1}" for start, end in audit_tree.kept_subtrees_differing(leaves)]
    label = f"The contents of entries {first} to {size - 1}, hashed again"
    if rewritten:
        shown = ", ".join(rewritten[:10]) + (" …" if len(rewritten) > 10 else "")
        return Check(label, False, f"These no longer hash to what the tree recorded: seq {shown}.")
    older = f" Entries before {first} are checked by the offline verifier over an export." if first else ""
    return Check(label, True, f"Each hashes to its recorded leaf and subtree hashes.{older}")


def tree_head_checks(head: SignedTreeHead) -> list[Check]:
    """The latest head's signature, its root recomputed from the entries in the database, and its consistency
    with the head signed before it (the log only grew in between: nothing before was changed or removed)."""
    checks = [head_signature_check(head, "latest tree head")]
    size = audit_tree.log_size()
    if head.tree_size > size:
        checks.append(
            Check(
                "The database holds the entries the head covers",
                False,
                f"The head covers {head.tree_size} entries, but the log holds {size}: entries were removed.",
            )
        )
        return checks
    root = audit_tree.root_at(head.tree_size).hex()
    checks.append(
        Check(
            f"The root recomputed from the recorded hashes of the first {head.tree_size} entries",
            root == head.root_hash,
            f"Recomputed {root} from the leaf hashes and the stored subtree hashes; signed {head.root_hash}.",
        )
    )
    checks.append(content_check(head.tree_size))
    previous = previous_tree_head(head)
    if previous is None:
        return checks
    checks.append(head_signature_check(previous, "previous tree head"))
    proof = selectors.audit_consistency_proof(previous.tree_size, head.tree_size)
    consistent = verify_consistency(
        previous.tree_size,
        head.tree_size,
        bytes.fromhex(previous.root_hash),
        bytes.fromhex(head.root_hash),
        [bytes.fromhex(digest) for digest in proof["proof"]],
    )
    checks.append(
        Check(
            f"Consistency from the previous head ({previous.tree_size} entries) to the latest ({head.tree_size})",
            consistent,
            f"The {len(proof['proof'])} hashes of the consistency proof "
            f"{'show' if consistent else 'do not show'} that the signed tree of {previous.tree_size} entries "
            "is, unchanged, the start of the latest one.",
        )
    )
    return checks


# The list -----------------------------------------------------------------------------------------------------


def filter_query(query: QueryDict) -> QueryDict:
    """The filters alone, without the paging: what the export and the "newest" link carry."""
    params = query.copy()
    for paging in PAGING:
        params.pop(paging, None)
    return params


def time_input(moment) -> str:
    """A time as a datetime-local input shows it (in UTC, to the second)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if moment else ""


def changes_rows(entry: AuditEntry) -> list[dict]:
    """The entry's changes as rows of a table. The recorder writes {"field": [before, after]} for a change and
    the value alone for what was recorded as it stood (a creation's fields, a comment), one entry may mix both."""

    def shown(value: Any) -> str:
        if value is None:
            return "—"
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    rows = []
    for field, value in json.loads(entry.changes).items():
        if isinstance(value, list) and len(value) == 2:
            rows.append({"field": field, "before": shown(value[0]), "after": shown(value[1]), "changed": True})
        else:
            rows.append({"field": field, "before": "", "after": shown(value), "changed": False})
    return rows


# Pages ------------------------------------------------------------------------------------------------------


def explorer_filters(request: HttpRequest) -> AuditEntryFilter:
    """The explorer's filters over the entries the user may read (the API's scope and filterset)."""
    return AuditEntryFilter(filter_query(request.GET), queryset=selectors.audit_entries_for(request.user))


#: The longest name the "model or artifact" field reads (names are at most 128 characters).
MAX_NAME_CHARS = 200


#: What the "model or artifact" field may be narrowed to (`kind`): the empty value is either.
SUBJECT_KINDS = {"": "Model or artifact", "model": "Model", "artifact": "Artifact"}


@dataclass(frozen=True)
class SubjectFilter:
    """What the explorer's "model or artifact" field (`name`, and `kind` to say which) asked for: the one model or
    artifact found, several to choose from, or why none was (a 400 on the page)."""

    asked: str = ""
    kind: str = ""
    subject: AuditSubject | None = None
    choices: tuple[AuditSubject, ...] = ()
    error: str = ""

    @property
    def lists(self) -> bool:
        """Whether the entries can be listed: nothing asked, or one model or artifact found."""
        return not self.error and not self.choices


def subject_filter(request: HttpRequest, filters: AuditEntryFilter) -> SubjectFilter:
    """The model or artifact the portal's own filters ask for by name, among those the user may see, in the project
    the entries filter names if it names one. Call with valid `filters`. The API has no such filter: it takes the
    artifact's id, which the explorer takes too (`artifact`)."""
    name = request.GET.get("name", "").replace("\x00", "").strip()[:MAX_NAME_CHARS]
    kind = request.GET.get("kind", "")
    if kind not in SUBJECT_KINDS:
        return SubjectFilter(name, error=f"kind must be model or artifact, or empty for either; not {kind[:40]!r}.")
    if not name:
        return SubjectFilter(kind=kind)
    project = filters.form.cleaned_data.get("project")
    found = portal_selectors.audit_subjects_named(request.user, name, project=project, kind=kind)
    if not found:
        what = SUBJECT_KINDS[kind].lower()
        where = f" in the project {project[1]!r}" if project else ""
        return SubjectFilter(
            name,
            kind,
            error=f"No {what} you may see is named {name!r}, or has a name starting with it{where}. Names are "
            "matched whole, or by their start; an artifact's number goes in the artifact id field.",
        )
    if len(found) > 1:
        return SubjectFilter(name, kind, choices=tuple(found))
    return SubjectFilter(name, kind, subject=found[0])


def entries_of(filters: AuditEntryFilter, subject: SubjectFilter) -> QuerySet[AuditEntry]:
    """The entries the filters select, narrowed to those about the model or artifact found by name, if any."""
    if subject.subject is None:
        return filters.qs
    artifact_ids, objects = portal_selectors.audit_subject_scope(subject.subject)
    return selectors.entries_about(filters.qs, artifact_ids=artifact_ids, objects=objects)


def subject_document(subject: SubjectFilter) -> dict:
    """The model or artifact found by name, as a filtered export's header and its audit entry name it."""
    if subject.subject is None:
        return {}
    found = subject.subject
    return {found.kind: f"{found.project_slug}/{found.name}", f"{found.kind}_id": found.id}


def choice_query(query: QueryDict, choice: AuditSubject) -> str:
    """The explorer's query with `choice` picked: its whole name, project and kind, which name it alone (a name is
    unique among a project's models, and among its artifacts)."""
    params = filter_query(query)
    for field, value in (("name", choice.name), ("project", choice.project_slug), ("kind", choice.kind)):
        params.setlist(field, [value])
    return params.urlencode()


@dataclass(frozen=True)
class Row:
    """An entry listed, and how many entries the viewer may not read lie between it and `next_seq`, the next older
    entry listed (None for the last of the log's entries the filters select)."""

    entry: AuditEntry
    hidden_after: int
    next_seq: int | None
    object_url: str | None


def rows_with_gaps(request: HttpRequest, page: KeysetPage, entries: QuerySet[AuditEntry], *, filtered: bool) -> list:
    """The page's entries, each with the count of entries the viewer may not read between it and the next older
    one listed (on this page, or for the last, the first of the next page: one query, when there is one) and the
    portal page of its object (one query per kind of object)."""
    seqs: list[int | None] = [entry.seq for entry in page.rows]
    if page.rows and page.older is not None:
        seqs.append(entries.filter(seq__lt=seqs[-1]).values_list("seq", flat=True).order_by("-seq").first())
    next_seqs = [*seqs[1:], None][: len(page.rows)]
    gaps = [(entry.seq, older) for entry, older in zip(page.rows, next_seqs, strict=True) if older is not None]
    hidden = selectors.entries_hidden_between(request.user, gaps, filtered=filtered) if gaps else []
    counts = [*hidden, *[0] * (len(page.rows) - len(hidden))]
    linked = links.with_object_urls(page.rows, request.user)
    return [Row(entry, count, older, url) for (entry, url), count, older in zip(linked, counts, next_seqs, strict=True)]


def explorer(request: HttpRequest, filters: AuditEntryFilter, *, status: int = 200) -> HttpResponse:
    valid = filters.is_valid()
    subject = subject_filter(request, filters) if valid else SubjectFilter()
    listing = valid and subject.lists
    entries = entries_of(filters, subject) if listing else AuditEntry.objects.none()
    page = keyset_page(entries, request.GET, key="seq", size=PAGE_SIZE) if listing else KeysetPage([], None, None)
    cleaned = filters.form.cleaned_data if valid else {}
    filtered = any(value for name, value in request.GET.items() if name not in PAGING)
    context = {
        "filters": filters,
        "form": filters.form,
        "valid": valid and not subject.error,
        "subject": subject,
        "subject_kinds": SUBJECT_KINDS,
        "choices": [(choice, choice_query(request.GET, choice)) for choice in subject.choices],
        "since": time_input(cleaned.get("since")),
        "until": time_input(cleaned.get("until")),
        "filtered": filtered,
        "page": page,
        "rows": rows_with_gaps(request, page, entries, filtered=filtered) if listing else [],
        "newest": filter_query(request.GET).urlencode(),
        "may_export_whole_log": selectors.can_read_whole_log(request.user),
        # Offered as the action field's suggestions: the declared vocabulary, each kind's prefix first.
        "known_actions": [*ACTION_PREFIXES, *AuditAction.values],
    }
    return render(request, "portal/audit/list.html", context, status=400 if subject.error else status)


@require_GET
@auditors_only
def audit(request: HttpRequest) -> HttpResponse:
    """The entries the user may read, filtered as the API filters them, newest first."""
    return explorer(request, explorer_filters(request))


@require_GET
@auditors_only
def audit_entry(request: HttpRequest, seq: int) -> HttpResponse:
    """An entry, its changes, and its inclusion proof against the latest signed tree head, checked here."""
    entry = get_object_or_404(selectors.audit_entries_for(request.user), seq=seq)
    head = selectors.latest_tree_head()
    if head is None or head.tree_size <= entry.seq:
        # As the API's proof does: an entry newer than every head gets a head that covers it.
        head = tree_head_sign()
    try:
        proof = selectors.audit_inclusion_proof(entry, head.tree_size)
    except InvalidInput as error:
        # The latest head covers more entries than the log holds: the log lost entries after they were signed.
        proof, checks = None, [Check("An inclusion proof against the latest tree head", False, error.message)]
    else:
        checks = inclusion_checks(entry, proof, head)
    context = {
        "entry": entry,
        "time": format_time(entry.recorded_at),
        "changes": changes_rows(entry),
        "leaf_hash": bytes(entry.leaf_hash).hex(),
        "head": head,
        "proof": proof,
        "checks": checks,
        "verified": all(check.ok for check in checks),
    }
    return render(request, "portal/audit/entry.html", context)


@dataclass(frozen=True)
class GlossaryEntry:
    """An audit action, what it records, and the webhook event types announcing the same act, as (type, meaning)."""

    action: str
    meaning: str
    events: list[tuple[str, str]]


def glossary() -> dict[str, list[GlossaryEntry]]:
    """Every declared audit action by kind (its prefix), from the one list the recorder accepts (`AuditAction`)."""
    kinds: dict[str, list[GlossaryEntry]] = {prefix: [] for prefix in ACTION_PREFIXES}
    for action in AuditAction:
        events = [(event, EventType(event).label) for event in ANNOUNCED_AS[action.value]]
        kinds[f"{action.value.split('.')[0]}."].append(GlossaryEntry(action.value, action.label, events))
    return kinds


@require_GET
@login_required
def audit_actions(request: HttpRequest) -> HttpResponse:
    """The glossary: every action the log can record, what it means, and the webhook event type, if any, that
    announces the same act. Open to anyone signed in (the API's schema publishes the same list, and those who
    manage webhooks need it too); links into the explorer only for those who audit."""
    context = {
        "kinds": glossary(),
        # Event types whose sending the log does not record (a test event), so no action above names them.
        "unrecorded_events": [(event, EventType(event).label) for event, actions in RECORDED_AS.items() if not actions],
        "may_audit": portal.audits(request),
    }
    return render(request, "portal/audit/actions.html", context)


@require_http_methods(["GET", "POST"])
@auditors_only
def audit_verify(request: HttpRequest) -> HttpResponse:
    """The latest signed tree head; on POST ("verify now"), its signature, its root against the database and
    its consistency with the head before it, checked now."""
    head = selectors.latest_tree_head()
    checks = tree_head_checks(head) if request.method == "POST" and head is not None else None
    context = {
        "head": head,
        "checks": checks,
        "verified": checks is not None and all(check.ok for check in checks),
    }
    return render(request, "portal/audit/verify.html", context)


@require_GET
@auditors_only
def audit_export(request: HttpRequest) -> HttpResponse:
    """The explorer's view as JSON Lines that `tools/audit_verify.py` checks offline, recorded in the log as the
    API's exports are (`audit_export_begin`).

    With any filter, or for someone who audits only some projects, it is the filtered export: the entries the
    user may read that match the filters, each with its inclusion proof against one signed tree head (the API's
    `/api/v1/audit/entries/export/`). With no filter, the holder of the global permission gets the whole log
    with every signed tree head instead, which also proves that no entry is missing. Invalid filters show the
    explorer with its errors.
    """
    filters = explorer_filters(request)
    if not filters.is_valid():
        return explorer(request, filters, status=400)
    subject = subject_filter(request, filters)
    if not subject.lists:
        return explorer(request, filters, status=400)
    applied = export_filter_document(filters.form.cleaned_data) | subject_document(subject)
    if not applied and selectors.can_read_whole_log(request.user):
        head = audit_export_begin()
        lines, name = export_lines(head), f"audit-log-{head.tree_size}.jsonl"
    else:
        head = audit_export_begin(filters=applied)
        entries = entries_of(filters, subject)
        lines, name = filtered_export_lines(head, entries, filters=applied), f"audit-entries-{head.tree_size}.jsonl"
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


urlpatterns = [
    path("audit/", audit, name="audit"),
    path("audit/verify/", audit_verify, name="audit-verify"),
    path("audit/export/", audit_export, name="audit-export"),
    path("audit/actions/", audit_actions, name="audit-actions"),
    path("audit/<int:seq>/", audit_entry, name="audit-entry"),
]
