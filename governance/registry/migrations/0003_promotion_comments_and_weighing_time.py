"""A promotion request's discussion (comments, never edited or removed: triggers, last), and when approval was last
weighed. The new column is nullable without a default, so SQLite adds it in place and the request's triggers stay."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from core.triggers import RefuseDelete, RefuseUpdate


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0002_imported_stages_and_aliases"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="promotionrequest",
            name="gates_weighed_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When approval was last weighed (the time of `gates_at_decision`); empty before the first weighing, and for requests weighed before this time was kept.",
                null=True,
            ),
        ),
        migrations.CreateModel(
            name="PromotionComment",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("body", models.TextField()),
                ("created_at", models.DateTimeField()),
                (
                    "author",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "request",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="comments",
                        to="registry.promotionrequest",
                    ),
                ),
            ],
            options={
                "ordering": ["request", "created_at", "id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("body", ""), _negated=True), name="promotion_comment_says_something"
                    )
                ],
            },
        ),
        RefuseUpdate("PromotionComment", "a comment on a promotion request is never changed: add another"),
        RefuseDelete("PromotionComment", "a comment on a promotion request is never deleted"),
    ]
