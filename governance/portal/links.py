"""Where the portal shows a record named by its type and id (an audit entry's object), the portal page of that
record, so no reference the portal prints is a dead end or a way into the JSON API."""

from dataclasses import dataclass

from django.db.models import QuerySet
from django.urls import reverse

from artifacts.access.rule import User
from artifacts.models import ArtifactVersion, Dataset, DatasetVersion, Project, Run
from governance.access.models import AccessReviewCampaign
from governance.lifecycle.models import RetentionPlan
from governance.registry.models import ModelVersion, PromotionRequest, RegisteredModel


@dataclass(frozen=True)
class PageOf:
    """How a record's page is found: the page's URL name, the records it shows, and which of the record's values
    (read through `visible_to`, so never one the user may not see) give the URL's arguments."""

    url_name: str
    records: type
    arguments: tuple[str, ...] = ("pk",)
    #: How the reference's id picks the record among `records` (a model version's page is its artifact version's).
    by: str = "pk"
    order_by: str | None = None


#: Object types as the audit log names them (the model's verbose name, `core.audit.recorder.audit_object`).
PAGES = {
    "artifact_version": PageOf("portal:artifact-version", ArtifactVersion),
    "run": PageOf("portal:run", Run),
    "dataset": PageOf("portal:dataset", Dataset),
    "dataset_version": PageOf("portal:dataset-version", DatasetVersion),
    "registered_model": PageOf("portal:model", RegisteredModel),
    "promotion_request": PageOf("portal:promotion", PromotionRequest),
    "access_review": PageOf("portal:access-review-report", AccessReviewCampaign),
    "project": PageOf("portal:project", Project, ("slug",)),
    "retention_plan": PageOf("portal:retention-plan", RetentionPlan, ("project__slug", "pk")),
    "model_version": PageOf("portal:artifact-version", ModelVersion, ("artifact_version_id",)),
    # An artifact has no page of its own: its newest version's stands for it, as in search.
    "artifact": PageOf("portal:artifact-version", ArtifactVersion, by="artifact_id", order_by="-number"),
}
#: Object types shown on their project's storage and lifecycle page, found through the project's id.
LIFECYCLE_TYPES = {"retention_policy", "legal_hold"}
LIFECYCLE_PAGE = PageOf("portal:project-lifecycle", Project, ("slug",))
#: Ids are primary keys: digits, and fewer than a 64-bit integer holds (anything else names no record).
MAX_ID_DIGITS = 18


def portal_url_for(object_type: str, object_id: str, user: User, *, project_id: int | None = None) -> str | None:
    """The portal page of the object `object_type` `object_id` if it has one and `user` may open it, else None (a
    blob, a grant, a token have no page; a record the user may not see gets no link, so a link never leads to a 404
    nor names a record). `project_id` is the object's project, as the log records it. At most one query."""
    if object_type in LIFECYCLE_TYPES:
        page, object_id = LIFECYCLE_PAGE, "" if project_id is None else str(project_id)
    else:
        page = PAGES.get(object_type)
    if page is None or not (object_id.isascii() and object_id.isdigit() and len(object_id) <= MAX_ID_DIGITS):
        return None
    records: QuerySet = page.records.objects.visible_to(user).filter(**{page.by: int(object_id)})
    if page.order_by:
        records = records.order_by(page.order_by)
    arguments = records.values_list(*page.arguments).first()
    return reverse(page.url_name, args=arguments) if arguments else None
