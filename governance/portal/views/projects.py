"""The portal's page of a project: what it holds (artifacts, datasets, runs, registered models) as far as the user
may see it, each a link to its page, and a link to the project's storage and lifecycle page.

The project is read through `Project.visible_to(user)`, the API's rule: someone granted a role on one artifact
sees the project's name and that artifact, not the rest; someone with no role in it gets 404.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from governance.portal import selectors


@login_required
@require_GET
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project = selectors.lifecycle_project(request.user, slug)
    if project is None:
        raise Http404(f"No project '{slug[:100]}'.")
    context = {
        "project": project,
        "records": selectors.project_records(request.user, project),
        "rows_shown": selectors.PROJECT_PAGE_ROWS,
    }
    return render(request, "portal/projects/detail.html", context)


urlpatterns = [path("projects/<slug:slug>/", project_detail, name="project")]
