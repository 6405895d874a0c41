"""Resumable, chunked uploads for large files (after the OCI distribution spec's upload sessions).

GET    /projects/{slug}/uploads/   your own sessions in the project, newest first
POST   /projects/{slug}/uploads/   {"digest": "sha256:…", "size": n}  → 201 session (200 if already held)
PATCH  /uploads/{id}/              a chunk, with Upload-Offset (or Content-Range)  → 202, the new offset
GET    /uploads/{id}/              where the upload stands (Upload-Offset, Range)
PUT    /uploads/{id}/?digest=…     finish, with an optional last chunk  → 201 blob (200 if not new, or repeated)
DELETE /uploads/{id}/              cancel; partial data is removed
"""

import re

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from artifacts.api.base import LENGTH_REQUIRED_RESPONSE, get_or_404, project_or_404, raw_body, require_upload
from artifacts.api.serializers import (
    ProjectBlobSerializer,
    UploadSessionListSerializer,
    UploadSessionSerializer,
    UploadSessionStartSerializer,
)
from artifacts.models import UploadSession
from artifacts.services import uploads as upload_services
from core import logs
from core.api.pagination import NewestFirstCursorPagination
from core.errors import InvalidInput

CONTENT_RANGE = re.compile(r"^(?:bytes )?(\d+)-(\d+)(?:/(?:\d+|\*))?$")
OFFSET_HEADERS = [
    OpenApiParameter(
        "Upload-Offset",
        {"type": "integer", "minimum": 0},
        OpenApiParameter.HEADER,
        description="Where this chunk starts.",
    ),
    OpenApiParameter(
        "Content-Range",
        {"type": "string", "pattern": r"^\s*(?:bytes )?\d+-\d+(?:/(?:\d+|\*))?\s*$"},
        OpenApiParameter.HEADER,
        description="Or `<start>-<end>` (inclusive).",
    ),
]


def session_headers(*statuses: int) -> list[OpenApiParameter]:
    """The headers session_response sends, on the answers of `statuses` that carry a session."""
    return [
        OpenApiParameter(
            "Location", str, OpenApiParameter.HEADER, response=list(statuses), description="The session's URL."
        ),
        OpenApiParameter(
            "Upload-Offset",
            int,
            OpenApiParameter.HEADER,
            response=list(statuses),
            description="How many bytes the session holds: where the next chunk starts.",
        ),
        OpenApiParameter(
            "Range",
            str,
            OpenApiParameter.HEADER,
            response=list(statuses),
            description="`0-<last byte held>`, once the session holds any.",
        ),
    ]


def chunk_start(request: Request, length: int | None) -> int | None:
    """Where the client says a chunk starts: Upload-Offset, or the start of Content-Range (whose end must
    agree with the body's length)."""
    offset = request.headers.get("Upload-Offset")
    if offset is not None:
        if not offset.isdigit():
            raise InvalidInput("Upload-Offset is the byte position where this chunk starts, a whole number.")
        return int(offset)
    content_range = request.headers.get("Content-Range")
    if content_range is None:
        return None
    match = CONTENT_RANGE.match(content_range.strip())
    if not match:
        raise InvalidInput("Content-Range looks like '0-1048575' (first and last byte of this chunk).")
    first, last = int(match[1]), int(match[2])
    if length is not None and last - first + 1 != length:
        raise InvalidInput(f"Content-Range {first}-{last} covers {last - first + 1} bytes, but the body has {length}.")
    return first


def session_response(request: Request, session: UploadSession, code: int) -> Response:
    body = UploadSessionSerializer(session, context={"request": request}).data
    response = Response(body, status=code)
    response["Location"] = str(body["url"])
    response["Upload-Offset"] = str(session.offset)
    if session.offset:
        response["Range"] = f"0-{session.offset - 1}"
    return response


class NewestSessionsFirst(NewestFirstCursorPagination):
    """Sessions' ids are random (they are in URLs a stranger must not guess), so the cursor walks their age."""

    ordering = "-created_at"


class ProjectUploadsView(GenericAPIView):
    queryset = UploadSession.objects.none()  # for the schema: the sessions listed are the caller's, in `get`
    pagination_class = NewestSessionsFirst

    @extend_schema(
        responses=UploadSessionListSerializer(many=True),
        description="Your own upload sessions in this project that have not expired, newest first: where each "
        "stands (state, offset, size) and until when it is kept. Sessions are their creator's alone, so nobody "
        "else's are listed. A direct upload's part URLs come with the session itself (GET its url).",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_or_404(request.user, slug)
        require_upload(request.user, project)
        # project: the slug on every row, from the one project already read (no query per session).
        sessions = UploadSession.objects.filter(
            project=project, created_by=request.user, expires_at__gt=timezone.now()
        ).select_related("project")
        page = self.paginate_queryset(sessions)
        return self.get_paginated_response(
            UploadSessionListSerializer(page, many=True, context={"request": request}).data
        )

    @extend_schema(
        request=UploadSessionStartSerializer,
        responses={201: UploadSessionSerializer, 200: ProjectBlobSerializer},
        parameters=session_headers(201),
        description="Open a resumable upload. If the project already holds intact bytes with this digest, "
        "answers 200 with the blob instead: nothing needs sending.",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_or_404(request.user, slug)
        require_upload(request.user, project)
        start = UploadSessionStartSerializer(data=request.data)
        start.is_valid(raise_exception=True)
        session, held = upload_services.upload_session_start(
            project=project, created_by=request.user, size=start.validated_data.get("size"),
            digest=start.validated_data.get("digest"), direct=start.validated_data["direct"],
        )  # fmt: skip
        if held is not None:
            context = {"request": request, "project": project}
            return Response(ProjectBlobSerializer(held, context=context).data, status=status.HTTP_200_OK)
        return session_response(request, session, status.HTTP_201_CREATED)


class UploadView(APIView):
    def _session(self, request: Request, pk: str) -> UploadSession:
        # Sessions are their creator's alone: anyone else is told there is no such session. The creator must
        # still be allowed to publish to the project: a revoked role stops an upload in progress.
        session = get_or_404(UploadSession.objects.select_related("project").filter(created_by=request.user), "pk", pk)
        require_upload(request.user, session.project)
        logs.bind(project=session.project.slug, project_id=session.project_id, upload_session=str(session.pk))
        return session

    @extend_schema(responses=UploadSessionSerializer, parameters=session_headers(200))
    def get(self, request: Request, pk: str) -> Response:
        session = self._session(request, pk)
        if session.expires_at <= timezone.now():
            raise NotFound(f"Upload session {pk} has expired; start a new one.")
        return session_response(request, session, status.HTTP_200_OK)

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        parameters=[*OFFSET_HEADERS, *session_headers(202)],
        responses={
            202: UploadSessionSerializer,
            409: OpenApiResponse(
                description="Another request is writing, or the upload is closed (finished: the message names its blob)"
            ),
            411: LENGTH_REQUIRED_RESPONSE,
            416: OpenApiResponse(description="The chunk does not start where the upload stands"),
        },
        description="Append a chunk. Every chunk but the last must be at least `min_chunk_size` bytes: with a size "
        "announced, a shorter chunk that stops before the end is refused (400 `chunk_too_small`) and nothing is "
        "written; with none, a shorter chunk is taken as the last, and only PUT may follow.",
    )
    def patch(self, request: Request, pk: str) -> Response:
        session = self._session(request, pk)
        stream, length = raw_body(request)
        start = chunk_start(request, length)
        if start is None:
            raise InvalidInput(
                "Say where this chunk starts with an Upload-Offset header (or Content-Range), so a retried chunk "
                "is never appended twice."
            )
        session = upload_services.upload_session_append(session=session, stream=stream, start=start, length=length)
        return session_response(request, session, status.HTTP_202_ACCEPTED)

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter("digest", str, description="sha256:<hex>, as announced."),
            *OFFSET_HEADERS,
            *session_headers(202),
        ],
        responses={
            201: OpenApiResponse(ProjectBlobSerializer, "The bytes hash to the digest and were new to the store"),
            200: OpenApiResponse(
                ProjectBlobSerializer,
                "The store already held the bytes; or this upload had already finished (a repeated PUT), and this "
                "is the blob it stored",
            ),
            202: OpenApiResponse(UploadSessionSerializer, "A direct upload, sealed: a worker checks its digest"),
            411: LENGTH_REQUIRED_RESPONSE,
        },
        description="Finish the upload, with its last chunk as the body or with none. With a size announced, "
        "the last chunk must reach it. Repeating the request after it succeeded answers 200 with the same blob.",
    )
    def put(self, request: Request, pk: str) -> Response:
        session = self._session(request, pk)
        project = session.project
        digest = request.query_params.get("digest")
        if session.expires_at > timezone.now():
            # A finishing request repeated (its answer lost) gets the same answer again, not a 404.
            if session.state == UploadSession.State.COMPLETED:
                blob = upload_services.upload_session_finished_blob(session=session, digest=digest, user=request.user)
                body = ProjectBlobSerializer(blob, context={"request": request, "project": project}).data
                return Response(body, status=status.HTTP_200_OK)
            if session.state == UploadSession.State.VERIFYING:
                return session_response(request, session, status.HTTP_202_ACCEPTED)
        if upload_services.is_direct(session):
            session = upload_services.upload_session_seal(session=session, digest=digest)
            return session_response(request, session, status.HTTP_202_ACCEPTED)
        stream, length = raw_body(request)
        blob, created = upload_services.upload_session_finish(
            session=session,
            digest=digest,
            stream=stream,
            start=chunk_start(request, length),
            length=length,
        )
        body = ProjectBlobSerializer(blob, context={"request": request, "project": project}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        upload_services.upload_session_cancel(session=self._session(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
