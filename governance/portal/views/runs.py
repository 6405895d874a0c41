"""The portal's page of one run: the code, parameters, metrics and environment that ran, what it read and what it
made, each a link to its own page. Lineage pictures and search results lead here.

The run is read through `Run.visible_to(user)`, the API's rule: a run the user may not see answers 404. What it
read and made is listed as far as the user may see it (a restricted artifact's versions are left out).
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from artifacts import selectors
from governance.portal import selectors as portal_selectors
from governance.portal.views.catalog import json_pairs, web_url


@login_required
@require_GET
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    run = selectors.portal_run(pk, user)
    if run is None:
        raise Http404("No such run.")
    input_datasets, input_versions = selectors.run_inputs(run, user)
    output_versions, output_datasets = portal_selectors.run_outputs(user, run)
    context = {
        "run": run,
        "repository_url": web_url(run.code_repository),
        "facts": {name: json_pairs(getattr(run, name)) for name in ("parameters", "metrics", "environment")},
        "input_datasets": input_datasets,
        "input_versions": input_versions,
        "output_versions": output_versions,
        "output_datasets": output_datasets,
    }
    return render(request, "portal/runs/detail.html", context)


urlpatterns = [path("runs/<int:pk>/", run_detail, name="run")]
