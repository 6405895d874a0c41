from django.db import migrations

from governance.triggers import RefuseUpdate


class Migration(migrations.Migration):
    dependencies = [("artifacts", "0001_initial")]

    operations = [
        RefuseUpdate("ArtifactVersion", "artifact versions are immutable; publish a new version instead"),
        RefuseUpdate("DatasetVersion", "dataset versions are immutable; publish a new version instead"),
        RefuseUpdate("RunDatasetInput", "run inputs are fixed when the run is recorded"),
        RefuseUpdate("RunArtifactInput", "run inputs are fixed when the run is recorded"),
        RefuseUpdate("Blob", "a blob's digest and size never change", columns=("digest", "size")),
        RefuseUpdate(
            "Run",
            "what a run was (project, id, code, parameters, environment, start) is fixed when it is recorded",
            columns=(
                "project_id",
                "external_id",
                "code_repository",
                "code_commit",
                "entry_point",
                "parameters",
                "environment",
                "started_at",
                "created_by_id",
            ),
        ),
    ]
