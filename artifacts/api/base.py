"""What every API resource shares: input/output serializer switch, service-backed writes, and refusals
that explain themselves."""

import io
from typing import BinaryIO

from rest_framework import status, viewsets
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.request import Request
from rest_framework.response import Response


class ResourceViewSet(viewsets.GenericViewSet):
    """A resource read through `output_serializer_class` and written through the input serializer its
    action names in `input_serializer_classes`; the write itself is a service call in the subclass."""

    output_serializer_class = None
    input_serializer_classes: dict = {}
    #: Said when a client tries a method the resource does not offer (immutability, no deletes).
    not_allowed_message = "{method} is not offered here."

    def get_serializer_class(self):
        return self.input_serializer_classes.get(self.action, self.output_serializer_class)

    def validated_input(self) -> dict:
        serializer = self.get_serializer(data=self.request.data, partial=self.action == "partial_update")
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def respond(self, instance, *, created: bool = False) -> Response:
        body = self.output_serializer_class(instance, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise MethodNotAllowed(request.method, detail=self.not_allowed_message.format(method=request.method))


def raw_body(request: Request) -> tuple[BinaryIO, int | None]:
    """The request body as a stream to read in bounded pieces, with its announced length.

    DRF gives no stream for an empty body; that is a body of length 0. A body without Content-Length
    (chunked transfer) has length None: Django's WSGI handler cannot read it safely.
    """
    if request.stream is None:
        return io.BytesIO(b""), 0
    raw = request.META.get("CONTENT_LENGTH") or ""
    return request.stream, int(raw) if raw.isdigit() else None
