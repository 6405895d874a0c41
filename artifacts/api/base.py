"""What every API resource shares: input/output serializer switch, service-backed writes, the access rule
applied to every queryset, and refusals that explain themselves."""

import io
from collections.abc import Callable
from typing import BinaryIO

from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import generics, serializers, status, viewsets
from rest_framework.exceptions import MethodNotAllowed, NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from artifacts.access.roles import ROLE_VERBS, Verb
from artifacts.access.rule import User, can, can_upload
from artifacts.models import Project
from core import logs
from core.changes import ChangeSet
from core.errors import DomainError

VERB_PHRASES = {
    Verb.VIEW: "read",
    Verb.CONTRIBUTE: "publish to",
    Verb.REVIEW: "review promotions of",
    Verb.MANAGE: "manage",
    Verb.AUDIT: "audit",
}


def require(user: User, verb: str, target: Model) -> None:
    """403 unless `user` holds `verb` on `target` (a project or an artifact), saying which roles would do."""
    if can(user, verb, target):
        return
    roles = " or ".join(role for role, verbs in ROLE_VERBS.items() if verb in verbs)
    noun = target._meta.verbose_name
    raise PermissionDenied(
        f"You may not {VERB_PHRASES[verb]} {noun} '{target}': that needs the {roles} role on the {noun}"
        + (" or its project." if noun == "artifact" else ".")
    )


def require_upload(user: User, project: Model) -> None:
    """403 unless `user` may upload bytes into `project` (see artifacts.access.rule.can_upload)."""
    if not can_upload(user, project):
        raise PermissionDenied(
            f"You may not upload to project '{project}': that needs the contributor or maintainer role on the "
            "project or on one of its artifacts."
        )


def not_found_detail(model: type[Model], field: str, value: object) -> str:
    """ "No project 'x'.", "No artifact version with id 5.": a 404 that names what was looked for."""
    noun = model._meta.verbose_name
    shown = str(value)[:100]
    if field in ("pk", "id"):
        return f"No {noun} with id {shown}."
    if field == "slug":
        return f"No {noun} '{shown}'."
    return f"No {noun} with {field} {shown}."


def get_or_404(queryset: QuerySet, field: str, value: object) -> Model:
    """The object of `queryset` whose `field` is `value`, or a 404 naming what was looked for.

    `queryset` must already hold only what the user may see: an object that exists but is hidden answers the
    same 404 as one that does not exist. A value of the wrong type (a word for an id) is a 404 too.
    """
    try:
        return generics.get_object_or_404(queryset, **{field: value})
    except Http404:
        raise NotFound(not_found_detail(queryset.model, field, value)) from None


def project_or_404(user: User, slug: str) -> Project:
    """The project `slug` if `user` may see it, else a 404 naming the slug. Once found, the request's later log
    lines (and the tasks it queues) name it: uploads, downloads, upload sessions."""
    project = get_or_404(Project.objects.visible_to(user), "slug", slug)
    logs.bind(project=project.slug, project_id=project.pk)
    return project


class ResourceViewSet(viewsets.GenericViewSet):
    """A resource read through `output_serializer_class` and written through the input serializer its
    action names in `input_serializer_classes`; the write itself is a service call in the subclass.

    Every queryset is narrowed by `visible_to(user)` here, so no endpoint can forget it: an object the user
    may not see answers 404 on every method. `required_verbs` names what an action needs on the object it
    acts on (`permission_target`): a user who may see the object but lacks that answers 403.
    """

    output_serializer_class = None
    input_serializer_classes: dict = {}
    required_verbs: dict[str, str] = {}
    #: Said when a client tries a method the resource does not offer (immutability, no deletes).
    not_allowed_message = "{method} is not offered here."

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user)

    def get_object(self):
        try:
            obj = super().get_object()
        except Http404:
            raise NotFound(self.not_found_detail(self.kwargs[self.lookup_url_kwarg or self.lookup_field])) from None
        if verb := self.required_verbs.get(self.action):
            require(self.request.user, verb, self.permission_target(obj))
        return obj

    def not_found_detail(self, value: str) -> str:
        """What a 404 says when the looked-up object does not exist or is not visible to the user (the same
        words for both, so existence does not leak)."""
        return not_found_detail(self.get_queryset().model, self.lookup_field, value)

    def permission_target(self, obj: Model) -> Model:
        """The project or artifact whose roles govern `obj`."""
        return obj.project

    def get_serializer_class(self):
        return self.input_serializer_classes.get(self.action, self.output_serializer_class)

    def validated_input(self) -> dict:
        serializer = self.get_serializer(data=self.request.data, partial=self.action == "partial_update")
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def write(self, service: Callable[[], Model | tuple[Model, bool]], *, created: bool = False) -> Response:
        """Run a write and answer with the object as the user now sees it.

        The object is re-read through the user's visible queryset inside the write's transaction, so a write
        that would leave it out of the user's sight is undone and refused instead of half-answered.

        The write runs in a change set of its own, which the service's joins (core/changes.py): the service's
        events and audit entries are written when this block ends, after the re-read, so the audit log's head row,
        locked by the append until the commit, is not held while the re-read (the access rule's statement) is
        planned and run. Held through it, the head row made concurrent writers queue for twice as long.
        """
        with transaction.atomic(), ChangeSet():
            result = service()
            instance, created = result if isinstance(result, tuple) else (result, created)
            visible = self.get_queryset().filter(pk=instance.pk).first()
            if visible is None:
                raise PermissionDenied("After this change you could no longer see the result, so nothing was done.")
        return self.respond(visible, created=created)

    def respond(self, instance, *, created: bool = False) -> Response:
        body = self.output_serializer_class(instance, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise MethodNotAllowed(request.method, detail=self.not_allowed_message.format(method=request.method))


class LengthRequired(DomainError):
    """A raw body sent without a length the server can trust (HTTP 411)."""

    status_code = 411
    code = "length_required"


#: How the schema shows a 411 (every endpoint that reads a raw body declares it).
LENGTH_REQUIRED_RESPONSE = OpenApiResponse(
    inline_serializer(
        "LengthRequired",
        {"detail": serializers.CharField(), "code": serializers.ChoiceField(choices=["length_required"])},
    ),
    "The body came without Content-Length (chunked): send it with one.",
)


def raw_body(request: Request) -> tuple[BinaryIO, int]:
    """The request body as a stream to read in bounded pieces, with its announced length.

    A body sent with `Transfer-Encoding` (chunked) is refused with 411 instead of read. Django's WSGI request
    reads at most CONTENT_LENGTH bytes of `wsgi.input`, so without one it sees an empty body (and DRF no body
    at all). Reading `wsgi.input` to its end instead is not portable: WSGI (PEP 3333) lets a server stop at
    CONTENT_LENGTH and does not promise EOF, and `runserver` limits the input to CONTENT_LENGTH, so it would
    hand over no byte of a chunked body. A client always knows the length of what it sends in one request
    (a file of unknown length goes as an upload session's chunks), so asking for Content-Length costs it
    little and keeps one rule under granian and runserver alike.
    DRF gives no stream for an empty body; that is a body of length 0 (a PUT that only finishes an upload).
    """
    encoding = request.META.get("HTTP_TRANSFER_ENCODING", "").strip().lower()
    raw = request.META.get("CONTENT_LENGTH") or ""
    if (encoding and encoding != "identity") or (raw and not raw.isdigit()):
        raise LengthRequired(
            "Send the body with a Content-Length header (its size in bytes) and without Transfer-Encoding: "
            "chunked bodies are not read here. For a file whose size you do not know yet, open an upload "
            "session and send it in chunks, each with its Content-Length."
        )
    if request.stream is None:
        return io.BytesIO(b""), 0
    return request.stream, int(raw) if raw else 0
