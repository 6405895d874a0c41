"""The format scans of a version's bytes: the current one (what gates and pages go by) and the history."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from artifacts.api.base import get_or_404
from artifacts.models import ArtifactVersion
from core.errors import NotFound
from core.validators import MAX_ID
from governance.supplychain.models import BlobScan
from governance.supplychain.selectors.scans import blob_scan_current, blob_scans


class FindingSerializer(serializers.Serializer):
    kind = serializers.CharField(
        help_text="dangerous_import, unknown_import, object_array, unreadable_pickle, malformed_header, "
        "external_data_path, not_checked or scanner_failed."
    )
    severity = serializers.ChoiceField(choices=["suspicious", "unsafe", "error"])
    detail = serializers.CharField(help_text="What was found, in a sentence.")
    module = serializers.CharField(required=False, help_text="The module a pickle imports (`posix`).")
    name = serializers.CharField(required=False, help_text="The name it imports from it (`system`), or a weight's.")
    opcode = serializers.CharField(required=False, help_text="The pickle opcode that imports it.")
    member = serializers.CharField(required=False, help_text="The archive member it is in (`archive/data.pkl`).")


class BlobScanSerializer(serializers.ModelSerializer):
    digest = serializers.CharField(source="blob.prefixed_digest", read_only=True)
    findings = FindingSerializer(many=True, read_only=True)
    findings_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = BlobScan
        fields = [
            "id", "digest", "detected_format", "scanner", "scanner_version", "verdict", "findings_count",
            "findings", "started_at", "scanned_at",
        ]  # fmt: skip
        read_only_fields = fields


NOT_SCANNED = OpenApiResponse(
    description="No such version visible to you, or its bytes were not scanned yet (`code` `not_scanned`): "
    "they are scanned once verified."
)


class VersionScanLookup:
    request: Request

    def _version(self, pk: int) -> ArtifactVersion:
        if pk > MAX_ID:
            raise NotFound(f"No artifact version with id {pk}.")
        return get_or_404(ArtifactVersion.objects.visible_to(self.request.user).select_related("blob"), "pk", pk)


class ArtifactVersionScanView(VersionScanLookup, APIView):
    """`GET /artifact-versions/{id}/scan/`: the scan the version's bytes are judged by, for whoever may read it."""

    @extend_schema(
        operation_id="artifact_versions_scan_retrieve",
        description="The current format scan of the version's bytes: the latest by the current scanner version, "
        "else the latest by any. `detected_format` comes from the bytes (magic numbers and structure), never "
        "the file name; `verdict` is `clean`, `suspicious` (imports the scanner does not know to be safe), "
        "`unsafe` (code run on load, or a header inconsistent with the file), `error` (the file could not be "
        "read to its end, so the rest is unchecked) or `not_applicable` (no model format detected).",
        responses={200: BlobScanSerializer, 404: NOT_SCANNED},
    )
    def get(self, request: Request, pk: int) -> Response:
        version = self._version(pk)
        scan = blob_scan_current(version.blob)
        if scan is None:
            raise NotFound(
                f"The bytes of {version} were not scanned yet: they are scanned once verified "
                f"(state now: {version.blob.state}).",
                code="not_scanned",
            )
        return Response(BlobScanSerializer(scan).data)


class ArtifactVersionScansView(VersionScanLookup, APIView):
    """`GET /artifact-versions/{id}/scans/`: every scan of the version's bytes, newest first."""

    pagination_class = None

    @extend_schema(
        operation_id="artifact_versions_scans_list",
        description="Every format scan of the version's bytes, newest first: one on arrival, and one more each "
        "time a newer scanner version rescanned them. Scans are never rewritten.",
        responses={200: BlobScanSerializer(many=True)},
    )
    def get(self, request: Request, pk: int) -> Response:
        version = self._version(pk)
        return Response(BlobScanSerializer(blob_scans(version.blob).select_related("blob"), many=True).data)
