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
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from core.audit import signing
from core.audit import tree as audit_tree
from core.audit.actions import ACTION_PREFIXES, AuditAction
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
from core.models import AuditEntry, SignedTreeHead
from core.pagination import PAGING, KeysetPage, keyset_page
from governance.audit import selectors
from governance.audit.filters import AuditEntryFilter
from governance.portal import context as portal

PAGE_SIZE = 50
#: Query parameters that page through the list rather than filter it.


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


def explorer(request: HttpRequest, filters: AuditEntryFilter, *, status: int = 200) -> HttpResponse:
    valid = filters.is_valid()
    page = keyset_page(filters.qs, request.GET, key="seq", size=PAGE_SIZE) if valid else KeysetPage([], None, None)
    cleaned = filters.form.cleaned_data if valid else {}
    context = {
        "filters": filters,
        "form": filters.form,
        "since": time_input(cleaned.get("since")),
        "until": time_input(cleaned.get("until")),
        "filtered": any(value for name, value in request.GET.items() if name not in PAGING),
        "page": page,
        "newest": filter_query(request.GET).urlencode(),
        "may_export_whole_log": selectors.can_read_whole_log(request.user),
        # Offered as the action field's suggestions: the declared vocabulary, each kind's prefix first.
        "known_actions": [*ACTION_PREFIXES, *AuditAction.values],
    }
    return render(request, "portal/audit/list.html", context, status=status)


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
    applied = export_filter_document(filters.form.cleaned_data)
    if not applied and selectors.can_read_whole_log(request.user):
        head = audit_export_begin()
        lines, name = export_lines(head), f"audit-log-{head.tree_size}.jsonl"
    else:
        head = audit_export_begin(filters=applied)
        lines, name = filtered_export_lines(head, filters.qs, filters=applied), f"audit-entries-{head.tree_size}.jsonl"
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


urlpatterns = [
    path("audit/", audit, name="audit"),
    path("audit/verify/", audit_verify, name="audit-verify"),
    path("audit/export/", audit_export, name="audit-export"),
    path("audit/<int:seq>/", audit_entry, name="audit-entry"),
]
