"""Portal pages over the catalog: an artifact version with its provenance, lineage picture and the model versions
registered on it, and search across projects, models, artifacts, runs and datasets. They live in governance, which
builds on artifacts: artifacts' selectors give what is the artifacts' own, governance's add the registry and the log.

Every page needs a signed-in user and reads through the selectors' `visible_to(user)` querysets: a version the user
may not see answers 404, as the API does, so its existence does not leak.
"""

import json
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from artifacts import selectors
from artifacts.api.downloads import safe_filename
from artifacts.api.views import ArtifactVersionViewSet
from artifacts.lineage_graph import GraphNode, render_svg
from artifacts.models import ArtifactVersion, Run
from artifacts.selectors import BoundedLineage, LineageNode
from artifacts.services.previews import artifact_version_preview
from core.errors import DomainError
from governance.audit import selectors as audit_selectors
from governance.portal import selectors as portal_selectors
from governance.portal.context import search_text
from governance.registry import selectors as registry_selectors
from governance.supplychain.api.attestations import attestation_filename, envelope_response
from governance.supplychain.selectors import signatures as signature_selectors
from governance.supplychain.selectors.attestations import provenance_withheld
from governance.supplychain.selectors.scans import blob_scan_current
from governance.supplychain.services.attestations import provenance_attestation_get


def _version_or_404(request: HttpRequest, pk: int) -> ArtifactVersion:
    version = selectors.portal_artifact_version(request.user, pk)
    if version is None:
        raise Http404("No such artifact version.")
    return version


def web_url(text: str) -> str | None:
    """`text` if it is an http(s) URL: a repository field is free text, and a `javascript:` link must not be one."""
    return text if text.lower().startswith(("https://", "http://")) else None


def json_pairs(mapping: dict) -> list[tuple[str, str]]:
    """A JSON object as rows of name and value, nested values written as compact JSON."""
    return [
        (str(key), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True))
        for key, value in sorted(mapping.items())
    ]


def _graph_node(node: LineageNode) -> GraphNode:
    """How one lineage node is drawn: each kind links to its own portal page (artifact versions, runs, dataset
    versions), so the picture leads upstream and downstream from page to page."""
    obj = node.obj
    if isinstance(obj, ArtifactVersion):
        return GraphNode(
            key=node.key,
            kind="artifact_version",
            label=obj.artifact.name,
            detail=f"{obj.artifact.get_kind_display()} v{obj.number}",
            href=reverse("portal:artifact-version", args=[obj.pk]),
            current=node.direction == "root",
            deleted=getattr(obj, "tombstone", None) is not None,
        )
    if isinstance(obj, Run):
        return GraphNode(
            key=node.key,
            kind="run",
            label=obj.name or obj.external_id,
            detail=f"run · {obj.code_commit[:10]}" if obj.code_commit else "run",
            href=reverse("portal:run", args=[obj.pk]),
        )
    return GraphNode(
        key=node.key,
        kind="dataset_version",
        label=obj.dataset.name,
        detail=f"dataset v{obj.number}",
        href=reverse("portal:dataset-version", args=[obj.pk]),
        deleted=getattr(obj, "tombstone", None) is not None,
    )


def _lineage_svg(version: ArtifactVersion, lineage: BoundedLineage) -> str:
    graph = lineage.graph
    nodes = [_graph_node(node) for node in [graph.root, *graph.nodes]]
    upstream = sum(node.direction == "upstream" for node in graph.nodes)
    downstream = len(graph.nodes) - upstream
    description = (
        f"Data flows left to right: {upstream} upstream and {downstream} downstream records within "
        f"{selectors.PORTAL_LINEAGE_DEPTH} steps of {version}."
    )
    if graph.hidden:
        description += f" {graph.hidden} you may not see are left out."
    if lineage.truncated:
        description += f" Cut to the {selectors.PORTAL_LINEAGE_NODES} nearest records."
    return render_svg(nodes, graph.edges, title=f"Lineage of {version}", description=description)


@dataclass(frozen=True)
class Usage:
    """How to fetch a version's bytes outside the browser: the `provenant` command, the Python client, and curl."""

    cli: str
    python: str
    curl: str


def _usage(request: HttpRequest, version: ArtifactVersion, download_path: str) -> Usage:
    """Commands that fetch `version` by its id against this server's API. The CLI and the client name the file
    themselves (`<artifact>-v<number>` with the pushed file's suffix, into the current folder); curl is told the same
    name, made safe for a shell and a file system."""
    api = request.build_absolute_uri(reverse("api:schema")).removesuffix("schema/").rstrip("/")
    filename = PurePosixPath(str(version.metadata.get("filename") or ""))
    suffix = (".tar" if filename.stem.endswith(".tar") else "") + filename.suffix
    local_name = safe_filename(f"{version.artifact.name}-v{version.number}{suffix}")
    return Usage(
        cli=f"provenant pull {version.pk} ./ --url {shlex.quote(api)}",
        python=f"from provenant_client import Client\n\nClient({api!r}).pull({version.pk}, {'./'!r})",
        curl=(
            f'curl --fail-with-body -H "Authorization: Bearer $PROVENANT_TOKEN" -o {shlex.quote(local_name)} '
            f"{shlex.quote(request.build_absolute_uri(download_path))}"
        ),
    )


@login_required
@require_GET
def artifact_version(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version_or_404(request, pk)
    run = selectors.portal_run(version.run_id, request.user)
    input_datasets, input_versions = selectors.run_inputs(run, request.user) if run else ([], [])
    lineage = selectors.bounded_lineage(version, request.user)
    model_versions = registry_selectors.model_versions_on(version, request.user)
    for model_version in model_versions:
        model_version.portal_url = reverse("portal:model", args=[model_version.registered_model_id])
    # A deleted version keeps its record (and this page) but not its bytes: the page says who deleted it and why.
    tombstone = portal_selectors.version_tombstone(version)
    # The API's address is what the usage snippet's curl fetches; the page's own button goes through the portal.
    api_download_url = (
        reverse("api:artifactversion-download", args=[version.pk])
        if tombstone is None and not version.blob.is_collected and selectors.artifact_version_downloadable(version)
        else None
    )
    # Reading the bytes is logged as a download of them, so the page reads them only when the reader asks.
    preview = (
        artifact_version_preview(version=version)
        if api_download_url is not None and request.GET.get("preview") == "1"
        else None
    )
    withheld = provenance_withheld(version, request.user)
    context = {
        "version": version,
        "artifact": version.artifact,
        "blob": version.blob,
        "verifications": audit_selectors.blob_verifications(version.blob, request.user),
        # Signatures are seen with the version (same access rule); the bundle itself is the API's to hand out.
        "signatures": signature_selectors.version_signatures(version),
        # What the format scan found in the bytes (governance/supplychain): the gates go by the same scan.
        "scan": blob_scan_current(version.blob),
        "run": run,
        "run_repository_url": web_url(run.code_repository) if run else None,
        "run_facts": {name: json_pairs(getattr(run, name)) for name in ("parameters", "metrics", "environment")}
        if run
        else {},
        "metadata": json_pairs(version.metadata),
        # The run exists but the user may not see it: say so rather than pretend the version has no origin.
        "run_hidden": version.run_id is not None and run is None,
        "input_datasets": input_datasets,
        "input_versions": input_versions,
        "consumers": selectors.version_consumers(version, request.user),
        "consumers_limit": selectors.PORTAL_CONSUMERS,
        "model_versions": model_versions,
        "tombstone": tombstone,
        "download_url": (
            reverse("portal:artifact-version-download", args=[version.pk]) if api_download_url is not None else None
        ),
        "preview": preview,
        # A statement is signed once its run has ended (governance/supplychain/services/attestations.py says why).
        "attestation_withheld": withheld,
        "attestation_url": None
        if withheld or (run is not None and not run.is_finished)
        else reverse("portal:artifact-version-attestation", args=[version.pk]),
        "usage": _usage(request, version, api_download_url) if api_download_url is not None else None,
        "lineage": lineage,
        "lineage_svg": mark_safe(_lineage_svg(version, lineage)),  # noqa: S308 (every text in it is escaped)
    }
    return render(request, "portal/artifacts/version.html", context)


@login_required
@require_GET
def artifact_version_lineage_svg(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version_or_404(request, pk)
    svg = _lineage_svg(version, selectors.bounded_lineage(version, request.user))
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    # The picture is drawn per user (what they may see), so no shared cache may keep it.
    response["Cache-Control"] = "private, no-cache"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# The API's download, served under the portal's address: the same permission check, audit entry, ranges and
# refusals (a deleted version's 410, quarantined bytes), so the page's link stays inside the portal. Wrapped in a
# plain function below, so the OpenAPI schema, which lists every DRF view it finds, does not list this address.
_api_download = ArtifactVersionViewSet.as_view({"get": "download"}, detail=True, basename="artifactversion")


@login_required
@require_GET
def artifact_version_download(request: HttpRequest, pk: int) -> HttpResponse:
    # A version the user may not see answers the portal's 404, as its page does, before the API is asked; the API
    # then judges again, by the same rule.
    _version_or_404(request, pk)
    return _api_download(request, pk=str(pk))


@login_required
@require_GET
def artifact_version_attestation(request: HttpRequest, pk: int) -> HttpResponse:
    """The version's signed provenance as a `.intoto.jsonl` file: the API's envelope, made and logged by the same
    service, for whoever may see the version's page."""
    version = _version_or_404(request, pk)
    if withheld := provenance_withheld(version, request.user):
        raise PermissionDenied(withheld)
    try:
        attestation = provenance_attestation_get(version=version)
    except DomainError as error:
        return HttpResponse(error.message, status=error.status_code, content_type="text/plain; charset=utf-8")
    return envelope_response(attestation, filename=attestation_filename(version))


#: Where a search result of each kind leads: its portal page, found by the result's primary key.
RESULT_PAGES = {
    "artifact_versions": "portal:artifact-version",
    "models": "portal:model",
    "runs": "portal:run",
    "datasets": "portal:dataset",
    "dataset_versions": "portal:dataset-version",
}


def _result_url(kind: str, item) -> str | None:
    """Where a search result leads: its portal page; an artifact to its newest version (None before it has one), a
    project to the project's page."""
    if kind == "artifacts":
        return reverse("portal:artifact-version", args=[item.newest_version_id]) if item.newest_version_id else None
    if kind == "projects":
        return reverse("portal:project", args=[item.slug])
    return reverse(RESULT_PAGES[kind], args=[item.pk])


@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    results = selectors.search(search_text(request), request.user)
    if results.query and not results.too_short:
        models = list(
            registry_selectors.registered_models_named(results.query, request.user)[: selectors.SEARCH_PER_KIND + 1]
        )
        group = selectors.SearchGroup(
            kind="models",
            title="Registered models",
            items=models[: selectors.SEARCH_PER_KIND],
            more=len(models) > selectors.SEARCH_PER_KIND,
        )
        results.groups.insert(1, group)  # after projects, as people look for a model by its name first
    for group in results.groups:
        for item in group.items:
            item.portal_url = _result_url(group.kind, item)
    context = {"results": results, "min_length": selectors.SEARCH_MIN_LENGTH, "per_kind": selectors.SEARCH_PER_KIND}
    return render(request, "portal/search.html", context)


urlpatterns = [
    path("versions/<int:pk>/", artifact_version, name="artifact-version"),
    path("versions/<int:pk>/download/", artifact_version_download, name="artifact-version-download"),
    path(
        "versions/<int:pk>/attestation.intoto.jsonl",
        artifact_version_attestation,
        name="artifact-version-attestation",
    ),
    path("versions/<int:pk>/lineage.svg", artifact_version_lineage_svg, name="artifact-version-lineage-svg"),
    path("search/", search, name="search"),
]
