"""The artifact store's API for pipelines. Each write validates input, calls one service, and answers
with the resource's read form."""

from django.db.models import Model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, status
from rest_framework import serializers as drf_serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from artifacts import selectors, services
from artifacts.access import selectors as access_selectors
from artifacts.access import services as access_services
from artifacts.access.roles import Verb
from artifacts.access.rule import can, holds_global
from artifacts.api import serializers as s
from artifacts.api.base import (
    LENGTH_REQUIRED_RESPONSE,
    ResourceViewSet,
    project_or_404,
    raw_body,
    require,
    require_upload,
)
from artifacts.api.downloads import blob_download_schema, blob_response, version_download_schema
from artifacts.filters import ArtifactFilter, ArtifactVersionFilter, DatasetFilter, DatasetVersionFilter, RunFilter
from artifacts.models import Artifact, ArtifactVersion, Blob, Project, VersionTombstone
from artifacts.selectors import BlobReadability
from artifacts.services.catalog import AlreadyPublished
from artifacts.services.tiers import blob_restore_request
from core import logs
from core.validators import MAX_ID, parse_digest

VERSION_DELETED_RESPONSE = OpenApiResponse(
    inline_serializer(
        "VersionDeleted",
        {
            "detail": drf_serializers.CharField(),
            "code": drf_serializers.CharField(help_text="version_deleted"),
            "deleted": s.TombstoneSerializer(),
        },
    ),
    "The version was deleted: its record stays, its bytes are not served. `deleted` says when, by whom (null: the "
    "project's retention schedule), why, and which retention rule and plan.",
)

NEVER_DELETED = "{method} is not offered: the record keeps every project, dataset, run and artifact."
IMMUTABLE = "{method} is not offered: versions are immutable. Publish a new version instead."


RESTORE_SCHEMA = extend_schema(
    request=s.BlobRestoreRequestSerializer,
    responses={
        202: OpenApiResponse(s.BlobRestoreSerializer, "S3 is restoring the archived bytes (hours): download then"),
        200: OpenApiResponse(
            s.BlobRestoreSerializer, "Nothing to restore: the bytes can be downloaded now (`readable`)"
        ),
    },
    description="Ask S3 to restore bytes archived in GLACIER or DEEP_ARCHIVE, so they can be downloaded for `days` "
    "days; S3 bills the restore. Needs the contributor or maintainer role. Asking again while a restore runs "
    "changes nothing.",
)


def restore_response(request: Request, blob: Blob, days: int) -> Response:
    """Ask for a restore of `blob`'s bytes and answer where they stand: 202 while S3 restores them, 200 when they
    can be read now."""
    state: BlobReadability = blob_restore_request(blob_id=blob.pk, requested_by=request.user, days=days)
    blob.refresh_from_db(fields=["restore_requested_at"])
    return Response(
        s.BlobRestoreSerializer(state, context={"blob": blob}).data,
        status=status.HTTP_202_ACCEPTED if state.restore_in_progress else status.HTTP_200_OK,
    )


def already_published_schema(serializer) -> OpenApiResponse:
    name = serializer.__name__.removesuffix("Serializer") + "AlreadyPublished"
    return OpenApiResponse(
        inline_serializer(
            name,
            {
                "detail": drf_serializers.CharField(),
                "code": drf_serializers.CharField(help_text="already_published"),
                "existing": serializer(required=False, help_text="Absent if you may no longer see it."),
            },
        ),
        "The same content is already a version, recorded with another run or other details: nothing was "
        "published. `existing` is that version.",
    )


class PublishesVersions:
    """Versions are created by content: the same content again is the existing version, and a request that
    says something else about it answers 409 with that version, so the client can act on it."""

    def publish(self, service) -> Response:
        try:
            return self.write(service)
        except AlreadyPublished as conflict:
            body = {"detail": conflict.message, "code": conflict.code}
            existing = self.get_queryset().filter(pk=conflict.existing.pk).first()
            if existing is not None:
                body["existing"] = self.output_serializer_class(existing, context=self.get_serializer_context()).data
            return Response(body, status=status.HTTP_409_CONFLICT)


class MembersActions:
    """`<resource>/<id>/members/`: the role grants on a project or an artifact. Maintainers and auditors read
    them; maintainers grant (POST) and revoke (DELETE `members/<grant id>/`), through the same services as
    the admin and access reviews."""

    def _members_target(self) -> Model:
        return self.permission_target(self.get_object())

    @extend_schema(methods=["GET"], responses=s.RoleGrantSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=s.RoleGrantCreateSerializer,
        responses={201: s.RoleGrantSerializer, 200: OpenApiResponse(s.RoleGrantSerializer, "Already granted")},
    )
    # The resource's list filters do not apply to its members (nor to finding the one resource).
    @action(detail=True, methods=["get", "post"], url_path="members", filter_backends=[])
    def members(self, request: Request, **kwargs) -> Response:
        target = self._members_target()
        if request.method == "GET":
            if not can(request.user, Verb.AUDIT, target):
                require(request.user, Verb.MANAGE, target)
            grants = access_selectors.role_grants_on(target)
            page = self.paginate_queryset(grants)
            return self.get_paginated_response(s.RoleGrantSerializer(page, many=True).data)
        require(request.user, Verb.MANAGE, target)
        data = self.validated_input()
        grant, created = access_services.role_grant(
            obj=target, role=data["role"], user=data.get("user"), group=data.get("group"), granted_by=request.user
        )
        body = s.RoleGrantSerializer(grant).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<grant_id>[0-9]{1,18})", filter_backends=[])
    def member(self, request: Request, grant_id: str, **kwargs) -> Response:
        target = self._members_target()
        require(request.user, Verb.MANAGE, target)
        grant = access_selectors.role_grants_on(target).filter(pk=int(grant_id)).first()
        if grant is None:
            raise NotFound(f"No grant {grant_id} on {target._meta.verbose_name} '{target}'.")
        access_services.role_revoke(grant=grant, revoked_by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectViewSet(MembersActions, mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.project_list()
    lookup_field = "slug"
    # Only slug-shaped paths reach the database (a NUL byte in a PostgreSQL query is an error, not a miss).
    lookup_value_regex = "[a-z0-9-]{1,64}"
    output_serializer_class = s.ProjectSerializer
    input_serializer_classes = {
        "create": s.ProjectCreateSerializer,
        "partial_update": s.ProjectUpdateSerializer,
        "members": s.RoleGrantCreateSerializer,
    }
    required_verbs = {"partial_update": Verb.MANAGE}
    not_allowed_message = NEVER_DELETED

    def permission_target(self, obj: Project) -> Project:
        return obj

    @extend_schema(request=s.ProjectCreateSerializer, responses={201: s.ProjectSerializer})
    def create(self, request: Request) -> Response:
        if not holds_global(request.user, "artifacts.add_project"):
            raise PermissionDenied(
                "Creating projects needs the 'artifacts.add_project' permission (through a token, an admin-scoped one "
                "restricted to no project); ask an administrator for it."
            )
        data = self.validated_input()
        return self.write(lambda: services.project_create(created_by=request.user, **data), created=True)

    @extend_schema(request=s.ProjectUpdateSerializer, responses=s.ProjectSerializer)
    def partial_update(self, request: Request, slug: str) -> Response:
        project = self.get_object()
        data = self.validated_input()
        return self.write(lambda: services.project_update(project=project, **data))


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.dataset_list()
    filterset_class = DatasetFilter
    output_serializer_class = s.DatasetSerializer
    input_serializer_classes = {
        "create": s.DatasetCreateSerializer,
        "partial_update": s.DescriptionUpdateSerializer,
    }
    required_verbs = {"partial_update": Verb.CONTRIBUTE}
    not_allowed_message = NEVER_DELETED

    @extend_schema(request=s.DatasetCreateSerializer, responses={201: s.DatasetSerializer})
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        require(request.user, Verb.CONTRIBUTE, data["project"])
        return self.write(lambda: services.dataset_create(**data), created=True)

    @extend_schema(request=s.DescriptionUpdateSerializer, responses=s.DatasetSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        dataset = self.get_object()
        data = self.validated_input()
        return self.write(lambda: services.dataset_update(dataset=dataset, **data))


class DatasetVersionViewSet(PublishesVersions, mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.dataset_version_list()
    filterset_class = DatasetVersionFilter
    output_serializer_class = s.DatasetVersionSerializer
    input_serializer_classes = {"create": s.DatasetVersionCreateSerializer}
    not_allowed_message = IMMUTABLE

    @extend_schema(
        request=s.DatasetVersionCreateSerializer,
        responses={
            201: s.DatasetVersionSerializer,
            200: OpenApiResponse(s.DatasetVersionSerializer, "Already recorded with the same details"),
            409: already_published_schema(s.DatasetVersionSerializer),
        },
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        require(request.user, Verb.CONTRIBUTE, data["dataset"].project)
        return self.publish(lambda: services.dataset_version_create(created_by=request.user, **data))


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.run_list()
    filterset_class = RunFilter
    output_serializer_class = s.RunSerializer
    input_serializer_classes = {"create": s.RunCreateSerializer, "partial_update": s.RunUpdateSerializer}
    required_verbs = {"partial_update": Verb.CONTRIBUTE}
    not_allowed_message = NEVER_DELETED

    @extend_schema(request=s.RunCreateSerializer, responses={201: s.RunSerializer})
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        require(request.user, Verb.CONTRIBUTE, data["project"])
        return self.write(lambda: services.run_create(created_by=request.user, **data), created=True)

    @extend_schema(request=s.RunUpdateSerializer, responses=s.RunSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        run = self.get_object()
        data = self.validated_input()
        return self.write(lambda: services.run_update(run=run, **data))


class ArtifactViewSet(MembersActions, mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.artifact_list()
    filterset_class = ArtifactFilter
    output_serializer_class = s.ArtifactSerializer
    input_serializer_classes = {
        "create": s.ArtifactCreateSerializer,
        "partial_update": s.ArtifactUpdateSerializer,
        "members": s.RoleGrantCreateSerializer,
    }
    not_allowed_message = NEVER_DELETED

    def permission_target(self, obj: Artifact) -> Artifact:
        return obj

    @extend_schema(request=s.ArtifactCreateSerializer, responses={201: s.ArtifactSerializer})
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        require(request.user, Verb.CONTRIBUTE, data["project"])
        if data.get("restricted"):
            require(request.user, Verb.MANAGE, data["project"])
        return self.write(lambda: services.artifact_create(created_by=request.user, **data), created=True)

    @extend_schema(request=s.ArtifactUpdateSerializer, responses=s.ArtifactSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        artifact = self.get_object()
        data = self.validated_input()
        # Describing is publishing work; who may reach the artifact is a maintainer's decision.
        require(request.user, Verb.MANAGE if "restricted" in data else Verb.CONTRIBUTE, artifact)
        return self.write(lambda: services.artifact_update(artifact=artifact, changed_by=request.user, **data))


class ArtifactVersionViewSet(PublishesVersions, mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.artifact_version_list()
    filterset_class = ArtifactVersionFilter
    output_serializer_class = s.ArtifactVersionSerializer
    input_serializer_classes = {"create": s.ArtifactVersionCreateSerializer, "restore": s.BlobRestoreRequestSerializer}
    # A restore is billed by S3: publishing work, not a reader's.
    required_verbs = {"restore": Verb.CONTRIBUTE}
    not_allowed_message = IMMUTABLE

    def permission_target(self, obj: ArtifactVersion) -> Artifact:
        return obj.artifact

    def paginate_queryset(self, queryset):
        # The paginator walks "-id"; a user who sees few artifacts gets the page's rows picked first, through
        # each artifact's newest versions (see the selector for why).
        offset, reverse, position = self.paginator.decode_cursor(self.request) or (0, False, None)
        count = offset + self.paginator.get_page_size(self.request) + 1
        # The filter answered 400 already if the query string was invalid; valid, it names the artifacts the
        # page's versions can belong to (a project's, an artifact, a kind), if it filters by them, among which the
        # selector counts.
        filters = self.filterset_class(self.request.query_params, queryset=queryset, request=self.request)
        artifacts = filters.artifacts(Artifact.objects.all()) if filters.is_valid() else None
        queryset = selectors.artifact_versions_in_page(
            queryset, self.request.user, position=position, reverse=reverse, count=count, artifacts=artifacts
        )
        return super().paginate_queryset(queryset)

    @extend_schema(
        request=s.ArtifactVersionCreateSerializer,
        responses={
            201: s.ArtifactVersionSerializer,
            200: OpenApiResponse(
                s.ArtifactVersionSerializer,
                "These bytes were already published with the same run, media type and metadata: the existing version",
            ),
            409: already_published_schema(s.ArtifactVersionSerializer),
        },
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        require(request.user, Verb.CONTRIBUTE, data["artifact"])
        return self.publish(lambda: services.artifact_version_publish(created_by=request.user, **data))

    @version_download_schema(VERSION_DELETED_RESPONSE)
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str):
        version = self.get_object()
        if (tombstone := getattr(version, "tombstone", None)) is not None:
            return version_gone(version, tombstone)
        logs.bind(project_id=version.artifact.project_id)
        filename = version.metadata.get("filename") or f"{version.artifact.name}-v{version.number}"
        return blob_response(request, version.blob, filename=str(filename), through=version)

    @RESTORE_SCHEMA
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str) -> Response:
        version = self.get_object()
        return restore_response(request, version.blob, self.validated_input()["days"])


def version_gone(version: ArtifactVersion, tombstone: VersionTombstone) -> Response:
    """410 Gone for a deleted version's bytes, saying who deleted it, when and why (HEAD gets the same status)."""
    detail = f"{version} was {tombstone.summary} Its record and lineage stay; its bytes are not served."
    return Response(
        {"detail": detail, "code": "version_deleted", "deleted": s.TombstoneSerializer(tombstone).data},
        status=status.HTTP_410_GONE,
    )


class LineageView(APIView):
    """Upstream (what made a node) and downstream (what it made), to any depth, in one recursive query."""

    NODE_TYPES = {"dataset-version": "dataset_version", "run": "run", "artifact-version": "artifact_version"}

    @extend_schema(
        parameters=[
            OpenApiParameter("direction", enum=["upstream", "downstream", "both"], default="both"),
            OpenApiParameter(
                "depth",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                description="Edges to follow (default all).",
            ),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, node_type: str, node_id: int) -> Response:
        if node_type not in self.NODE_TYPES:
            raise NotFound(f"Lineage starts from one of: {', '.join(self.NODE_TYPES)}; not '{node_type}'.")
        if node_id > MAX_ID:
            raise NotFound(f"No {node_type.replace('-', ' ')} with id {node_id}.")
        query = s.LineageQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        graph = selectors.lineage_graph(
            node_type=self.NODE_TYPES[node_type],
            node_id=node_id,
            direction=query.validated_data["direction"],
            max_depth=query.validated_data["depth"],
            user=request.user,
        )
        if graph is None:
            raise NotFound(f"No {node_type.replace('-', ' ')} with id {node_id}.")
        context = {"request": request}
        return Response(
            {
                "root": s.LineageNodeSerializer(graph.root, context=context).data,
                "direction": query.validated_data["direction"],
                "nodes": s.LineageNodeSerializer(graph.nodes, many=True, context=context).data,
                "edges": [{"source": source, "target": target} for source, target in graph.edges],
                "hidden_nodes": graph.hidden,
            }
        )


class ProjectBlobLookup:
    """A project's blob by the digest in the URL, as the caller may read it: 404 naming both otherwise."""

    request: Request

    def _project(self, slug: str) -> Project:
        return project_or_404(self.request.user, slug)

    def _blob(self, project: Project, digest: str) -> Blob:
        blob = selectors.blob_held_by(project, parse_digest(digest), self.request.user)
        if blob is None:
            raise NotFound(f"Project '{project.slug}' holds no blob {digest}.")
        return blob


class ProjectBlobView(ProjectBlobLookup, APIView):
    """A project's blobs by digest: HEAD says whether the project holds it, GET streams it, PUT uploads it.

    The digest in the URL is the one the bytes must hash to; a mismatch keeps nothing.
    """

    # drf-spectacular leaves HEAD out; the schema's HEAD is GET's, without bodies (core.api.schema).
    def head(self, request: Request, slug: str, digest: str):
        project = self._project(slug)
        return blob_response(request, self._blob(project, digest), filename=digest, through=project)

    @blob_download_schema
    def get(self, request: Request, slug: str, digest: str):
        project = self._project(slug)
        return blob_response(request, self._blob(project, digest), filename=digest, through=project)

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, 411: LENGTH_REQUIRED_RESPONSE},
        description="Upload the file's bytes as the request body (with Content-Length: a chunked body without it "
        "answers 411). Answers 201 when the "
        "bytes were new to the store, 200 when they were already stored.",
    )
    def put(self, request: Request, slug: str, digest: str) -> Response:
        project = self._project(slug)
        require_upload(request.user, project)
        stream, length = raw_body(request)
        blob, created = services.blob_store(
            project=project, stream=stream, expected_digest=digest, uploaded_by=request.user, declared_length=length
        )
        return Response(
            {
                "digest": blob.prefixed_digest,
                "size": blob.size,
                "state": blob.state,
                "url": reverse(
                    "api:project-blob", kwargs={"slug": slug, "digest": blob.prefixed_digest}, request=request
                ),
            },
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ProjectBlobRestoreView(ProjectBlobLookup, APIView):
    """Ask S3 to restore a project's blob archived in a class that cannot be read at once (GLACIER, DEEP_ARCHIVE)."""

    @RESTORE_SCHEMA
    def post(self, request: Request, slug: str, digest: str) -> Response:
        project = self._project(slug)
        blob = self._blob(project, digest)
        require(request.user, Verb.CONTRIBUTE, project)
        days = s.BlobRestoreRequestSerializer(data=request.data)
        days.is_valid(raise_exception=True)
        return restore_response(request, blob, days.validated_data["days"])


class ProjectBlobStateView(ProjectBlobLookup, APIView):
    """Where a project's blob stands: its size and verification state, as the PUT that stored it answered.

    A client that uploaded bytes polls this until the state is `verified` (or `corrupt`), without reading them; a
    corrupt blob answers here with its state, where every download of it answers 409.
    """

    @extend_schema(responses=s.ProjectBlobSerializer)
    def get(self, request: Request, slug: str, digest: str) -> Response:
        project = self._project(slug)
        blob = self._blob(project, digest)
        return Response(s.ProjectBlobSerializer(blob, context={"request": request, "project": project}).data)
