"""Portal pages for the model registry: models with their versions, stage history, card and metrics, and two
versions side by side. Promotion requests have their own module (views/promotions.py), which reads runs and
differences with the helpers here.

Reads go through the selectors and each model's `visible_to(user)`, so an object the user may not see answers 404.
"""

import json
import re
from dataclasses import dataclass
from numbers import Number
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from artifacts.models import DatasetVersion, Run
from governance.portal.context import search_text
from governance.portal.metric_charts import Point, metric_chart_svg, numeric
from governance.portal.tables import sort_and_page
from governance.registry import selectors
from governance.registry.bom import MEDIA_TYPE as BOM_MEDIA_TYPE
from governance.registry.bom import model_version_bom
from governance.registry.gates import metric_directions
from governance.registry.models import (
    ModelVersion,
    RegisteredModel,
    Stage,
    StageTransition,
)
from governance.supplychain.selectors.attestations import provenance_withheld

PAGE_SIZE = 50
#: Shown where a version, run or environment has no value for a key the other side has.
MISSING = "—"
#: The columns the models list may be sorted by (?sort=key or ?sort=-key), and the fields each orders by.
MODEL_SORTS = {"name": ("name", "project__slug"), "project": ("project__slug", "name")}


# Reading helpers ---------------------------------------------------------------------------------------------------


def _visible_model(user, pk: int) -> RegisteredModel:
    return get_object_or_404(selectors.registered_model_list(user).visible_to(user), pk=pk)


def _versions_of(model: RegisteredModel, user) -> QuerySet[ModelVersion]:
    # The run is joined too: its metrics, parameters and commit are shown for every version, not fetched per row.
    return (
        selectors.model_version_list()
        .visible_to(user)
        .filter(registered_model=model)
        .select_related("artifact_version__run")
        .order_by("-number")
    )


def shown(value: object) -> str:
    """A JSON value as one line of text: strings as they are, anything else as JSON."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def with_seen_runs(versions: list[ModelVersion], user) -> list[ModelVersion]:
    """Set `seen_run` on each version: its producing run if the user may read it (Run.visible_to, as the API and
    the artifact version page), else None. Someone who reads an artifact alone does not read its project's runs."""
    run_ids = {version.artifact_version.run_id for version in versions} - {None}
    seen = set(Run.objects.visible_to(user).filter(pk__in=run_ids).values_list("pk", flat=True)) if run_ids else set()
    for version in versions:
        version.seen_run = version.artifact_version.run if version.artifact_version.run_id in seen else None
    return versions


def run_field(version: ModelVersion, name: str) -> dict:
    run = version.seen_run
    value = getattr(run, name, None) if run is not None else None
    return value if isinstance(value, dict) else {}


def is_number(value: object) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)


@dataclass
class DiffRow:
    key: str
    a: str
    b: str
    differs: bool
    delta: str = ""
    #: For a metric whose better direction is known and two numbers: "better" or "worse" (B against A), else "".
    verdict: str = ""


def model_metric_directions(model: RegisteredModel) -> dict[str, str]:
    """Which way each metric is better ("higher" or "lower"): as the model declares it (`metric_directions`), else
    as the thresholds of the project's current production policy say (`gates.metric_directions`), then its staging
    policy's. A metric none of them names (or names only with `==`, or both ways) has no direction: a comparison
    says only that it differs."""
    directions: dict[str, str] = dict(model.metric_directions)
    for stage in (Stage.PRODUCTION, Stage.STAGING):
        thresholds = selectors.policy_current(model.project, stage).metric_thresholds or []
        for metric, direction in metric_directions(thresholds).items():
            directions.setdefault(metric, direction)
    return directions


def _verdict(left: object, right: object, direction: str | None) -> str:
    if direction is None or not (is_number(left) and is_number(right)) or left == right:
        return ""
    return "better" if (right > left) == (direction == "higher") else "worse"


def diff_rows(a: dict, b: dict, *, with_delta: bool = False, directions: dict[str, str] | None = None) -> list[DiffRow]:
    """One row per key of either side, in key order, saying whether the two values differ (and by how much, for two
    numbers when `with_delta`; and whether B is better or worse than A, for a key with a known direction)."""
    rows = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        delta = ""
        if with_delta and is_number(left) and is_number(right) and left != right:
            delta = f"{right - left:+.6g}"
        verdict = _verdict(left, right, (directions or {}).get(key))
        rows.append(DiffRow(key, shown(left), shown(right), differs=left != right, delta=delta, verdict=verdict))
    return rows


@dataclass
class MetricChart:
    """One metric over the versions that recorded it: the chart, and the rows of the table beside it."""

    key: str
    svg: str
    rows: list[tuple[int, str]]
    direction: str


def _metric_charts(oldest_first: list[ModelVersion], directions: dict[str, str]) -> list[MetricChart]:
    """A chart per metric any visible run recorded, over the versions in number order; the table beside each lists
    every version that recorded the metric, as recorded (a value that is not a number is in the table, not the line).
    """
    metrics = [(version, run_field(version, "metrics")) for version in oldest_first]
    keys = sorted({key for _, recorded in metrics for key in recorded})
    charts = []
    for index, key in enumerate(keys):
        recorded = [(version.number, values[key]) for version, values in metrics if key in values]
        points = [Point(number, value) for number, raw in recorded if (value := numeric(raw)) is not None]
        direction = directions.get(key, "")
        svg = metric_chart_svg(key, points, chart_id=f"metric-chart-{index}", direction=direction)
        rows = [(number, shown(raw)) for number, raw in recorded]
        charts.append(MetricChart(key, mark_safe(svg), rows, direction))  # noqa: S308 (every text in it is escaped)
    return charts


#: Where a requirement string's package name ends: "numpy==2.1.0", "torch>=2; python_version>'3.9'", "pkg[extra]".
REQUIREMENT_NAME_END = re.compile(r"[<>=!~;\[\s@(]")


def _requirements(dependencies: list) -> dict[str, str]:
    """Requirement strings keyed by their normalised package name, so two environments line up by package."""
    keyed = {}
    for requirement in dependencies:
        text = shown(requirement)
        name = REQUIREMENT_NAME_END.split(text, maxsplit=1)[0].strip().lower().replace("_", "-")
        keyed[name or text] = text
    return keyed


def _environment_rows(a: dict, b: dict) -> tuple[list[DiffRow], list[DiffRow]]:
    """The environment's fields, then its dependencies lined up by package (when both sides list them)."""
    deps_a, deps_b = a.get("dependencies"), b.get("dependencies")
    if isinstance(deps_a or [], list) and isinstance(deps_b or [], list):
        rest_a = {key: value for key, value in a.items() if key != "dependencies"}
        rest_b = {key: value for key, value in b.items() if key != "dependencies"}
        return diff_rows(rest_a, rest_b), diff_rows(_requirements(deps_a or []), _requirements(deps_b or []))
    return diff_rows(a, b), []


#: A repository named the way git clones over SSH: git@github.com:team/repo.git
SSH_REMOTE = re.compile(r"git@(?P<host>[\w.-]+):(?P<path>[\w./-]+)")


def code_compare_url(repository: str, base: str, head: str) -> str | None:
    """The code host's page comparing two commits, when the repository is on GitHub or GitLab (github.com,
    gitlab.com, or a self-hosted host named so) and the commits differ; None otherwise.

    Only an http(s) address of owner/name shape is linked, rebuilt from its host and path, so neither a
    `javascript:` URL nor credentials in the recorded address ever reach the page.
    """
    repository = (repository or "").strip()
    if not (repository and base and head) or base == head:
        return None
    ssh = SSH_REMOTE.fullmatch(repository)
    if ssh:
        repository = f"https://{ssh['host']}/{ssh['path']}"
    parts = urlsplit(repository)
    host = (parts.hostname or "").lower()
    labels = host.split(".")
    if parts.scheme not in ("http", "https") or not ({"github", "gitlab"} & set(labels)):
        return None
    repo_path = parts.path.rstrip("/").removesuffix(".git").rstrip("/")
    if repo_path.count("/") < 2:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{repo_path}/compare/{base}...{head}"


def version_number(raw: str | None) -> int | None:
    if raw is None or not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        return None
    return int(raw)


# Models ------------------------------------------------------------------------------------------------------------


@login_required
@require_GET
def model_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    query = search_text(request)
    models = (
        selectors.registered_model_list(user)
        .visible_to(user)
        # The staging badges: one query for the page, not one per model (production comes from the selector).
        .prefetch_related(
            Prefetch(
                "versions",
                queryset=ModelVersion.objects.visible_to(user)
                .filter(stage=Stage.STAGING)
                .only("id", "number", "registered_model_id", "artifact_version_id")
                .order_by("-number"),
                to_attr="staging_versions",
            )
        )
    )
    if query:
        models = models.filter(
            Q(name__icontains=query)
            | Q(description__icontains=query)
            | Q(project__slug__icontains=query)
            | Q(project__name__icontains=query)
        )
    table = sort_and_page(request, models, allowed_sorts=MODEL_SORTS, default="name", per_page=PAGE_SIZE)
    return render(request, "portal/models/list.html", {"page": table.page, "sorting": table.sorting, "query": query})


@login_required
@require_GET
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    model = _visible_model(user, pk)
    versions = with_seen_runs(list(_versions_of(model, user)), user)
    visible_ids = {version.pk for version in versions}
    # Each move names its version, its author and its request: joined, not a query per move.
    history = list(
        StageTransition.objects.visible_to(user)
        .filter(registered_model=model)
        .select_related("model_version", "changed_by", "promotion_request")
        .order_by("-changed_at", "-id")
    )
    for move in history:
        # A version replaced in production moves under the request of the version that replaced it: link that
        # request only when its version is one the user may see (it would answer 404 otherwise).
        move.request_visible = move.promotion_request is not None and (
            move.promotion_request.model_version_id in visible_ids
        )
    oldest_first = versions[::-1]
    directions = model_metric_directions(model)
    metric_keys = sorted({key for version in versions for key in run_field(version, "metrics")})
    metric_rows = [
        (key, [shown(run_field(version, "metrics").get(key)) for version in oldest_first]) for key in metric_keys
    ]
    production = next((version for version in versions if version.stage == Stage.PRODUCTION), None)
    newest = versions[0] if versions else None
    compare_a = production if production is not None and production != newest else (versions[1:2] or [None])[0]
    return render(
        request,
        "portal/models/detail.html",
        {
            "model": model,
            "versions": versions,
            "history": history,
            "metric_versions": oldest_first,
            "metric_rows": metric_rows,
            "metric_charts": _metric_charts(oldest_first, directions),
            "compare_a": compare_a.number if compare_a else None,
            "compare_b": newest.number if newest else None,
        },
    )


@login_required
@require_GET
def model_compare(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    model = _visible_model(user, pk)
    numbers = [version_number(request.GET.get(side)) for side in ("a", "b")]
    if None in numbers:
        messages.error(request, "Pick two versions to compare.")
        return redirect("portal:model", pk=model.pk)
    found = {
        version.number: version
        for version in _versions_of(model, user)
        .filter(number__in=numbers)
        .prefetch_related(
            # Input datasets: those the user may read, named; the rest only counted (the edge rows).
            Prefetch(
                "artifact_version__run__input_dataset_versions",
                queryset=DatasetVersion.objects.visible_to(user).select_related("dataset"),
                to_attr="visible_inputs",
            ),
            "artifact_version__run__dataset_inputs",
        )
    }
    if any(number not in found for number in numbers):
        raise Http404("No such version of this model that you may see.")
    a, b = with_seen_runs([found[numbers[0]], found[numbers[1]]], user)
    sides = []
    for version in (a, b):
        run = version.seen_run
        inputs = list(getattr(run, "visible_inputs", [])) if run is not None else []
        hidden = len(run.dataset_inputs.all()) - len(inputs) if run is not None else 0
        sides.append({"version": version, "run": run, "inputs": inputs, "hidden_inputs": hidden})
    environment, dependencies = _environment_rows(run_field(a, "environment"), run_field(b, "environment"))
    directions = model_metric_directions(model)
    run_a, run_b = a.seen_run, b.seen_run
    diff_url = None
    if run_a is not None and run_b is not None and run_a.code_repository.strip() == run_b.code_repository.strip():
        diff_url = code_compare_url(run_a.code_repository, run_a.code_commit, run_b.code_commit)
    return render(
        request,
        "portal/models/compare.html",
        {
            "model": model,
            "a": a,
            "b": b,
            "sides": sides,
            "parameters": diff_rows(run_field(a, "parameters"), run_field(b, "parameters")),
            "metrics": diff_rows(
                run_field(a, "metrics"), run_field(b, "metrics"), with_delta=True, directions=directions
            ),
            "directions": sorted(directions.items()),
            "environment": environment,
            "dependencies": dependencies,
            "diff_url": diff_url,
            "versions": ModelVersion.objects.visible_to(user)
            .filter(registered_model=model)
            .only("id", "number", "registered_model_id", "artifact_version_id")
            .order_by("-number"),
        },
    )


@login_required
@require_GET
def model_version_bom_download(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    """The version's ML-BOM (CycloneDX 1.6 JSON), as the API's /model-versions/{id}/bom/ answers it, to download."""
    model = _visible_model(request.user, pk)
    version = get_object_or_404(
        _versions_of(model, request.user).select_related("registered_model__project"), number=number
    )
    if withheld := provenance_withheld(version.artifact_version, request.user):
        raise PermissionDenied(withheld)
    response = HttpResponse(json.dumps(model_version_bom(version), indent=2), content_type=BOM_MEDIA_TYPE)
    filename = f"{model.project.slug}-{model.name}-v{version.number}.cdx.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


urlpatterns = [
    path("models/", model_list, name="models"),
    path("models/<int:pk>/", model_detail, name="model"),
    path("models/<int:pk>/compare/", model_compare, name="model-compare"),
    path("models/<int:pk>/versions/<int:number>/bom/", model_version_bom_download, name="model-version-bom"),
]
