import io
import json
import math
import struct

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from artifacts import demo, services
from artifacts.access.roles import Verb
from artifacts.access.rule import can
from artifacts.models import (
    Artifact,
    ArtifactVersion,
    Blob,
    Dataset,
    DatasetVersion,
    Project,
    ProjectBlob,
    RoleGrant,
    Run,
    RunArtifactInput,
    RunDatasetInput,
)
from artifacts.storage.reads import iter_blob
from tests.artifacts.factories import UserFactory, sha256

RECORDED_MODELS = (
    Project,
    Dataset,
    DatasetVersion,
    Run,
    RunDatasetInput,
    RunArtifactInput,
    Artifact,
    ArtifactVersion,
    Blob,
    ProjectBlob,
    RoleGrant,
    get_user_model(),
)


@pytest.fixture(autouse=True)
def debug(settings):
    settings.DEBUG = True


def load_demo() -> str:
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def stored_bytes(blob: Blob) -> bytes:
    return b"".join(iter_blob(blob.storage_key))


def version(artifact: str, number: int) -> ArtifactVersion:
    return ArtifactVersion.objects.select_related("blob", "run").get(
        artifact__project__slug=demo.PROJECT_SLUG, artifact__name=artifact, number=number
    )


def read_safetensors(data: bytes) -> tuple[dict, dict[str, list[float]]]:
    """Parse a safetensors file strictly enough to catch a malformed writer: header length, JSON header,
    contiguous data offsets that cover the whole payload exactly."""
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_length])
    payload = data[8 + header_length :]
    tensors, position = {}, 0
    for name, info in sorted(
        ((n, i) for n, i in header.items() if n != "__metadata__"), key=lambda item: item[1]["data_offsets"]
    ):
        start, end = info["data_offsets"]
        assert info["dtype"] == "F32"
        assert start == position
        assert end - start == 4 * math.prod(info["shape"])
        tensors[name] = list(struct.unpack(f"<{math.prod(info['shape'])}f", payload[start:end]))
        position = end
    assert position == len(payload)
    return header, tensors


@pytest.mark.django_db
def test_demo_records_one_project_with_its_dataset_runs_and_artifacts():
    load_demo()

    project = Project.objects.get()
    assert project.slug == "fraud-detection"
    assert project.description
    dataset = Dataset.objects.get(project=project)
    assert dataset.name == "card-transactions"
    assert [(v.number, v.row_count) for v in dataset.versions.order_by("number")] == [(1, 2000), (2, 2500)]
    assert {run.external_id: run.status for run in Run.objects.all()} == {
        "train-2026-11-03-a": Run.Status.COMPLETED,
        "train-2026-11-03-b": Run.Status.COMPLETED,
    }
    versions = {
        (v.artifact.name, v.number): v.run.external_id
        for v in ArtifactVersion.objects.select_related("artifact", "run")
    }
    assert versions == {
        ("preprocessor", 1): "train-2026-11-03-a",
        ("model", 1): "train-2026-11-03-a",
        ("evaluation-report", 1): "train-2026-11-03-a",
        ("model", 2): "train-2026-11-03-b",
        ("evaluation-report", 2): "train-2026-11-03-b",
    }
    assert Blob.objects.count() == ProjectBlob.objects.filter(project=project).count() == 7
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password("provenant-demo")


@pytest.mark.django_db
def test_each_run_records_its_code_parameters_environment_and_times():
    load_demo()

    for run in Run.objects.all():
        assert run.code_repository.startswith("https://")
        assert len(run.code_commit) == 40
        assert run.entry_point
        assert {"learning_rate", "epochs", "l2", "features"} <= run.parameters.keys()
        assert run.environment["python_version"]
        assert "numpy==2.1.3" in run.environment["dependencies"]
        assert run.environment["hardware"]
        assert run.started_at < run.ended_at


@pytest.mark.django_db
def test_run_b_consumed_dataset_v2_and_the_preprocessor_run_a_produced():
    load_demo()

    run_a = Run.objects.get(external_id="train-2026-11-03-a")
    run_b = Run.objects.get(external_id="train-2026-11-03-b")
    assert [str(v) for v in run_a.input_dataset_versions.all()] == ["fraud-detection/card-transactions@v1"]
    assert list(run_a.input_artifact_versions.all()) == []
    assert [str(v) for v in run_b.input_dataset_versions.all()] == ["fraud-detection/card-transactions@v2"]
    preprocessor = version("preprocessor", 1)
    assert list(run_b.input_artifact_versions.all()) == [preprocessor]
    assert preprocessor.run == run_a


@pytest.mark.django_db
def test_dataset_versions_are_csv_files_with_a_realistic_fraud_rate():
    load_demo()

    for dataset_version in DatasetVersion.objects.select_related("blob"):
        rows = demo.read_transactions_csv(stored_bytes(dataset_version.blob))
        assert len(rows) == dataset_version.row_count
        fraud_rate = sum(tx.is_fraud for tx in rows) / len(rows)
        assert 0.03 <= fraud_rate <= 0.05
        assert dataset_version.schema["fraud_rate"] == round(fraud_rate, 4)
        assert [c["name"] for c in dataset_version.schema["columns"]] == list(demo.Transaction._fields)


@pytest.mark.django_db
def test_model_files_are_safetensors_with_the_declared_shapes():
    load_demo()

    for number in (1, 2):
        model = version("model", number)
        header, tensors = read_safetensors(stored_bytes(model.blob))
        assert model.media_type == "application/octet-stream"
        assert model.metadata["filename"] == "model.safetensors"
        assert model.metadata["framework"]
        assert {name: info["shape"] for name, info in header.items() if name != "__metadata__"} == {
            "weight": [1, 5],
            "bias": [1],
        }
        assert model.metadata["tensors"] == {"weight": [1, 5], "bias": [1]}
        assert header["__metadata__"]["features"].split(",") == model.metadata["features"]
        assert all(math.isfinite(value) and value != 0 for value in tensors["weight"] + tensors["bias"])


@pytest.mark.django_db
def test_run_metrics_are_plausible_and_match_the_evaluation_report():
    load_demo()

    for number, run in enumerate(Run.objects.order_by("external_id"), start=1):
        report = version("evaluation-report", number)
        document = json.loads(stored_bytes(report.blob))
        assert report.run == run
        assert document["metrics"] == run.metrics
        assert document["model_digest"] == version("model", number).blob.prefixed_digest
        assert 0.5 < run.metrics["accuracy"] < 1
        assert 0.5 < run.metrics["auc"] <= 1
        assert 0 <= run.metrics["precision"] <= 1
        assert 0 <= run.metrics["recall"] <= 1
        assert 0 < run.metrics["log_loss"] < math.log(2)
    preprocessor = json.loads(stored_bytes(version("preprocessor", 1).blob))
    assert [feature["name"] for feature in preprocessor["features"]] == list(demo.FEATURES)
    assert all(feature["std"] > 0 for feature in preprocessor["features"])


@pytest.mark.django_db
def test_blobs_are_verified_once_the_load_commits(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        load_demo()

    assert set(Blob.objects.values_list("state", flat=True)) == {Blob.State.VERIFIED}


@pytest.mark.django_db
def test_output_gives_the_login_and_the_api_docs():
    output = load_demo()

    assert "Loaded the demo project 'fraud-detection'" in output
    assert "http://127.0.0.1:8000/admin/" in output
    assert "username admin, password provenant-demo" in output
    assert "http://127.0.0.1:8000/api/v1/docs/" in output
    assert "train-2026-11-03-b: accuracy 0." in output


@pytest.mark.django_db
def test_second_load_creates_nothing_and_prints_the_login_again():
    load_demo()
    counts = {model: model.objects.count() for model in RECORDED_MODELS}

    output = load_demo()

    assert {model: model.objects.count() for model in RECORDED_MODELS} == counts
    assert "already loaded" in output
    assert "username admin, password provenant-demo" in output
    assert "http://127.0.0.1:8000/api/v1/docs/" in output


@pytest.mark.django_db
def test_regenerated_files_are_the_same_bytes_so_publishing_them_again_finds_the_existing_versions():
    load_demo()
    admin = get_user_model().objects.get(username="admin")
    model = Artifact.objects.get(name="model")
    csv_v1 = demo.transactions_csv(demo.generate_transactions(2500)[:2000])
    retrained = demo.train(csv_v1, parameters=demo.PARAMETERS_A, standardizer=None).model

    services.blob_store(
        project=model.project,
        stream=io.BytesIO(retrained),
        expected_digest=sha256(retrained),
        uploaded_by=admin,
        declared_length=len(retrained),
    )
    first = version("model", 1)
    republished, created = services.artifact_version_publish(
        artifact=model, digest=sha256(retrained), created_by=admin,
        run=first.run, media_type=first.media_type, metadata=first.metadata, license=first.license,
    )  # fmt: skip

    assert not created
    assert republished == first
    assert csv_v1 == stored_bytes(DatasetVersion.objects.get(number=1).blob)


@pytest.mark.django_db
def test_an_existing_admin_is_used_and_its_password_left_alone():
    admin = UserFactory(username="admin", password="their own password")

    output = load_demo()

    admin.refresh_from_db()
    assert admin.check_password("their own password")
    assert not admin.is_superuser
    assert set(ArtifactVersion.objects.values_list("created_by", flat=True)) == {admin.pk}
    assert "provenant-demo" not in output
    assert "with the password you set" in output


@pytest.mark.django_db
def test_refuses_to_run_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DJANGO_DEBUG=true"):
        load_demo()

    assert not get_user_model().objects.filter(username="admin").exists()
    assert not Project.objects.exists()


@pytest.mark.django_db
def test_the_demo_team_holds_one_role_each_and_the_analysts_group_views():
    output = load_demo()

    project = Project.objects.get(slug=demo.PROJECT_SLUG)
    for username, role in demo.TEAM.items():
        member = get_user_model().objects.get(username=username)
        assert list(RoleGrant.objects.filter(project=project, user=member).values_list("role", flat=True)) == [role]
        assert member.check_password(demo.ADMIN_PASSWORD)
    lena = get_user_model().objects.get(username="lena")
    assert can(lena, Verb.VIEW, project)
    assert not can(lena, Verb.CONTRIBUTE, project)
    assert "dana (contributor)" in output
