from django.db import migrations

from governance.triggers import RefuseDelete, RefuseUpdate


class Migration(migrations.Migration):
    dependencies = [("artifacts", "0004_blob_scrub_order")]

    operations = [
        RefuseDelete("ArtifactVersion", "artifact versions are part of the record and are never deleted"),
        RefuseDelete("DatasetVersion", "dataset versions are part of the record and are never deleted"),
        RefuseDelete("RunDatasetInput", "run inputs are part of the lineage and are never deleted"),
        RefuseDelete("RunArtifactInput", "run inputs are part of the lineage and are never deleted"),
        RefuseDelete("Run", "runs are part of the record and are never deleted"),
        RefuseUpdate(
            "Run",
            "a finished run is frozen: record a new run instead",
            when_old="OLD.status IN ('completed', 'failed', 'cancelled')",
            name="refuse_update_finished",
        ),
    ]
