"""Upload sessions started without a digest (named by the finishing PUT): only a session still receiving may lack
one, a database constraint says so."""

from django.conf import settings
from django.db import migrations, models

import core.validators


class Migration(migrations.Migration):
    dependencies = [
        ("artifacts", "0002_run_failure_reason"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="uploadsession",
            name="digest",
            field=models.CharField(
                blank=True,
                help_text="What the bytes must hash to; empty until the client names it, for a session started without one (API chunks to a folder), which it must do to finish.",
                max_length=64,
                validators=[core.validators.validate_sha256_hex],
            ),
        ),
        migrations.AddConstraint(
            model_name="uploadsession",
            constraint=models.CheckConstraint(
                condition=models.Q(("state", "receiving"), models.Q(("digest", ""), _negated=True), _connector="OR"),
                name="upload_digest_named_when_done",
            ),
        ),
    ]
