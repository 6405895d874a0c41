from django.db import models

from core.errors import ImmutableRecord


class WriteOnceModel(models.Model):
    """A row that is inserted once and never changed or deleted through the ORM.

    The table also carries a trigger (see core.triggers) so that bulk updates and other
    clients are refused by the database itself.
    """

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ImmutableRecord(
                f"{self._meta.verbose_name.capitalize()} {self.pk} is immutable; publish a new version instead."
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecord(
            f"{self._meta.verbose_name.capitalize()} {self.pk} is part of the record and cannot be deleted."
        )
