"""The audit log and its signed tree heads in the admin: read-only, to each auditor as much as they may read, paged
without counting."""

import json
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core.audit import tree as audit_tree
from core.audit.recorder import format_time
from core.models import AuditEntry, SignedTreeHead
from governance.audit import selectors


class LogPaginator(Paginator):
    """Counts without reading the whole log: the unfiltered log's size is its head row, and a filtered list is
    counted up to COUNT_LIMIT rows (pages past that are reached by narrowing the filters, not by paging)."""

    COUNT_LIMIT = 10_000

    @cached_property
    def count(self) -> int:
        if not self.object_list.query.where:
            return audit_tree.log_size()
        return self.object_list[: self.COUNT_LIMIT].count()


class AuditReadOnlyAdmin(admin.ModelAdmin):
    """Nothing is added, changed or deleted here (the database refuses it anyway); auditors of any project or
    artifact may look, and see what `visible_to` gives them."""

    actions = None
    show_full_result_count = False  # a COUNT(*) of a million entries on every page is not worth it
    paginator = LogPaginator
    list_per_page = 100

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or selectors.audits_anything(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) or selectors.audits_anything(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(AuditReadOnlyAdmin):
    list_display = ("seq", "time", "actor", "action", "object", "project")
    list_filter = (("recorded_at", admin.DateFieldListFilter), "action", "actor_kind", "object_type")
    search_fields = ("object_label", "actor_label", "object_id", "project_label", "request_id")
    # No date_hierarchy: its year links read every entry's date on each page; the API filters by time range.
    sortable_by = ("seq",)  # every other order would sort the whole log for each page
    fields = (
        "seq",
        "time",
        "actor_kind",
        "actor_user_id",
        "actor_label",
        "token_id",
        "action",
        "object_type",
        "object_id",
        "object_label",
        "project_id",
        "project_label",
        "artifact_id",
        "request_id",
        "source_ip",
        "user_agent",
        "changes_pretty",
        "leaf_hash_hex",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEntry]:
        return selectors.audit_entries_for(request.user)

    @admin.display(description="time", ordering="recorded_at")
    def time(self, entry: AuditEntry) -> str:
        return format_time(entry.recorded_at)

    @admin.display(description="actor")
    def actor(self, entry: AuditEntry) -> str:
        return entry.actor_label if entry.actor_kind == AuditEntry.ActorKind.USER else f"{entry.actor_label} (system)"

    @admin.display(description="object")
    def object(self, entry: AuditEntry) -> str:
        return f"{entry.object_type} {entry.object_label}"

    @admin.display(description="project")
    def project(self, entry: AuditEntry) -> str:
        return entry.project_label or "-"

    @admin.display(description="changes")
    def changes_pretty(self, entry: AuditEntry) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(json.loads(entry.changes), indent=2, ensure_ascii=False))

    @admin.display(description="leaf hash")
    def leaf_hash_hex(self, entry: AuditEntry) -> str:
        return bytes(entry.leaf_hash).hex()


@admin.register(SignedTreeHead)
class SignedTreeHeadAdmin(AuditReadOnlyAdmin):
    list_display = ("tree_size", "signed_at", "root_hash", "key_id", "locked_until")
    fields = (
        "tree_size",
        "root_hash",
        "signed_at",
        "key_id",
        "public_key",
        "signature",
        "storage_name",
        "locked_until",
    )
    readonly_fields = fields
