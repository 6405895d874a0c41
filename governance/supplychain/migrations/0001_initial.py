"""The area's first migration, empty: each kind of evidence adds its tables in a migration of its own."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("artifacts", "0004_lifecycle_blob_states_and_tombstones")]

    operations = []
