"""The supply chain's records in the admin, read-only: format scans (seen as the blobs they are about), the keys
that signed attestations, and the imported OSV records with the packages they affect."""

import pytest
from django.urls import reverse

from artifacts.access.roles import Role
from governance.supplychain.models import AttestationKey, BlobScan
from governance.supplychain.services.attestations import provenance_attestation_get
from tests.artifacts.factories import UserFactory, grant
from tests.governance.supplychain import files
from tests.governance.supplychain.factories import produced_version
from tests.governance.supplychain.osv import PYSEC_NUMPY, osv_imported, osv_record
from tests.governance.supplychain.test_scans import arrived

pytestmark = pytest.mark.django_db


def test_a_scan_shows_its_findings_and_cannot_be_changed_or_deleted(admin_client, django_capture_on_commit_callbacks):
    arrived(files.hostile_torch_checkpoint(), django_capture_on_commit_callbacks)
    scan = BlobScan.objects.get()

    listing = admin_client.get(reverse("admin:supplychain_blobscan_changelist") + "?verdict=unsafe")
    page = admin_client.get(reverse("admin:supplychain_blobscan_change", args=[scan.pk]))

    assert listing.status_code == page.status_code == 200
    assert "system" in page.content.decode()  # the import the pickle makes, in the findings
    assert admin_client.get(reverse("admin:supplychain_blobscan_add")).status_code == 403
    assert admin_client.post(reverse("admin:supplychain_blobscan_delete", args=[scan.pk])).status_code == 403


def test_staff_see_the_scans_of_the_blobs_they_may_see_only(client_as, staff, django_capture_on_commit_callbacks):
    version = arrived(files.clean_safetensors(), django_capture_on_commit_callbacks)
    arrived(files.hostile_pickle(), django_capture_on_commit_callbacks)  # in a project of its own
    viewer = UserFactory()
    grant(Role.VIEWER, on=version.artifact.project, user=viewer)
    client = client_as(staff(viewer, "view_blobscan"))

    response = client.get(reverse("admin:supplychain_blobscan_changelist"))

    assert [scan.blob_id for scan in response.context["cl"].result_list] == [version.blob_id]


def test_attestation_keys_and_osv_records_are_listed(admin_client, tmp_path):
    produced = produced_version()
    provenance_attestation_get(version=produced.version)
    osv_imported(tmp_path, [osv_record(PYSEC_NUMPY)])
    key = AttestationKey.objects.get()

    keys = admin_client.get(reverse("admin:supplychain_attestationkey_changelist"))
    records = admin_client.get(reverse("admin:supplychain_vulnerability_changelist") + "?q=numpy")

    assert key.keyid in keys.content.decode()
    assert records.status_code == 200
    assert len(records.context["cl"].result_list) == 1
