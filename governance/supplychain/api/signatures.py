"""Model signatures over the API: the keys a project trusts (maintainers), and the signature bundles attached to
a version (publishers). Rules live in governance/supplychain/services/signatures.py; views only translate."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from artifacts.access.roles import Verb
from artifacts.api.base import get_or_404, project_or_404, require
from artifacts.models import ArtifactVersion
from core.api.fields import JSONObjectField
from core.api.serializers import InputSerializer
from core.errors import InvalidInput
from governance.supplychain.models import SigningMethod, TrustedSigningKey, VersionSignature
from governance.supplychain.models.signatures import MAX_BUNDLE_BYTES, MAX_PEM_CHARS
from governance.supplychain.selectors import signatures as selectors
from governance.supplychain.services import signatures as services


class TrustedKeySerializer(serializers.ModelSerializer):
    added_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    revoked_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = TrustedSigningKey
        fields = [
            "id",
            "project",
            "name",
            "method",
            "pem",
            "fingerprint",
            "added_by",
            "added_at",
            "revoked_by",
            "revoked_at",
        ]
        read_only_fields = fields


class TrustedKeyCreateSerializer(InputSerializer):
    name = serializers.RegexField(
        r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        help_text="Who or what holds the private key, e.g. 'release-ci'. Letters, digits, '.', '_' and '-'.",
    )
    method = serializers.ChoiceField(choices=SigningMethod.choices)
    pem = serializers.CharField(
        max_length=MAX_PEM_CHARS,
        trim_whitespace=False,
        help_text="key: the signer's elliptic-curve public key. certificate: the CA or root certificates (PEM).",
    )


class SignatureKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = TrustedSigningKey
        fields = ["id", "name", "revoked_at"]
        read_only_fields = fields


class SignatureSerializer(serializers.ModelSerializer):
    artifact_version = serializers.PrimaryKeyRelatedField(read_only=True)
    trusted_key = SignatureKeySerializer(read_only=True, allow_null=True)
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    bundle = JSONObjectField(read_only=True)
    trusted = serializers.SerializerMethodField(
        help_text="Verified by a key the project still trusts: what the promotion gate counts."
    )

    class Meta:
        model = VersionSignature
        fields = [
            "id",
            "artifact_version",
            "method",
            "verified",
            "trusted",
            "trusted_key",
            "detail",
            "uploaded_by",
            "uploaded_at",
            "verified_at",
            "bundle",
        ]
        read_only_fields = fields

    def get_trusted(self, signature: VersionSignature) -> bool:
        return signature.verified and signature.trusted_key is not None and signature.trusted_key.revoked_at is None


class SignatureUploadSerializer(InputSerializer):
    bundle = JSONObjectField(
        help_text="The Sigstore bundle `model_signing sign key|certificate` wrote (the .sig file's JSON), as is."
    )


@extend_schema(tags=["supply chain"])
class TrustedKeyListView(APIView):
    """The keys and certificate chains a project trusts for model signatures; maintainers add them."""

    @extend_schema(responses=TrustedKeySerializer(many=True), operation_id="trusted_keys_list")
    def get(self, request: Request, slug: str) -> Response:
        project = project_or_404(request.user, slug)
        # The project's own records (rule 2): a grantee of one of its artifacts sees the project's name, not its keys,
        # so the list is read through the project-wide view right: empty for them, as the datasets list is.
        keys = (
            TrustedSigningKey.objects.visible_to(request.user)
            .filter(project=project)
            .select_related("project", "added_by", "revoked_by")
        )
        return Response(TrustedKeySerializer(keys.order_by("name", "id"), many=True).data)

    @extend_schema(
        request=TrustedKeyCreateSerializer, responses={201: TrustedKeySerializer}, operation_id="trusted_keys_create"
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_or_404(request.user, slug)
        require(request.user, Verb.MANAGE, project)
        data = TrustedKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = services.trusted_key_add(project=project, added_by=request.user, **data.validated_data)
        return Response(TrustedKeySerializer(key).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["supply chain"])
class TrustedKeyRevokeView(APIView):
    """Stop trusting a key: the signatures it verified are checked again, and count no more meanwhile."""

    @extend_schema(request=None, responses=TrustedKeySerializer, operation_id="trusted_keys_revoke")
    def post(self, request: Request, slug: str, pk: int) -> Response:
        project = project_or_404(request.user, slug)
        key = get_or_404(TrustedSigningKey.objects.filter(project=project), "pk", pk)
        require(request.user, Verb.MANAGE, project)
        key = services.trusted_key_revoke(key=key, revoked_by=request.user)
        return Response(TrustedKeySerializer(key).data)


@extend_schema(tags=["supply chain"])
class VersionSignatureListView(APIView):
    """A version's model signatures with the server's verdicts; publishers attach more at any time."""

    def _version(self, request: Request, pk: int) -> ArtifactVersion:
        versions = ArtifactVersion.objects.visible_to(request.user).select_related("artifact__project", "blob")
        return get_or_404(versions, "pk", pk)

    @extend_schema(responses=SignatureSerializer(many=True), operation_id="artifact_versions_signatures_list")
    def get(self, request: Request, pk: int) -> Response:
        version = self._version(request, pk)
        return Response(SignatureSerializer(selectors.version_signatures(version), many=True).data)

    @extend_schema(
        request=SignatureUploadSerializer,
        responses={201: SignatureSerializer},
        operation_id="artifact_versions_signatures_create",
        description="Attach a model-signing bundle. It is checked in the background against the version's bytes "
        "and the project's trusted keys: poll the list until `verified_at` is set.",
    )
    def post(self, request: Request, pk: int) -> Response:
        version = self._version(request, pk)
        require(request.user, Verb.CONTRIBUTE, version.artifact)
        size = int(request.META.get("CONTENT_LENGTH") or 0)
        if size > MAX_BUNDLE_BYTES + 1024:
            raise InvalidInput(services.bundle_size_problem(size - 1024) or "", field="bundle")
        data = SignatureUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        signature = services.signature_upload(
            artifact_version=version, bundle=data.validated_data["bundle"], uploaded_by=request.user
        )
        signature.refresh_from_db()
        return Response(SignatureSerializer(signature).data, status=status.HTTP_201_CREATED)
