"""The portal's pages of a dataset (its versions, newest first) and of one dataset version (what pins its content,
its schema, the run that made it and the runs that read it).

Both read through `visible_to(user)`, the API's rule for datasets and their versions: what the user may not see
answers 404, so its existence does not leak.
"""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from artifacts import selectors
from governance.portal import selectors as portal_selectors
from governance.portal.views.catalog import json_pairs, web_url

PAGE_SIZE = 50
#: The runs that read a version, newest first, listed on its page.
CONSUMERS_SHOWN = 50


@login_required
@require_GET
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = portal_selectors.portal_dataset(request.user, pk)
    if dataset is None:
        raise Http404("No such dataset.")
    versions = portal_selectors.dataset_versions(request.user, dataset)
    page = Paginator(versions, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "portal/datasets/detail.html", {"dataset": dataset, "page": page})


@login_required
@require_GET
def dataset_version_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    version = portal_selectors.portal_dataset_version(user, pk)
    if version is None:
        raise Http404("No such dataset version.")
    run = selectors.portal_run(version.run_id, user)
    consumers = list(portal_selectors.dataset_version_consumers(user, version).order_by("-pk")[: CONSUMERS_SHOWN + 1])
    context = {
        "version": version,
        "dataset": version.dataset,
        "tombstone": getattr(version, "tombstone", None),
        "uri_link": web_url(version.uri),
        "schema": json_pairs(version.schema),
        "run": run,
        # The run exists but the user may not see it: say so rather than pretend the version has no origin.
        "run_hidden": version.run_id is not None and run is None,
        "consumers": consumers[:CONSUMERS_SHOWN],
        "consumers_more": len(consumers) > CONSUMERS_SHOWN,
    }
    return render(request, "portal/datasets/version.html", context)


urlpatterns = [
    path("datasets/<int:pk>/", dataset_detail, name="dataset"),
    path("datasets/versions/<int:pk>/", dataset_version_detail, name="dataset-version"),
]
