"""The audit log for auditors: entries filtered by who, what and when; inclusion and consistency proofs against
signed tree heads; the public key those heads are signed with; and two verifiable exports: the whole log, and the
entries a filter selects, each with its inclusion proof against a signed tree head.

Entries are read through `selectors.entries_visible_to(user)`, so a project's
auditor reads that project's entries and nothing else, in the filtered export too. Tree heads reveal only a size
and a root, so anyone with a token may read them; the whole-log export takes the global permission.
"""

from datetime import timedelta

from django.http import StreamingHttpResponse
from django.utils import timezone
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from artifacts.api.base import ResourceViewSet
from core.api.pagination import NewestFirstCursorPagination
from core.audit import tree as audit_tree
from core.audit.recorder import (
    audit_export_begin,
    export_filter_document,
    export_lines,
    filtered_export_lines,
    public_key_document,
    tree_head_sign,
)
from core.models import AuditEntry, SignedTreeHead
from governance.audit import selectors
from governance.audit.api import serializers as s
from governance.audit.filters import AuditEntryFilter

#: A head asked for this soon after the last one, with no entry since, is that one: signing again adds nothing.
FRESH_HEAD = timedelta(seconds=60)
APPEND_ONLY = "{method} is not offered: the audit log is append-only."


class NewestEntryFirstPagination(NewestFirstCursorPagination):
    """Pages walk the log's sequence, which only grows: no entry is skipped or shown twice while it does."""

    ordering = "-seq"


@extend_schema(tags=["audit"])
class AuditEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    # No select_related: an entry names its actor, object and project in its own columns (the log never joins,
    # so it reads the same after those rows change), and a page is one query whatever its size.
    queryset = AuditEntry.objects.order_by("-seq")
    filterset_class = AuditEntryFilter
    pagination_class = NewestEntryFirstPagination
    output_serializer_class = s.AuditEntrySerializer
    lookup_field = "seq"
    lookup_value_regex = "[0-9]{1,18}"

    def get_queryset(self):
        return selectors.entries_visible_to(self.request.user).order_by("-seq")

    not_allowed_message = APPEND_ONLY

    def not_found_detail(self, value: str) -> str:
        return f"No audit entry {value} that you may read."

    def filter_queryset(self, queryset):
        # An entry's page and its proof are named by seq alone: the list's filters do not apply to them.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    @extend_schema(
        parameters=[s.InclusionQuerySerializer],
        responses={200: s.InclusionProofSerializer, 400: OpenApiResponse(description="tree_size out of range")},
        description="The RFC 9162 inclusion proof of this entry in the tree of tree_size entries. Without "
        "tree_size, the latest signed tree head that holds the entry is used (one is signed if none does yet).",
    )
    @action(detail=True, methods=["get"])
    def proof(self, request: Request, seq: str) -> Response:
        entry = self.get_object()
        query = s.InclusionQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        tree_size = query.validated_data.get("tree_size")
        if tree_size is None:
            head = selectors.tree_head_covering(entry.seq) or tree_head_sign()
            tree_size = head.tree_size
        return Response(selectors.audit_inclusion_proof(entry, tree_size))

    @extend_schema(
        filters=True,
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.BINARY, "The export, as an attachment"),
            400: OpenApiResponse(description="A filter is not valid"),
            403: OpenApiResponse(description="Needs the auditor role on a project or an artifact, or the permission"),
        },
        description="The entries you may read that match the filters (those of the list), as JSON Lines for "
        "`tools/audit_verify.py` to check offline: a header with a signed tree head, its public key, the "
        "filter and how many entries matched; then each entry the head covers, in sequence order, with its "
        "inclusion proof against that head. The export is recorded in the log, with the filter.",
    )
    @action(detail=False, methods=["get"])
    def export(self, request: Request) -> StreamingHttpResponse:
        if not selectors.audits_anything(request.user):
            raise PermissionDenied(
                "The filtered export is for auditors: it needs the auditor role on a project or an artifact, or "
                "the 'core.view_auditentry' permission."
            )
        filters = AuditEntryFilter(request.query_params, queryset=self.get_queryset(), request=request)
        if not filters.is_valid():
            raise translate_validation(filters.errors)
        applied = export_filter_document(filters.form.cleaned_data)
        head = audit_export_begin(filters=applied)
        response = StreamingHttpResponse(
            filtered_export_lines(head, filters.qs, filters=applied), content_type="application/x-ndjson"
        )
        response["Content-Disposition"] = f'attachment; filename="audit-entries-{head.tree_size}.jsonl"'
        return response


@extend_schema(tags=["audit"])
class TreeHeadViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Signed tree heads, newest first. A head reveals only the log's size and root at a moment, so any
    authenticated user may read them (and keep them, to hold the server to them later)."""

    queryset = SignedTreeHead.objects.all()
    serializer_class = s.TreeHeadSerializer

    @extend_schema(
        request=None,
        responses={201: s.TreeHeadSerializer, 200: OpenApiResponse(s.TreeHeadSerializer, "Signed under a minute ago")},
        description="Sign the log's current size and root now. Open to auditors (of any project or artifact) "
        "and holders of core.view_auditentry. When the latest head already covers the log and is under a "
        "minute old, that head is returned (200) instead.",
    )
    def create(self, request: Request) -> Response:
        if not selectors.audits_anything(request.user):
            raise PermissionDenied(
                "Signing a tree head is for auditors: it needs the auditor role on a project or an artifact, or "
                "the 'core.view_auditentry' permission. Reading the heads already signed needs neither."
            )
        latest = selectors.latest_tree_head()
        if (
            latest is not None
            and latest.tree_size >= audit_tree.log_size()
            and timezone.now() - latest.signed_at < FRESH_HEAD
        ):
            return Response(s.TreeHeadSerializer(latest).data, status=status.HTTP_200_OK)
        return Response(s.TreeHeadSerializer(tree_head_sign()).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: s.TreeHeadSerializer, 404: OpenApiResponse(description="None signed yet")})
    @action(detail=False, methods=["get"])
    def latest(self, request: Request) -> Response:
        head = selectors.latest_tree_head()
        if head is None:
            raise NotFound("No tree head has been signed yet; POST to tree-heads/ signs one.")
        return Response(s.TreeHeadSerializer(head).data)

    @extend_schema(
        parameters=[s.ConsistencyQuerySerializer],
        responses={200: s.ConsistencyProofSerializer, 400: OpenApiResponse(description="Sizes out of range")},
        description="The RFC 9162 proof that the log's first `first` entries are unchanged at the start of its "
        "first `second` entries, with both roots, and the heads signed at those sizes if any.",
    )
    @action(detail=False, methods=["get"])
    def consistency(self, request: Request) -> Response:
        query = s.ConsistencyQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        sizes = query.validated_data
        return Response(selectors.audit_consistency_proof(sizes["first"], sizes["second"]))


class AuditExportView(APIView):
    """The whole log as JSON Lines with every signed tree head, for `tools/audit_verify.py` to check offline.
    Streamed a chunk at a time: memory stays flat whatever the log's length."""

    @extend_schema(
        tags=["audit"],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.BINARY, "The export, as an attachment"),
            403: OpenApiResponse(description="Needs the core.view_auditentry permission"),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        if not selectors.can_read_whole_log(request.user):
            raise PermissionDenied(
                "The verifiable export covers the whole log, so it needs the 'core.view_auditentry' "
                "permission; ask an administrator for it. To read the entries of the projects you audit, list "
                "/api/v1/audit/entries/?project=<slug>, or export them with their proofs from "
                "/api/v1/audit/entries/export/?project=<slug>."
            )
        head = audit_export_begin()
        response = StreamingHttpResponse(export_lines(head), content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="audit-log-{head.tree_size}.jsonl"'
        return response


class AuditPublicKeyView(APIView):
    """The key tree heads are signed with, for the verifier's --public-key."""

    @extend_schema(tags=["audit"], responses=s.PublicKeySerializer)
    def get(self, request: Request) -> Response:
        return Response(public_key_document())
