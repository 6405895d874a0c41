"""The AI bill of materials of a model version (governance/registry/bom.py): CycloneDX 1.6 JSON, valid against the
standard's own schema, naming the model with its SHA-256, license and model card, the datasets its run read and the
packages of its environment; downloaded from the API and the portal by whoever may see the version."""

import json

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from artifacts.access.roles import Role
from governance.registry.bom import model_version_bom
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory, UserFactory, grant
from tests.governance.factories import (
    ModelVersionFactory,
    PromotionRequestFactory,
    RegisteredModelFactory,
    artifact_version_with_lineage,
)

pytestmark = pytest.mark.django_db

VERSIONS = "/api/v1/model-versions/"
CARD = """# Churn classifier

## Intended use
Ranking accounts for retention calls.

## Limitations
Does not see support tickets.
"""
ENVIRONMENT = {"python_version": "3.11.9", "dependencies": ["numpy==2.1.3", "Scikit_Learn==1.5.2", "torch>=2"]}


def validation_errors(document: dict) -> str | None:
    """What the CycloneDX 1.6 JSON schema (strict: no unknown property) finds wrong with `document`, or None."""
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    return None if error is None else str(error)


def without_serial_and_time(document: dict) -> dict:
    """A BOM but for what differs on each download: its serial number and time."""
    document = {**document, "metadata": {**document["metadata"]}}
    del document["serialNumber"], document["metadata"]["timestamp"]
    return document


@pytest.fixture
def version():
    project = ProjectFactory()
    model = RegisteredModelFactory(project=project, model_card=CARD, description="Who will leave next month.")
    artifact_version = artifact_version_with_lineage(
        project, environment=ENVIRONMENT, license="Apache-2.0 OR MIT", metrics={"auc": 0.91, "recall": 0.8}
    )
    return ModelVersionFactory(registered_model=model, artifact_version=artifact_version)


def test_the_bom_is_valid_cyclonedx_1_6_and_names_the_model_its_data_and_its_dependencies(version):
    document = model_version_bom(version)

    assert validation_errors(document) is None
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.6")
    model = document["metadata"]["component"]
    assert (model["type"], model["group"], model["name"], model["version"]) == (
        "machine-learning-model",
        version.registered_model.project.slug,
        version.registered_model.name,
        "v1",
    )
    assert model["hashes"] == [{"alg": "SHA-256", "content": version.artifact_version.blob.digest}]
    assert model["licenses"] == [{"expression": "Apache-2.0 OR MIT"}]
    card = model["modelCard"]
    assert card["quantitativeAnalysis"]["performanceMetrics"] == [
        {"type": "auc", "value": "0.91", "slice": f"run {version.artifact_version.run.external_id}"},
        {"type": "recall", "value": "0.8", "slice": f"run {version.artifact_version.run.external_id}"},
    ]
    assert card["considerations"] == {
        "useCases": ["Ranking accounts for retention calls."],
        "technicalLimitations": ["Does not see support tickets."],
    }

    by_ref = {component["bom-ref"]: component for component in document["components"]}
    (dataset_version,) = version.artifact_version.run.input_dataset_versions.all()
    data = by_ref[f"dataset-version-{dataset_version.pk}"]
    assert (data["type"], data["version"], data["data"][0]["type"]) == ("data", "v1", "dataset")
    assert data["hashes"] == [{"alg": "SHA-256", "content": dataset_version.content_digest.removeprefix("sha256:")}]
    assert card["modelParameters"]["datasets"] == [{"ref": data["bom-ref"]}]

    assert by_ref["pkg:pypi/numpy@2.1.3"]["version"] == "2.1.3"
    assert by_ref["pkg:pypi/scikit-learn@1.5.2"]["name"] == "scikit-learn"
    assert by_ref["requirement-1"]["properties"] == [{"name": "provenant:unpinned_requirement", "value": "torch>=2"}]
    assert by_ref["python-3.11.9"]["type"] == "platform"
    (model_dependencies,) = [d for d in document["dependencies"] if d["ref"] == model["bom-ref"]]
    assert set(model_dependencies["dependsOn"]) == {
        "pkg:pypi/numpy@2.1.3",
        "pkg:pypi/scikit-learn@1.5.2",
        "requirement-1",
        "python-3.11.9",
    }


def test_a_version_with_no_run_or_card_still_gives_a_valid_bom(db):
    project = ProjectFactory()
    model = RegisteredModelFactory(project=project, model_card="")
    bare = ModelVersionFactory(
        registered_model=model, artifact_version=ArtifactVersionFactory(artifact=ArtifactFactory(project=project))
    )

    document = model_version_bom(bare)

    assert validation_errors(document) is None
    assert "licenses" not in document["metadata"]["component"]
    assert document["metadata"]["component"]["modelCard"] == {"bom-ref": f"model-card-{bare.pk}"}


def test_the_schema_check_would_catch_a_malformed_bom(version):
    """The validation above is not vacuous: the 1.6 schema refuses a model card field it does not define."""
    document = model_version_bom(version)
    document["metadata"]["component"]["modelCard"]["accuracy"] = 0.9

    assert validation_errors(document) is not None


def test_the_api_downloads_the_bom_as_cyclonedx_json_and_hides_it_from_who_may_not_see_the_version(
    api_as, version, client
):
    project = version.registered_model.project
    viewer = grant(Role.VIEWER, on=project).user

    response = api_as(viewer).get(f"{VERSIONS}{version.pk}/bom/")
    stranger = api_as(UserFactory()).get(f"{VERSIONS}{version.pk}/bom/")

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/vnd.cyclonedx+json; version=1.6"
    assert response["Content-Disposition"] == (
        f'attachment; filename="{project.slug}-{version.registered_model.name}-v1.cdx.json"'
    )
    assert without_serial_and_time(json.loads(response.content)) == without_serial_and_time(model_version_bom(version))
    assert stranger.status_code == 404


def test_the_portal_links_each_version_to_its_bom(client, version):
    project = version.registered_model.project
    client.force_login(grant(Role.VIEWER, on=project).user)
    url = f"/models/{version.registered_model.pk}/versions/1/bom/"

    page = client.get(f"/models/{version.registered_model.pk}/")
    download = client.get(url)

    assert page.status_code == 200
    assert f'href="{url}"' in page.content.decode()
    assert download.status_code == 200
    assert validation_errors(json.loads(download.content)) is None
    assert client.get(f"/models/{version.registered_model.pk}/versions/2/bom/").status_code == 404
    request = PromotionRequestFactory(model_version=version)
    assert f'href="{url}"' in client.get(f"/promotions/{request.pk}/").content.decode()


def test_a_grantee_of_the_artifact_alone_is_refused_the_bom_that_names_the_run_and_data(api_as, client, version):
    grantee = grant(Role.VIEWER, on=version.artifact_version.artifact).user

    refused = api_as(grantee).get(f"{VERSIONS}{version.pk}/bom/")
    client.force_login(grantee)
    download = client.get(f"/models/{version.registered_model.pk}/versions/1/bom/")

    assert api_as(grantee).get(f"{VERSIONS}{version.pk}/").status_code == 200  # the version itself is theirs to see
    assert refused.status_code == 403
    assert refused.json()["detail"] == "It names the run that produced this version, which you may not read."
    assert download.status_code == 403
