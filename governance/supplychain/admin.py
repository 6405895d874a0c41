"""The supply chain's evidence in the admin: trusted signing keys, version signatures, format scans, the keys that
signed provenance attestations, and the imported vulnerability data.

Keys are added and revoked through the signature services, by the maintainers of their project (never edited or
deleted: a key is revoked, and the signatures it verified keep naming it). Everything else is a record, read-only:
signatures and scans seen as the versions and blobs they are about, attestation keys and OSV records by whoever
holds the model's view permission (they name no project)."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from artifacts.access.roles import Verb
from artifacts.access.rule import can
from artifacts.models import Blob
from core.admin import ServiceWrittenAdmin, ViewOnlyMixin, VisibleOnlyAdmin, json_block, skipped, yes_no_filter
from core.errors import DomainError
from governance.supplychain.models import (
    AffectedPackage,
    AttestationKey,
    BlobScan,
    TrustedSigningKey,
    VersionSignature,
    Vulnerability,
)
from governance.supplychain.services.signatures import trusted_key_add, trusted_key_revoke

RevokedFilter = yes_no_filter("revoked", lambda: Q(revoked_at__isnull=False))


@admin.register(TrustedSigningKey)
class TrustedSigningKeyAdmin(ServiceWrittenAdmin):
    """The keys and CA chains a project trusts for model signatures. Added once, then only revoked."""

    list_display = ("name", "project", "method", "fingerprint", "added_by", "added_at", "revoked_at")
    list_filter = ("method", RevokedFilter, ("project", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("project", "added_by")
    search_fields = ("name", "project__slug", "fingerprint")
    fields = ("project", "name", "method", "pem")
    identity_fields = fields
    detail_fields = ("fingerprint", "added_by", "added_at", "revoked_by", "revoked_at")
    actions = ["revoke"]

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "project":
            field.queryset = field.queryset.where(request.user, Verb.MANAGE)
        return field

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_change_permission(self, request: HttpRequest, obj: TrustedSigningKey | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or can(request.user, Verb.MANAGE, obj.project))

    def create(self, request: HttpRequest, data: dict[str, Any]) -> TrustedSigningKey:
        return trusted_key_add(
            project=data["project"], name=data["name"], method=data["method"], pem=data["pem"], added_by=request.user
        )

    def update(self, request: HttpRequest, obj: TrustedSigningKey, data: dict[str, Any]) -> TrustedSigningKey:
        return obj  # every field is fixed once added: revoke the key and add another

    @admin.action(description="Revoke (its signatures are checked again)", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[TrustedSigningKey]) -> None:
        refusals = []
        for key in queryset.select_related("project"):
            if not can(request.user, Verb.MANAGE, key.project):
                refusals.append(f"{key}: that takes the maintainer role on project {key.project.slug}.")
                continue
            try:
                trusted_key_revoke(key=key, revoked_by=request.user)
            except DomainError as error:
                refusals.append(f"{key}: {error.message}")
            else:
                self.log_change(request, key, "Revoked.")
                self.message_user(request, f"{key} revoked.", level=messages.SUCCESS)
        if refusals:
            self.message_user(request, skipped(refusals), level=messages.ERROR)


@admin.register(VersionSignature)
class VersionSignatureAdmin(ViewOnlyMixin, VisibleOnlyAdmin):
    """Signatures attached to versions, with the server's last verdict; attached over the API."""

    list_display = ("id", "artifact_version", "method", "verified", "trusted_key", "uploaded_by", "verified_at")
    list_filter = ("method", "verified")
    list_select_related = ("artifact_version__artifact__project", "trusted_key", "uploaded_by")
    fields = (
        "artifact_version",
        "method",
        "verified",
        "trusted_key",
        "detail",
        "uploaded_by",
        "uploaded_at",
        "verified_at",
        "bundle_json",
    )
    readonly_fields = fields

    @admin.display(description="Bundle")
    def bundle_json(self, obj: VersionSignature):
        return json_block(obj.bundle)


@admin.register(BlobScan)
class BlobScanAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """Every scan of the blobs the viewer may see (a blob is seen through the projects holding it), newest first."""

    list_display = ("id", "blob", "detected_format", "verdict", "scanner_version", "scanned_at")
    list_filter = ("verdict", "detected_format", "scanner_version")
    list_select_related = ("blob",)
    search_fields = ("blob__digest",)
    ordering = ("-id",)
    fields = (
        "blob",
        "detected_format",
        "verdict",
        "scanner",
        "scanner_version",
        "started_at",
        "scanned_at",
        "findings_json",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[BlobScan]:
        return super().get_queryset(request).filter(blob__in=Blob.objects.visible_to(request.user))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        return super().get_search_results(request, queryset, search_term.removeprefix("sha256:"))

    @admin.display(description="Findings")
    def findings_json(self, obj: BlobScan):
        return json_block(obj.findings)


@admin.register(AttestationKey)
class AttestationKeyAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """Every key that has signed provenance attestations, the current one first (rotated with
    `manage.py rotate_attestation_key`)."""

    list_display = ("keyid", "algorithm", "created_at", "first_used_at", "retired_at")
    ordering = ("retired_at", "-created_at")
    fields = ("keyid", "algorithm", "public_key", "created_at", "first_used_at", "retired_at")
    readonly_fields = fields


class AffectedPackageInline(ViewOnlyMixin, admin.TabularInline):
    model = AffectedPackage
    fields = ("ecosystem", "name", "ranges", "versions")
    readonly_fields = fields
    extra = 0


@admin.register(Vulnerability)
class VulnerabilityAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """The OSV records an operator imported (`manage.py import_osv`), with the packages each affects."""

    list_display = ("osv_id", "summary", "modified", "withdrawn")
    search_fields = ("osv_id", "aliases", "affected__name")
    ordering = ("osv_id",)
    fields = ("osv_id", "aliases", "summary", "published", "modified", "withdrawn", "imported_at")
    readonly_fields = fields
    inlines = [AffectedPackageInline]
