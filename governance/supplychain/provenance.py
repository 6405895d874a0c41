"""The provenance of an artifact version as an in-toto Statement v1 with a SLSA Provenance v1 predicate.

A pure function of plain facts (no Django, no database): the service gathers the facts, this module says what they
mean in SLSA's words, so the mapping can be read and tested on its own. Field by field (README, "Provenance
attestations"):

- subject: the version's name (`project/artifact@vN`) and the SHA-256 of its bytes;
- buildDefinition.buildType: `BUILD_TYPE`, ours: "a run recorded in Provenant";
- externalParameters: what the run's launcher chose (entry point, parameters);
- internalParameters: what Provenant knows of the run besides (project, run status, recorded environment);
- resolvedDependencies: the code (repository at a commit, as a `gitCommit` digest), then every input dataset
  version and upstream artifact version, each with its SHA-256 and its address in this installation's API;
- runDetails: the builder (this installation, and the libraries the run recorded), and the run's external id,
  start and end as invocationId, startedOn and finishedOn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
#: What kind of build the predicate describes: a run as Provenant records it. Versioned: a change of meaning of any
#: parameter gets a new buildType, so statements already signed keep the meaning they were made with.
BUILD_TYPE = "https://provenant.dev/slsa/build-types/recorded-run/v1"


@dataclass(frozen=True)
class Material:
    """An input of the run: a dataset version or an artifact version, pinned by the SHA-256 of its content."""

    kind: str  # "dataset_version" or "artifact_version"
    name: str  # project/dataset@vN
    sha256: str  # hex
    api_url: str
    portal_url: str
    download_location: str = ""  # where data kept outside Provenant lives


@dataclass(frozen=True)
class RunFacts:
    external_id: str
    status: str
    code_repository: str
    code_commit: str
    entry_point: str
    parameters: dict
    environment: dict
    started_at: datetime | None
    ended_at: datetime | None
    api_url: str
    portal_url: str
    materials: tuple[Material, ...] = ()


@dataclass(frozen=True)
class VersionFacts:
    project: str
    artifact: str
    number: int
    sha256: str
    media_type: str
    api_url: str
    portal_url: str
    run: RunFacts | None = None


@dataclass(frozen=True)
class Installation:
    """The builder: this Provenant, named by its public address."""

    url: str
    version: str
    extra: dict = field(default_factory=dict)


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the second: the form SLSA's examples and most verifiers expect."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _source(run: RunFacts) -> list[dict]:
    if not run.code_repository and not run.code_commit:
        return []
    source: dict = {"name": "source"}
    if run.code_repository:
        repository = run.code_repository
        source["uri"] = repository if repository.startswith("git+") else f"git+{repository}"
        if run.code_commit:
            source["uri"] += f"@{run.code_commit}"
    if run.code_commit:
        source["digest"] = {"gitCommit": run.code_commit}
    return [source]


def _material(material: Material) -> dict:
    described = {
        "name": material.name,
        "uri": material.api_url,
        "digest": {"sha256": material.sha256},
        "annotations": {"kind": material.kind, "portalUrl": material.portal_url},
    }
    if material.download_location:
        described["downloadLocation"] = material.download_location
    return described


def provenance_statement(version: VersionFacts, installation: Installation) -> dict:
    """The in-toto statement saying where `version`'s bytes came from (the module's docstring says field by
    field). A version published without a run gets a statement too: it says Provenant holds no build for it."""
    run = version.run
    internal: dict = {
        "project": version.project,
        "artifactVersion": {"uri": version.api_url, "portalUrl": version.portal_url, "mediaType": version.media_type},
    }
    external: dict = {}
    dependencies: list[dict] = []
    metadata: dict = {}
    builder: dict = {"id": installation.url, "version": {"provenant": installation.version, **installation.extra}}
    if run is None:
        internal["run"] = None
    else:
        external = {"entryPoint": run.entry_point, "parameters": run.parameters}
        internal["run"] = {"uri": run.api_url, "portalUrl": run.portal_url, "status": run.status}
        internal["environment"] = run.environment
        dependencies = _source(run) + [_material(material) for material in run.materials]
        requirements = run.environment.get("dependencies")
        if isinstance(requirements, list) and requirements:
            builder["builderDependencies"] = [{"name": str(requirement)} for requirement in requirements]
        metadata["invocationId"] = run.external_id
        if run.started_at is not None:
            metadata["startedOn"] = timestamp(run.started_at)
        if run.ended_at is not None:
            metadata["finishedOn"] = timestamp(run.ended_at)
    run_details: dict = {"builder": builder}
    if metadata:
        run_details["metadata"] = metadata
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": f"{version.project}/{version.artifact}@v{version.number}", "digest": {"sha256": version.sha256}}
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": internal,
                "resolvedDependencies": dependencies,
            },
            "runDetails": run_details,
        },
    }
