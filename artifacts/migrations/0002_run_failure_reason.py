"""Why a run failed or was cancelled, said when it ends (Run.failure_reason), and only then.

SQLite rebuilds the run table to add the column and the constraint, which drops its triggers: they are installed
again, last (core/triggers.py). The finished-run trigger freezes the reason with the rest of a finished run.
"""

from django.db import migrations, models

import core.triggers


class Migration(migrations.Migration):
    dependencies = [
        ("artifacts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="failure_reason",
            field=models.CharField(
                blank=True,
                help_text="Why the run failed or was cancelled (an exception's type, an exit status), given when it "
                "ended.",
                max_length=1000,
            ),
        ),
        migrations.AddConstraint(
            model_name="run",
            constraint=models.CheckConstraint(
                condition=models.Q(("failure_reason", ""), ("status__in", ("failed", "cancelled")), _connector="OR"),
                name="run_failure_reason_only_when_unsuccessful",
            ),
        ),
        core.triggers.RefuseUpdate(
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
            reinstall=True,
        ),
        core.triggers.RefuseDelete("Run", "runs are part of the record and are never deleted", reinstall=True),
        core.triggers.RefuseUpdate(
            "Run",
            "a finished run is frozen: record a new run instead",
            when_old="OLD.status IN ('completed', 'failed', 'cancelled')",
            name="refuse_update_finished",
            reinstall=True,
        ),
    ]
