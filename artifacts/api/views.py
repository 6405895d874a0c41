"""The artifact store's API for pipelines. Each write validates input, calls one service, and answers
with the resource's read form."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from artifacts import selectors, services
from artifacts.api import serializers as s
from artifacts.api.base import ResourceViewSet, raw_body
from artifacts.api.downloads import blob_download_schema, blob_response
from artifacts.filters import (
    ArtifactFilter,
    ArtifactVersionFilter,
    DatasetFilter,
    DatasetVersionFilter,
    RunFilter,
)
from artifacts.models import Blob, Project
from artifacts.validators import MAX_ID, parse_digest

NEVER_DELETED = "{method} is not offered: the record keeps every project, dataset, run and artifact."
IMMUTABLE = "{method} is not offered: versions are immutable. Publish a new version instead."


class ProjectViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.project_list()
    lookup_field = "slug"
    # Only slug-shaped paths reach the database (a NUL byte in a PostgreSQL query is an error, not a miss).
    lookup_value_regex = "[a-z0-9-]{1,64}"
    output_serializer_class = s.ProjectSerializer
    input_serializer_classes = {
        "create": s.ProjectCreateSerializer,
        "partial_update": s.ProjectUpdateSerializer,
    }
    not_allowed_message = NEVER_DELETED

    @extend_schema(request=s.ProjectCreateSerializer, responses={201: s.ProjectSerializer})
    def create(self, request: Request) -> Response:
        return self.respond(services.project_create(**self.validated_input()), created=True)

    @extend_schema(request=s.ProjectUpdateSerializer, responses=s.ProjectSerializer)
    def partial_update(self, request: Request, slug: str) -> Response:
        return self.respond(services.project_update(project=self.get_object(), **self.validated_input()))


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.dataset_list()
    filterset_class = DatasetFilter
    output_serializer_class = s.DatasetSerializer
    input_serializer_classes = {
        "create": s.DatasetCreateSerializer,
        "partial_update": s.DescriptionUpdateSerializer,
    }
    not_allowed_message = NEVER_DELETED

    @extend_schema(request=s.DatasetCreateSerializer, responses={201: s.DatasetSerializer})
    def create(self, request: Request) -> Response:
        dataset = services.dataset_create(**self.validated_input())
        return self.respond(self.get_queryset().get(pk=dataset.pk), created=True)

    @extend_schema(request=s.DescriptionUpdateSerializer, responses=s.DatasetSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        services.dataset_update(dataset=self.get_object(), **self.validated_input())
        return self.respond(self.get_object())


class DatasetVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.dataset_version_list()
    filterset_class = DatasetVersionFilter
    output_serializer_class = s.DatasetVersionSerializer
    input_serializer_classes = {"create": s.DatasetVersionCreateSerializer}
    not_allowed_message = IMMUTABLE

    @extend_schema(
        request=s.DatasetVersionCreateSerializer,
        responses={
            201: s.DatasetVersionSerializer,
            200: OpenApiResponse(s.DatasetVersionSerializer, "Already recorded"),
        },
    )
    def create(self, request: Request) -> Response:
        version, created = services.dataset_version_create(created_by=request.user, **self.validated_input())
        return self.respond(version, created=created)


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.run_list()
    filterset_class = RunFilter
    output_serializer_class = s.RunSerializer
    input_serializer_classes = {"create": s.RunCreateSerializer, "partial_update": s.RunUpdateSerializer}
    not_allowed_message = NEVER_DELETED

    @extend_schema(request=s.RunCreateSerializer, responses={201: s.RunSerializer})
    def create(self, request: Request) -> Response:
        run = services.run_create(created_by=request.user, **self.validated_input())
        return self.respond(self.get_queryset().get(pk=run.pk), created=True)

    @extend_schema(request=s.RunUpdateSerializer, responses=s.RunSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        services.run_update(run=self.get_object(), **self.validated_input())
        return self.respond(self.get_object())


class ArtifactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.artifact_list()
    filterset_class = ArtifactFilter
    output_serializer_class = s.ArtifactSerializer
    input_serializer_classes = {
        "create": s.ArtifactCreateSerializer,
        "partial_update": s.DescriptionUpdateSerializer,
    }
    not_allowed_message = NEVER_DELETED

    @extend_schema(request=s.ArtifactCreateSerializer, responses={201: s.ArtifactSerializer})
    def create(self, request: Request) -> Response:
        artifact = services.artifact_create(**self.validated_input())
        return self.respond(self.get_queryset().get(pk=artifact.pk), created=True)

    @extend_schema(request=s.DescriptionUpdateSerializer, responses=s.ArtifactSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        services.artifact_update(artifact=self.get_object(), **self.validated_input())
        return self.respond(self.get_object())


class ArtifactVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.artifact_version_list()
    filterset_class = ArtifactVersionFilter
    output_serializer_class = s.ArtifactVersionSerializer
    input_serializer_classes = {"create": s.ArtifactVersionCreateSerializer}
    not_allowed_message = IMMUTABLE

    @extend_schema(
        request=s.ArtifactVersionCreateSerializer,
        responses={
            201: s.ArtifactVersionSerializer,
            200: OpenApiResponse(
                s.ArtifactVersionSerializer, "These bytes were already published: the existing version"
            ),
        },
    )
    def create(self, request: Request) -> Response:
        version, created = services.artifact_version_publish(created_by=request.user, **self.validated_input())
        return self.respond(version, created=created)

    @blob_download_schema
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str):
        version = self.get_object()
        filename = version.metadata.get("filename") or f"{version.artifact.name}-v{version.number}"
        return blob_response(request, version.blob, filename=str(filename))


class LineageView(APIView):
    """Upstream (what made a node) and downstream (what it made), to any depth, in one recursive query."""

    NODE_TYPES = {"dataset-version": "dataset_version", "run": "run", "artifact-version": "artifact_version"}

    @extend_schema(
        parameters=[
            OpenApiParameter("direction", enum=["upstream", "downstream", "both"], default="both"),
            OpenApiParameter("depth", int, description="Edges to follow, 1-1000 (default: all)."),
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
            }
        )


class ProjectBlobView(APIView):
    """A project's blobs by digest: HEAD says whether the project holds it, GET streams it, PUT uploads it.

    The digest in the URL is the one the bytes must hash to; a mismatch keeps nothing.
    """

    def _project(self, slug: str) -> Project:
        return get_object_or_404(Project, slug=slug)

    def _blob(self, project: Project, digest: str) -> Blob:
        blob = selectors.blob_held_by(project, parse_digest(digest))
        if blob is None:
            raise NotFound(f"Project '{project.slug}' holds no blob {digest}.")
        return blob

    @extend_schema(responses={200: None, 404: None})
    def head(self, request: Request, slug: str, digest: str):
        return blob_response(request, self._blob(self._project(slug), digest), filename=digest)

    @blob_download_schema
    def get(self, request: Request, slug: str, digest: str):
        return blob_response(request, self._blob(self._project(slug), digest), filename=digest)

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT},
        description="Upload the file's bytes as the request body (with Content-Length). Answers 201 when the "
        "bytes were new to the store, 200 when they were already stored.",
    )
    def put(self, request: Request, slug: str, digest: str) -> Response:
        project = self._project(slug)
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
