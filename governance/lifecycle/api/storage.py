"""Storage accounting over the API (issue 19, item 7): `GET /projects/{slug}/storage/` for one project and
`GET /storage/` for every project the caller may see. The figures and their definitions are
governance/lifecycle/accounting.py's (README, "Storage accounting"); the portal's dashboard reads the same ones.

Read-only, and scoped like every read: only the versions the caller may see count, a project they may not see
answers 404 as one that does not exist. Serializers sit here with the two views: they translate the accounting's
dataclasses and nothing else reads them.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from artifacts.api.base import project_or_404
from governance.lifecycle import accounting


class KindSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=accounting.KINDS, help_text="An artifact kind, or `dataset` for dataset versions stored here."
    )
    versions = serializers.IntegerField(help_text="Live versions of this kind.")
    stored_bytes = serializers.IntegerField(help_text="Distinct blobs these versions reference, each counted once.")
    logical_bytes = serializers.IntegerField(help_text="The versions' sizes, a blob counted once per version.")
    deduplicated_bytes = serializers.IntegerField(help_text="`logical_bytes - stored_bytes`.")


class PlanSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="plan_id")
    project = serializers.CharField(source="project_slug")
    state = serializers.CharField(help_text="planned, applying or applied (a superseded plan is never the newest).")
    planned_at = serializers.DateTimeField()
    applied_at = serializers.DateTimeField(allow_null=True)
    bytes_reclaimable = serializers.IntegerField(help_text="What the plan found would leave storage when planned.")
    bytes_still_reclaimable = serializers.IntegerField(help_text="The same while it waits to be applied; 0 after.")


class ReclaimableSerializer(serializers.Serializer):
    bytes = serializers.IntegerField(
        help_text="Bytes applying the newest plans would still free: their `bytes_still_reclaimable`, summed."
    )
    plans = PlanSerializer(
        many=True,
        help_text="The newest plan not superseded of each project in scope that you may view; empty: no plan yet.",
    )


class GrowthSerializer(serializers.Serializer):
    month = serializers.DateField(help_text="The month's first day.")
    added_bytes = serializers.IntegerField(help_text="Bytes of the versions published that month.")
    deleted_bytes = serializers.IntegerField(help_text="Bytes of the versions deleted that month.")
    net_bytes = serializers.IntegerField(help_text="`added_bytes - deleted_bytes`.")


class StorageSerializer(serializers.Serializer):
    """One scope's storage accounting (governance.lifecycle.accounting.StorageReport)."""

    project = serializers.CharField(
        source="project.slug", allow_null=True, default=None, help_text="The project; null over every project."
    )
    versions = serializers.IntegerField(source="totals.versions", help_text="Live versions you may see.")
    blobs = serializers.IntegerField(source="totals.blobs", help_text="Distinct blobs they reference.")
    stored_bytes = serializers.IntegerField(
        source="totals.stored_bytes", help_text="Bytes in storage for these versions: each blob counted once."
    )
    logical_bytes = serializers.IntegerField(
        source="totals.logical_bytes", help_text="The versions' sizes, a blob counted once per version."
    )
    deduplicated_bytes = serializers.IntegerField(
        source="totals.deduplicated_bytes", help_text="Saved by deduplication: `logical_bytes - stored_bytes`."
    )
    archived_bytes = serializers.IntegerField(
        source="totals.archived_bytes", help_text="The part of `stored_bytes` moved to a colder storage class."
    )
    by_kind = KindSerializer(many=True, help_text="Per kind with live versions.")
    reclaimable = ReclaimableSerializer(help_text="What the current rules would reclaim, from the newest plans.")
    growth = GrowthSerializer(
        many=True, help_text=f"The last {accounting.GROWTH_MONTHS} calendar months, oldest first."
    )


DEFINITIONS = (
    "Live versions are those not deleted whose bytes are still stored; only those you may see count (a restricted "
    "artifact you may not see adds nothing). A blob used by several versions, artifacts or projects is stored once: "
    "`stored_bytes` counts it once, `logical_bytes` once per version. `reclaimable` reads the newest plan of each "
    "project that no newer one superseded. `growth` counts the bytes of versions published and deleted per month."
)


@extend_schema(tags=["lifecycle"])
class StorageView(APIView):
    """`GET /storage/`: storage accounting over every project the caller may see."""

    @extend_schema(
        description="Storage accounting over every project you may see: bytes stored, saved by deduplication, "
        "archived, reclaimable under the current rules, per kind and by month. " + DEFINITIONS,
        responses={200: StorageSerializer},
    )
    def get(self, request: Request) -> Response:
        """Storage accounting over every project the caller may see."""
        return Response(StorageSerializer(accounting.storage_report(request.user)).data)


@extend_schema(tags=["lifecycle"])
class ProjectStorageView(APIView):
    """`GET /projects/{slug}/storage/`: storage accounting of one project."""

    @extend_schema(
        description="Storage accounting of one project: bytes stored, saved by deduplication, archived, "
        "reclaimable under its current rules, per kind and by month. " + DEFINITIONS,
        responses={
            200: StorageSerializer,
            404: OpenApiResponse(description="No such project, or one you may not see."),
        },
    )
    def get(self, request: Request, slug: str) -> Response:
        """Storage accounting of one project the caller may see."""
        project = project_or_404(request.user, slug)
        return Response(StorageSerializer(accounting.storage_report(request.user, project)).data)
