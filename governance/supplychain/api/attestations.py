"""Provenance attestations over the API: a version's signed envelope, and every key that ever signed one."""

import base64
import json

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from artifacts.api.base import get_or_404
from artifacts.models import ArtifactVersion
from core.validators import MAX_ID
from governance.supplychain.keys import public_pem
from governance.supplychain.models import ProvenanceAttestation
from governance.supplychain.selectors.attestations import attestation_keys, provenance_withheld
from governance.supplychain.services.attestations import provenance_attestation_get


class DsseSignatureSerializer(serializers.Serializer):
    keyid = serializers.CharField(help_text="SHA-256 (hex) of the raw Ed25519 public key: see /attestations/keys/.")
    sig = serializers.CharField(help_text="Ed25519 signature of PAE(payloadType, payload), base64.")


class DsseEnvelopeSerializer(serializers.Serializer):
    payload = serializers.CharField(
        help_text="The in-toto Statement v1 (SLSA provenance v1 predicate) as canonical JSON, base64."
    )
    payloadType = serializers.CharField(help_text="application/vnd.in-toto+json")
    signatures = DsseSignatureSerializer(many=True)


class AttestationKeySerializer(serializers.Serializer):
    keyid = serializers.CharField()
    algorithm = serializers.CharField(help_text="ed25519")
    public_key = serializers.CharField(help_text="The 32 raw bytes of the Ed25519 public key, base64.")
    pem = serializers.SerializerMethodField(help_text="The same key as SubjectPublicKeyInfo PEM (for --key).")
    created_at = serializers.DateTimeField()
    first_used_at = serializers.DateTimeField(allow_null=True, help_text="When it first signed; null: not yet.")
    retired_at = serializers.DateTimeField(allow_null=True, help_text="When a newer key replaced it; null: current.")

    def get_pem(self, key) -> str:
        return public_pem(base64.b64decode(key.public_key))


def envelope_response(attestation: ProvenanceAttestation, *, filename: str | None = None) -> HttpResponse:
    """The envelope as one line of JSON and a newline: the answer is itself a valid `.intoto.jsonl` file."""
    body = json.dumps(attestation.envelope, separators=(",", ":"), sort_keys=True) + "\n"
    response = HttpResponse(body, content_type="application/json")
    if filename is not None:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def attestation_filename(version: ArtifactVersion) -> str:
    return f"{version.artifact.project.slug}-{version.artifact.name}-v{version.number}.intoto.jsonl"


class VersionAttestationView(APIView):
    """The signed provenance of an artifact version, for whoever may read the version."""

    @extend_schema(
        tags=["attestations"],
        summary="The version's provenance attestation (DSSE envelope of an in-toto SLSA provenance statement)",
        description=(
            "A DSSE envelope whose payload is an in-toto Statement v1 with a SLSA provenance v1 predicate: the "
            "version's name and SHA-256, the run's code commit, entry point, parameters and environment, and every "
            "input dataset version and upstream artifact version with its SHA-256. Signed with Ed25519 by the "
            "server's attestation key (GET /api/v1/attestations/keys/) on the first request, and the same bytes "
            "ever after. The body is one line of JSON, so it can be saved as an `.intoto.jsonl` file. Verify "
            "offline with `provenant attestation verify`. Every request is recorded in the audit log."
        ),
        responses={
            200: DsseEnvelopeSerializer,
            403: OpenApiResponse(
                description="The statement names the producing run or inputs that the caller may not read (a grantee "
                "of the artifact alone): it is signed once, the same for every reader, so it is withheld."
            ),
            409: OpenApiResponse(
                description="The run that produced the version is still running: its provenance is signed once it "
                "has ended (code run_not_finished); or the configured key was retired (attestation_key_retired)."
            ),
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        if pk > MAX_ID:
            raise NotFound(f"No artifact version with id {pk}.")
        version = get_or_404(
            ArtifactVersion.objects.visible_to(request.user).select_related("artifact__project"), "pk", pk
        )
        if withheld := provenance_withheld(version, request.user):
            raise PermissionDenied(withheld)
        attestation = provenance_attestation_get(version=version)
        return envelope_response(attestation)


class AttestationKeysView(APIView):
    """Every public key that ever signed a provenance attestation, the current one first. Signed-in callers only, as
    every operation but the schema's (the audit key's too); operators publish the keys elsewhere for outsiders
    (`manage.py attestation_keys` prints this same list)."""

    @extend_schema(
        tags=["attestations"],
        summary="The attestation signing keys, current and retired",
        responses=AttestationKeySerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return Response(AttestationKeySerializer(attestation_keys(), many=True).data)
