"""Serializer fields for Provenant's identifiers: digests, references by slug or id."""

from rest_framework import serializers

from artifacts.models import Project
from core.api.fields import VisibleOnlyMixin


class ProjectField(VisibleOnlyMixin, serializers.SlugRelatedField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("queryset", Project.objects.all())
        super().__init__(slug_field="slug", **kwargs)
        self.error_messages["does_not_exist"] = "No project '{value}'. List projects at /api/v1/projects/."
