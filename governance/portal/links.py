"""Where the portal shows a record named by its type and id (an audit entry's object), the portal page of that
record, so no reference the portal prints is a dead end or a way into the JSON API."""

from collections.abc import Iterable
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


#: A reference as the audit log records one: the object's type, its id, and its project's id.
Reference = tuple[str, str, int | None]


def _page_and_id(object_type: str, object_id: str, project_id: int | None) -> tuple[PageOf, int] | None:
    """Which page a reference would open and the id that picks its record there, or None if it has no page."""
    if object_type in LIFECYCLE_TYPES:
        page, object_id = LIFECYCLE_PAGE, "" if project_id is None else str(project_id)
    else:
        page = PAGES.get(object_type)
    if page is None or not (object_id.isascii() and object_id.isdigit() and len(object_id) <= MAX_ID_DIGITS):
        return None
    return page, int(object_id)


def _visible_arguments(page: PageOf, ids: set[int], user: User) -> dict[int, tuple]:
    """For each of `ids` whose record `user` may see on `page`, the page's URL arguments: one query."""
    records: QuerySet = page.records.objects.visible_to(user).filter(**{f"{page.by}__in": ids})
    if page.order_by:
        # An artifact stands for its newest version: the versions come newest last, so the newest is kept.
        records = records.order_by(page.by, page.order_by.removeprefix("-"))
    return {row[0]: row[1:] for row in records.values_list(page.by, *page.arguments)}


def portal_urls_for(references: Iterable[Reference], user: User) -> dict[Reference, str]:
    """The portal page of each reference that has one `user` may open (see `portal_url_for`), for a whole list of
    audit entries: one query per kind of page among them, however many entries."""
    wanted: dict[PageOf, dict[int, list[Reference]]] = {}
    for reference in references:
        if found := _page_and_id(*reference):
            page, record_id = found
            wanted.setdefault(page, {}).setdefault(record_id, []).append(reference)
    urls: dict[Reference, str] = {}
    for page, by_id in wanted.items():
        for record_id, arguments in _visible_arguments(page, set(by_id), user).items():
            for reference in by_id[record_id]:
                urls[reference] = reverse(page.url_name, args=arguments)
    return urls


def portal_url_for(object_type: str, object_id: str, user: User, *, project_id: int | None = None) -> str | None:
    """The portal page of the object `object_type` `object_id` if it has one and `user` may open it, else None (a
    blob, a grant, a token have no page; a record the user may not see gets no link, so a link never leads to a 404
    nor names a record). `project_id` is the object's project, as the log records it. At most one query."""
    reference = (object_type, object_id, project_id)
    return portal_urls_for([reference], user).get(reference)


def with_object_urls(entries: Iterable, user: User) -> list[tuple]:
    """Each audit entry with the portal page of its object, or None (`portal_urls_for`: one query per kind)."""
    entries = list(entries)
    urls = portal_urls_for(((e.object_type, e.object_id, e.project_id) for e in entries), user)
    return [(entry, urls.get((entry.object_type, entry.object_id, entry.project_id))) for entry in entries]
