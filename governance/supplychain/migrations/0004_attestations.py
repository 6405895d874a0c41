"""Provenance attestations (issue 21, part 3): the keys that sign them and the signed envelopes, both kept for good."""

import django.db.models.deletion
from django.db import migrations, models

from core.triggers import RefuseDelete, RefuseUpdate


class Migration(migrations.Migration):
    dependencies = [
        ("artifacts", "0004_lifecycle_blob_states_and_tombstones"),
        ("supplychain", "0003_signatures"),
    ]

    operations = [
        migrations.CreateModel(
            name="AttestationKey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "keyid",
                    models.CharField(help_text="SHA-256 of the raw public key, in hex.", max_length=64, unique=True),
                ),
                ("algorithm", models.CharField(default="ed25519", editable=False, max_length=16)),
                (
                    "public_key",
                    models.CharField(help_text="The 32 raw bytes of the key, in base64.", max_length=64, unique=True),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, help_text="When Provenant first saw the key.")),
                (
                    "first_used_at",
                    models.DateTimeField(blank=True, help_text="When it first signed an attestation.", null=True),
                ),
                (
                    "retired_at",
                    models.DateTimeField(
                        blank=True, help_text="When a newer key took over; it signs no more.", null=True
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("retired_at__isnull", True)),
                        fields=("algorithm",),
                        name="attestation_key_one_current",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("algorithm", "ed25519")), name="attestation_key_ed25519"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("keyid__regex", "^[0-9a-f]{64}$")), name="attestation_keyid_shape"
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="ProvenanceAttestation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "envelope",
                    models.JSONField(
                        help_text="The DSSE envelope: payload (base64 statement), payloadType, signatures."
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "artifact_version",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="provenance_attestation",
                        to="artifacts.artifactversion",
                    ),
                ),
                (
                    "key",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="attestations",
                        to="supplychain.attestationkey",
                    ),
                ),
            ],
            options={
                "ordering": ["-id"],
            },
        ),
        # Triggers last (SQLite drops a table's triggers when a migration rebuilds it: core/triggers.py).
        RefuseUpdate("ProvenanceAttestation", "a provenance attestation is signed once and never changes"),
        RefuseDelete("ProvenanceAttestation", "provenance attestations are part of the record and are never deleted"),
        RefuseUpdate(
            "AttestationKey",
            "an attestation key's id and public key never change",
            columns=("keyid", "public_key", "algorithm"),
        ),
        RefuseUpdate(
            "AttestationKey",
            "a retired attestation key stays retired",
            when_old="OLD.retired_at IS NOT NULL",
            name="refuse_update_retired",
        ),
        RefuseDelete("AttestationKey", "attestation keys stay published so that old envelopes still verify"),
    ]
