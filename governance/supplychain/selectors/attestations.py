"""Reads for provenance attestations: the facts a statement is made of, the stored envelopes, the published keys."""

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse

from artifacts.models import ArtifactVersion, DatasetVersion, Run, RunArtifactInput, RunDatasetInput
from core.outbox import api_url
from governance.supplychain.models import AttestationKey, ProvenanceAttestation
from governance.supplychain.provenance import Material, RunFacts, VersionFacts


def portal_url(name: str, *args: object) -> str:
    """An absolute link to a portal page, under PROVENANT_PUBLIC_URL (a statement outlives any request)."""
    return settings.PROVENANT_PUBLIC_URL + reverse(f"portal:{name}", args=args)


def provenance_withheld(version: ArtifactVersion, user) -> str | None:
    """Why `user` may not have the version's signed provenance (an attestation or an ML-BOM), or None if they may.

    Both name the producing run (its code, parameters, environment) and every input with its digest, and a signed
    statement is the same bytes for every reader, so it cannot leave out what one reader may not see: it is handed
    only to someone who may read the run and all its inputs (not, say, to a grantee of the artifact alone, whom the
    run's page answers 404). Five queries at most, each over the run's few inputs: the inputs are read first, then
    counted among those the user may see (asking the other way, "is any input outside every version the user sees",
    read all of those versions: 50 ms at 100,000)."""
    if version.run_id is None:
        return None
    if not Run.objects.visible_to(user).filter(pk=version.run_id).exists():
        return "It names the run that produced this version, which you may not read."
    datasets = set(RunDatasetInput.objects.filter(run_id=version.run_id).values_list("dataset_version_id", flat=True))
    if datasets and DatasetVersion.objects.visible_to(user).filter(pk__in=datasets).count() < len(datasets):
        return "It names input dataset versions of the run that you may not read."
    upstream = set(RunArtifactInput.objects.filter(run_id=version.run_id).values_list("artifact_version_id", flat=True))
    if upstream and ArtifactVersion.objects.visible_to(user).filter(pk__in=upstream).count() < len(upstream):
        return "It names upstream artifact versions of the run that you may not read."
    return None


def attestation_keys() -> QuerySet[AttestationKey]:
    """Every key that ever signed, newest first: a verifier needs the retired ones for envelopes signed before."""
    return AttestationKey.objects.order_by("-created_at", "-id")


def version_attestation(version: ArtifactVersion) -> ProvenanceAttestation | None:
    return ProvenanceAttestation.objects.select_related("key").filter(artifact_version=version).first()


def _dataset_material(dataset_version: DatasetVersion) -> Material:
    return Material(
        kind="dataset_version",
        name=f"{dataset_version.dataset.project.slug}/{dataset_version.dataset.name}@v{dataset_version.number}",
        sha256=dataset_version.content_digest.removeprefix("sha256:"),
        api_url=api_url("datasetversion-detail", dataset_version.pk),
        portal_url=portal_url("dataset-version", dataset_version.pk),
        download_location=dataset_version.uri,
    )


def _artifact_material(version: ArtifactVersion) -> Material:
    return Material(
        kind="artifact_version",
        name=f"{version.artifact.project.slug}/{version.artifact.name}@v{version.number}",
        sha256=version.blob.digest,
        api_url=api_url("artifactversion-detail", version.pk),
        portal_url=portal_url("artifact-version", version.pk),
    )


def run_facts(run: Run) -> RunFacts:
    """What the run was and every input it recorded, whoever asks: a signed statement is the same for every reader,
    so it names all of the run's inputs (names and digests, never their bytes)."""
    datasets = (
        RunDatasetInput.objects.filter(run=run)
        .select_related("dataset_version__dataset__project", "dataset_version__blob")
        .order_by("dataset_version_id")
    )
    artifacts = (
        RunArtifactInput.objects.filter(run=run)
        .select_related("artifact_version__artifact__project", "artifact_version__blob")
        .order_by("artifact_version_id")
    )
    materials = tuple(_dataset_material(edge.dataset_version) for edge in datasets) + tuple(
        _artifact_material(edge.artifact_version) for edge in artifacts
    )
    return RunFacts(
        external_id=run.external_id,
        status=run.status,
        code_repository=run.code_repository,
        code_commit=run.code_commit,
        entry_point=run.entry_point,
        parameters=run.parameters,
        environment=run.environment,
        started_at=run.started_at,
        ended_at=run.ended_at,
        api_url=api_url("run-detail", run.pk),
        portal_url=portal_url("run", run.pk),
        materials=materials,
    )


def version_facts(version: ArtifactVersion) -> VersionFacts:
    """The facts `provenance.provenance_statement` turns into a statement about `version`."""
    version = ArtifactVersion.objects.select_related("artifact__project", "blob", "run").get(pk=version.pk)
    return VersionFacts(
        project=version.artifact.project.slug,
        artifact=version.artifact.name,
        number=version.number,
        sha256=version.blob.digest,
        media_type=version.media_type,
        api_url=api_url("artifactversion-detail", version.pk),
        portal_url=portal_url("artifact-version", version.pk),
        run=run_facts(version.run) if version.run is not None else None,
    )
