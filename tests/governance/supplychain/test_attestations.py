"""A version's provenance attestation: what its statement says, that an independent DSSE implementation
(securesystemslib) verifies it with the key the server publishes, that it is signed once and handed out unchanged,
who may read it, and that every read is logged."""

import base64
import hashlib
import json

import pytest
from django.db import IntegrityError, transaction
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from artifacts import services
from artifacts.access.roles import Role
from artifacts.models import Run
from core.errors import Conflict, ImmutableRecord
from core.models import AuditEntry
from governance.supplychain.models import AttestationKey, ProvenanceAttestation
from governance.supplychain.provenance import BUILD_TYPE
from governance.supplychain.services.attestations import provenance_attestation_get
from tests.artifacts.factories import ArtifactVersionFactory, UserFactory, grant
from tests.governance.supplychain.factories import produced_version
from tests.schema_contract import assert_conforms

BASE = "https://provenant.example.com"
ATTESTATION_PATH = "/api/v1/artifact-versions/{id}/attestation/"


def attestation_url(version) -> str:
    return f"/api/v1/artifact-versions/{version.pk}/attestation/"


def published_keys(api) -> list[SSlibKey]:
    """The keys as a verifier gets them, from /attestations/keys/, each id computed anew."""
    answer = api.get("/api/v1/attestations/keys/")
    assert answer.status_code == 200
    keys = []
    for listed in answer.json():
        raw = base64.b64decode(listed["public_key"])
        assert listed["keyid"] == hashlib.sha256(raw).hexdigest()
        keys.append(SSlibKey(listed["keyid"], "ed25519", "ed25519", {"public": raw.hex()}))
    return keys


def statement(envelope: dict) -> dict:
    return json.loads(base64.b64decode(envelope["payload"]))


def test_the_statement_is_slsa_provenance_of_the_versions_bytes_and_inputs(db):
    produced = produced_version()

    said = statement(provenance_attestation_get(version=produced.version).envelope)

    assert said["_type"] == "https://in-toto.io/Statement/v1"
    assert said["predicateType"] == "https://slsa.dev/provenance/v1"
    assert said["subject"] == [
        {"name": "churn/classifier@v1", "digest": {"sha256": hashlib.sha256(produced.content).hexdigest()}}
    ]
    build = said["predicate"]["buildDefinition"]
    assert build["buildType"] == BUILD_TYPE
    assert build["externalParameters"] == {
        "entryPoint": "python -m churn.train",
        "parameters": {"learning_rate": 0.05, "epochs": 12},
    }
    assert build["internalParameters"]["environment"] == produced.run.environment
    assert build["internalParameters"]["run"]["uri"] == f"{BASE}/api/v1/runs/{produced.run.pk}/"
    source, dataset, base_model = build["resolvedDependencies"]
    assert source == {
        "name": "source",
        "uri": f"git+https://git.example.com/ml/churn.git@{produced.run.code_commit}",
        "digest": {"gitCommit": produced.run.code_commit},
    }
    assert dataset["name"] == "churn/customers@v1"
    assert dataset["digest"] == {"sha256": produced.dataset_version.blob.digest}
    assert dataset["uri"] == f"{BASE}/api/v1/dataset-versions/{produced.dataset_version.pk}/"
    assert dataset["annotations"]["portalUrl"] == f"{BASE}/datasets/versions/{produced.dataset_version.pk}/"
    assert base_model["name"] == "churn/base-model@v1"
    assert base_model["digest"] == {"sha256": produced.base_model.blob.digest}
    assert base_model["annotations"] == {
        "kind": "artifact_version",
        "portalUrl": f"{BASE}/versions/{produced.base_model.pk}/",
    }
    details = said["predicate"]["runDetails"]
    assert details["builder"]["id"] == f"{BASE}/"
    assert details["builder"]["builderDependencies"] == [{"name": "numpy==2.1.0"}]
    assert details["metadata"] == {
        "invocationId": "train-42",
        "startedOn": "2026-11-02T09:30:00Z",
        "finishedOn": "2026-11-02T11:45:12Z",
    }


def test_a_version_published_without_a_run_says_it_has_no_build(db):
    version = ArtifactVersionFactory()

    said = statement(provenance_attestation_get(version=version).envelope)

    assert said["subject"][0]["digest"]["sha256"] == version.blob.digest
    assert said["predicate"]["buildDefinition"]["resolvedDependencies"] == []
    assert said["predicate"]["buildDefinition"]["internalParameters"]["run"] is None
    assert "metadata" not in said["predicate"]["runDetails"]


def test_the_api_answers_an_envelope_an_independent_implementation_verifies(api):
    produced = produced_version()

    answer = api.get(attestation_url(produced.version))

    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/json"
    assert_conforms(answer, "GET", ATTESTATION_PATH)
    assert_conforms(api.get("/api/v1/attestations/keys/"), "GET", "/api/v1/attestations/keys/")
    assert answer.content.endswith(b"}\n")
    assert answer.content.count(b"\n") == 1
    envelope = Envelope.from_dict(json.loads(answer.content))
    verified = envelope.verify(published_keys(api), 1)
    assert list(verified) == [AttestationKey.objects.get().keyid]
    assert json.loads(envelope.pae().split(b" ", 4)[4]) == statement(json.loads(answer.content))


def test_it_is_signed_once_and_the_same_bytes_are_handed_out_ever_after(api):
    produced = produced_version()

    first = api.get(attestation_url(produced.version)).content
    second = api.get(attestation_url(produced.version)).content

    assert first == second
    assert ProvenanceAttestation.objects.count() == 1
    reads = AuditEntry.objects.filter(action="provenance_attestation.read").order_by("seq")
    assert [json.loads(entry.changes).get("made") for entry in reads] == [True, None]
    assert {entry.artifact_id for entry in reads} == {produced.version.artifact_id}
    assert {entry.actor_user_id for entry in reads} == {api.user.pk}


def test_the_stored_attestation_cannot_change(db):
    attestation = provenance_attestation_get(version=produced_version().version)

    with pytest.raises(ImmutableRecord):
        attestation.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        ProvenanceAttestation.objects.filter(pk=attestation.pk).update(envelope={})
    with pytest.raises(IntegrityError), transaction.atomic():
        ProvenanceAttestation.objects.filter(pk=attestation.pk).delete()


def test_a_version_whose_run_is_still_running_gets_no_statement_yet(api):
    produced = produced_version(finished=False)

    answer = api.get(attestation_url(produced.version))

    assert answer.status_code == 409
    assert_conforms(answer, "GET", ATTESTATION_PATH)
    assert answer.json()["code"] == "run_not_finished"
    assert "train-42" in answer.json()["detail"]
    assert not ProvenanceAttestation.objects.exists()
    services.run_update(run=produced.run, status=Run.Status.FAILED, failure_reason="OOM")
    assert api.get(attestation_url(produced.version)).status_code == 200


def test_readers_of_the_version_may_read_its_attestation_and_nobody_else(api_as):
    produced = produced_version()
    reader, stranger = UserFactory(), UserFactory()
    grant(Role.VIEWER, on=produced.version.artifact.project, user=reader)

    assert api_as(reader).get(attestation_url(produced.version)).status_code == 200
    hidden = api_as(stranger).get(attestation_url(produced.version))
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == f"No artifact version with id {produced.version.pk}."
    assert api_as(stranger).get("/api/v1/artifact-versions/99999999999999999999/attestation/").status_code == 404


def test_a_grantee_of_the_artifact_alone_is_refused_the_statement_that_names_what_they_may_not_read(api_as, client_as):
    produced = produced_version()
    grantee = UserFactory()
    grant(Role.VIEWER, on=produced.version.artifact, user=grantee)  # the version, not its run or inputs

    refused = api_as(grantee).get(attestation_url(produced.version))
    page = client_as(grantee).get(f"/versions/{produced.version.pk}/").content.decode()
    download = client_as(grantee).get(f"/versions/{produced.version.pk}/attestation.intoto.jsonl")

    assert refused.status_code == 403
    assert refused.json()["detail"] == "It names the run that produced this version, which you may not read."
    assert "withheld: It names the run that produced this version" in page
    assert "attestation.intoto.jsonl" not in page
    assert download.status_code == 403
    assert not ProvenanceAttestation.objects.exists()  # nothing was signed for them
    assert api_as(grantee).get(f"/api/v1/runs/{produced.run.pk}/").status_code == 404  # as the run answers them


def test_anonymous_callers_get_neither_attestations_nor_keys(anonymous_api, db):
    produced = produced_version()

    assert anonymous_api.get(attestation_url(produced.version)).status_code == 401
    assert anonymous_api.get("/api/v1/attestations/keys/").status_code == 401


def test_the_portal_offers_the_attestation_as_a_file(db, client_as):
    produced = produced_version()
    owner = produced.version.created_by

    page = client_as(owner).get(f"/versions/{produced.version.pk}/")
    link = f"/versions/{produced.version.pk}/attestation.intoto.jsonl"
    assert link in page.content.decode()
    download = client_as(owner).get(link)

    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="churn-classifier-v1.intoto.jsonl"'
    assert json.loads(download.content) == ProvenanceAttestation.objects.get().envelope
    assert AuditEntry.objects.filter(action="provenance_attestation.read", actor_user_id=owner.pk).count() == 1


def test_the_portal_says_when_the_run_has_not_ended(db, client_as):
    produced = produced_version(finished=False)
    owner = produced.version.created_by

    page = client_as(owner).get(f"/versions/{produced.version.pk}/").content.decode()
    assert "attestation.intoto.jsonl" not in page
    assert "signed once run <code>train-42</code> has ended" in page
    refused = client_as(owner).get(f"/versions/{produced.version.pk}/attestation.intoto.jsonl")
    assert refused.status_code == 409
    assert b"still running" in refused.content


def test_an_unknown_version_in_the_service_is_not_signed_for_a_running_run(db):
    produced = produced_version(finished=False)
    with pytest.raises(Conflict):
        provenance_attestation_get(version=produced.version)
