"""Retention policy versions are never edited or deleted, and a legal hold is never deleted: once placed it names the
same thing for the same reason, and once released it stays as it was released (core/triggers.py)."""

from django.db import migrations

from core.triggers import RefuseDelete, RefuseUpdate


class Migration(migrations.Migration):
    dependencies = [("lifecycle", "0001_initial")]

    operations = [
        RefuseUpdate("RetentionPolicy", "a retention policy version is never edited: save a new version"),
        RefuseDelete("RetentionPolicy", "retention policy versions are never deleted: plans name the one they ran"),
        RefuseUpdate(
            "LegalHold",
            "a legal hold always names the same thing for the same reason: release it and place another",
            columns=(
                "project_id",
                "artifact_id",
                "artifact_version_id",
                "dataset_id",
                "dataset_version_id",
                "reason",
                "placed_by_id",
                "placed_at",
            ),
            name="refuse_update_identity",
        ),
        RefuseUpdate(
            "LegalHold",
            "a released legal hold is a record: it is never changed; place a new hold instead",
            when_old="OLD.released_at IS NOT NULL",
            name="refuse_update_released",
        ),
        RefuseDelete("LegalHold", "legal holds are never deleted: release them"),
    ]
