"""The API's description of itself: the OpenAPI schema (YAML or JSON) and the interactive docs page (HTML)."""

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response


class JsonErrorsMixin:
    """Answers errors in JSON, like every other endpoint under /api/, from a view whose successes are not JSON:
    DRF would render a 405 or 404 with the view's own renderer, as YAML or HTML a client cannot read as an error."""

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class SchemaView(JsonErrorsMixin, SpectacularAPIView):
    """The OpenAPI schema, YAML or JSON as the client asks (`?format=json`)."""


class DocsView(JsonErrorsMixin, SpectacularSwaggerSplitView):
    """Swagger UI; the split view serves its start-up script as a file (?script), so the page needs no inline
    script."""
