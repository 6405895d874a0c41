"""Stages and aliases copied from another registry (`provenant import mlflow`), said to be imported.

SQLite rebuilds the stage history table to add the constraint, which drops its triggers: they are installed again,
last (core/triggers.py).
"""

from django.conf import settings
from django.db import migrations, models

import core.triggers


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="modelalias",
            name="imported_from",
            field=models.CharField(
                blank=True,
                help_text="Where the alias was copied from (another registry), when its last move was an import; empty when a person here set it.",
                max_length=500,
            ),
        ),
        migrations.AddField(
            model_name="stagetransition",
            name="imported_from",
            field=models.CharField(
                blank=True,
                help_text="For an imported move: the registry and version it was copied from. No reviewer approved it.",
                max_length=500,
            ),
        ),
        migrations.AlterField(
            model_name="stagetransition",
            name="cause",
            field=models.CharField(
                choices=[
                    ("promotion", "Promoted by an approved request"),
                    ("replaced", "Moved out of production by the version that replaced it"),
                    ("rollback", "Emergency rollback (break-glass)"),
                    ("imported", "Imported from another registry (not approved in Provenant)"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="stagetransition",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("cause", "imported"),
                        ("promotion_request__isnull", True),
                        models.Q(("imported_from", ""), _negated=True),
                    ),
                    models.Q(models.Q(("cause", "imported"), _negated=True), ("imported_from", "")),
                    _connector="OR",
                ),
                name="stage_transition_imported_says_from_where",
            ),
        ),
        core.triggers.RefuseUpdate("StageTransition", "stage history is never rewritten", reinstall=True),
        core.triggers.RefuseDelete("StageTransition", "stage history is never deleted", reinstall=True),
    ]
