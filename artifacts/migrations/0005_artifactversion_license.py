"""The SPDX license expression an artifact version declares when it is published (ArtifactVersion.license).

SQLite rebuilds the artifact version table to add a column with a default, which drops its triggers: they are
installed again, last (core/triggers.py), so the license is as immutable as the rest of the version.
"""

from django.db import migrations, models

from core.triggers import RefuseDelete, RefuseUpdate


class Migration(migrations.Migration):
    dependencies = [("artifacts", "0004_lifecycle_blob_states_and_tombstones")]

    operations = [
        migrations.AddField(
            model_name="artifactversion",
            name="license",
            field=models.CharField(
                blank=True,
                default="",
                help_text="The SPDX license expression the publisher declared (normalized, e.g. 'Apache-2.0 OR MIT'); "
                "empty: none declared. Promotion policies may hold it to an allowlist.",
                max_length=500,
            ),
        ),
        RefuseUpdate(
            "ArtifactVersion", "artifact versions are immutable; publish a new version instead", reinstall=True
        ),
        RefuseDelete(
            "ArtifactVersion", "artifact versions are part of the record and are never deleted", reinstall=True
        ),
    ]
