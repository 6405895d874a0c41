"""Serializer fields for Provenant's identifiers: digests, references by slug or id."""

from rest_framework import serializers

from core.api.fields import VisibleOnlyMixin


class ProjectField(VisibleOnlyMixin, serializers.SlugRelatedField):
    def __init__(self, **kwargs) -> None:
        from artifacts.models import Project

        kwargs.setdefault("queryset", Project.objects.all())
        super().__init__(slug_field="slug", **kwargs)
        self.error_messages["does_not_exist"] = "No project '{value}'. List projects at /api/v1/projects/."
