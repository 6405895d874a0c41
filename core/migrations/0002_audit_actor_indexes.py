"""The actor filter's indexes: the audit log's entries by user id and by actor label, each in seq order.

`?actor=` lists an actor's entries newest first (ORDER BY seq DESC). With no index on the label, and one on the user
id in time order, PostgreSQL read the whole log for an actor with few or no entries (benchmarks/README.md). Each
index ends in seq, so a page is a short backward read of one of them. The (actor_user_id, recorded_at) index is
replaced, not kept beside: its readers (the filter, a user's own entries, the access reviews' last reads) all
match the user id exactly, which the new one serves as well, and every index is one more write per append.

Adding and dropping an index does not rebuild the table on SQLite (nor on PostgreSQL), so the append-only triggers
of 0001 stay as they are: nothing to reinstall (core/triggers.py).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="auditentry",
            name="audit_actor_time",
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(fields=["actor_user_id", "seq"], name="audit_actor_seq"),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(fields=["actor_label", "seq"], name="audit_actor_label_seq"),
        ),
    ]
