"""The AI bill of materials of a model version: CycloneDX 1.6 JSON (an "ML-BOM", https://cyclonedx.org/capabilities/mlbom/).

What it says: the model (a `machine-learning-model` component with its SHA-256, its declared license and its model
card), the dataset versions its producing run read (`data` components, with the digest that pins each), and the
packages of that run's environment (`library` components with PyPI package URLs), which the model depends on.

The document is built with cyclonedx-python-lib, which writes and orders everything it models. Two parts of the 1.6
schema it does not model yet are added to its output here, in the schema's own shape: the model component's
`modelCard` and the data components' `data`. Tests validate the result against the CycloneDX 1.6 JSON schema.
Nothing here writes; a BOM is computed on each request from records that never change (the version, its run, its
inputs), except the model's card and stage, which it reports as they are now.
"""

import json
import re
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from artifacts.models import DatasetVersion
from governance.registry.models import ModelVersion
from governance.supplychain.selectors.vulnerabilities import pins_parse

MEDIA_TYPE = "application/vnd.cyclonedx+json; version=1.6"
#: Model card headings (## …) read into the CycloneDX model card's considerations, by the words they start with.
CONSIDERATIONS = {
    "intended use": "useCases",
    "use case": "useCases",
    "uses": "useCases",
    "limitation": "technicalLimitations",
    "known limitation": "technicalLimitations",
    "trade-off": "performanceTradeoffs",
    "tradeoff": "performanceTradeoffs",
    "users": "users",
    "intended users": "users",
}


def _sha256(digest_hex: str) -> list[HashType]:
    return [HashType(alg=HashAlgorithm.SHA_256, content=digest_hex)]


def _card_sections(markdown: str) -> dict[str, list[str]]:
    """The model card's sections that map onto CycloneDX's considerations ("## Intended use" → useCases)."""
    found: dict[str, list[str]] = {}
    for section in re.split(r"(?m)^#{2,3}\s+", markdown)[1:]:
        heading, _, body = section.partition("\n")
        key = next((v for k, v in CONSIDERATIONS.items() if heading.strip().lower().startswith(k)), None)
        text = " ".join(body.split())
        if key and text:
            found.setdefault(key, []).append(text)
    return found


def _model_card(version: ModelVersion, dataset_refs: list[str]) -> dict[str, Any]:
    """The CycloneDX `modelCard` of the version: its datasets, its run's metrics, and its card's considerations."""
    card: dict[str, Any] = {"bom-ref": f"model-card-{version.pk}"}
    if dataset_refs:
        card["modelParameters"] = {"datasets": [{"ref": ref} for ref in dataset_refs]}
    run = version.artifact_version.run
    metrics = run.metrics if run is not None and isinstance(run.metrics, dict) else {}
    if metrics:
        card["quantitativeAnalysis"] = {
            "performanceMetrics": [
                {"type": name, "value": str(value), "slice": f"run {run.external_id}"}
                for name, value in sorted(metrics.items())
            ]
        }
    markdown = version.registered_model.model_card.strip()
    if sections := _card_sections(markdown):
        card["considerations"] = sections
    if markdown:
        card["properties"] = [{"name": "provenant:model_card", "value": markdown}]
    return card


def _dataset_component(dataset_version: DatasetVersion) -> tuple[Component, dict[str, Any]]:
    """A dataset version as a `data` component, and its CycloneDX `data` entry (which the library cannot write)."""
    dataset = dataset_version.dataset
    pinned_by = "blob" if dataset_version.blob_id else "manifest"
    properties = [Property(name="provenant:digest_of", value=pinned_by)]
    if dataset_version.row_count is not None:
        properties.append(Property(name="provenant:row_count", value=str(dataset_version.row_count)))
    component = Component(
        type=ComponentType.DATA,
        bom_ref=f"dataset-version-{dataset_version.pk}",
        group=dataset.project.slug,
        name=dataset.name,
        version=f"v{dataset_version.number}",
        description=dataset_version.description or dataset.description or None,
        hashes=_sha256(dataset_version.content_digest.removeprefix("sha256:")),
        properties=properties,
    )
    data: dict[str, Any] = {
        "type": "dataset",
        "name": f"{dataset.project.slug}/{dataset.name}@v{dataset_version.number}",
    }
    if dataset_version.uri:
        data["contents"] = {"url": dataset_version.uri}
    return component, data


def _dependency_components(environment: object) -> list[Component]:
    """The run environment's packages: pinned ones with their version and PyPI package URL, the rest by name."""
    requirements = environment.get("dependencies") if isinstance(environment, dict) else None
    if not isinstance(requirements, list):
        return []
    pins, unpinned = pins_parse(requirements)
    components, seen = [], set()
    for pin in pins:
        purl = PackageURL(type="pypi", name=pin.name, version=pin.version)
        if purl.to_string() in seen:
            continue
        seen.add(purl.to_string())
        components.append(
            Component(
                type=ComponentType.LIBRARY, name=pin.name, version=pin.version, purl=purl, bom_ref=purl.to_string()
            )
        )
    for position, requirement in enumerate(unpinned, start=1):
        components.append(
            Component(
                type=ComponentType.LIBRARY,
                name=requirement[:200],
                bom_ref=f"requirement-{position}",
                properties=[Property(name="provenant:unpinned_requirement", value=requirement)],
            )
        )
    python = environment.get("python_version")
    if isinstance(python, str) and python:
        components.append(
            Component(type=ComponentType.PLATFORM, name="python", version=python, bom_ref=f"python-{python}")
        )
    return components


def model_version_bom(version: ModelVersion) -> dict[str, Any]:
    """The CycloneDX 1.6 ML-BOM of `version` (with its artifact version, blob, run and model's project loaded)."""
    artifact_version = version.artifact_version
    model = version.registered_model
    run = artifact_version.run
    properties = [
        Property(name="provenant:stage", value=version.stage),
        Property(name="provenant:artifact_version", value=str(artifact_version)),
        # The library writes a component's media type as `mimeType`, which 1.6 calls `mime-type`: kept here instead.
        Property(name="provenant:media_type", value=artifact_version.media_type),
    ]
    if run is not None:
        properties.append(Property(name="provenant:run", value=run.external_id))
        if run.code_repository:
            properties.append(Property(name="provenant:code_repository", value=run.code_repository))
        if run.code_commit:
            properties.append(Property(name="provenant:code_commit", value=run.code_commit))
    subject = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref=f"model-version-{version.pk}",
        group=model.project.slug,
        name=model.name,
        version=f"v{version.number}",
        description=model.description or None,
        hashes=_sha256(artifact_version.blob.digest),
        licenses=[LicenseExpression(artifact_version.license)] if artifact_version.license else None,
        properties=properties,
    )
    datasets: list[DatasetVersion] = []
    if run is not None:
        datasets = list(
            run.input_dataset_versions.select_related("dataset__project", "blob").order_by("dataset__name", "number")
        )
    # A new serial number each time: the card and the stage it reports may have changed since the last download.
    bom = Bom(metadata=BomMetaData(component=subject))
    data_entries = {}
    for dataset_version in datasets:
        component, data = _dataset_component(dataset_version)
        bom.components.add(component)
        data_entries[str(component.bom_ref)] = data
    libraries = _dependency_components(run.environment if run is not None else None)
    for component in libraries:
        bom.components.add(component)
    bom.register_dependency(subject, libraries)
    document = json.loads(JsonV1Dot6(bom).output_as_string())
    document["metadata"]["component"]["modelCard"] = _model_card(version, list(data_entries))
    for component in document.get("components", []):
        if (entry := data_entries.get(component.get("bom-ref"))) is not None:
            component["data"] = [entry]
    return document
