"""`manage.py import_osv <all.zip>`: load an OSV archive (one ecosystem's, from osv.dev) for the dependency gate."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import InvalidInput
from governance.supplychain.services.vulnerabilities import osv_import


class Command(BaseCommand):
    help = (
        "Import the OSV vulnerability records of an archive osv.dev publishes per ecosystem (e.g. "
        "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip). Idempotent: records are kept by id and "
        "replaced only by a later `modified`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", help="Path to the zip of OSV JSON files.")

    def handle(self, *args, archive: str, **options) -> None:
        try:
            report = osv_import(archive=archive)
        except InvalidInput as error:
            raise CommandError(str(error)) from None
        ecosystems = ", ".join(sorted(report.ecosystems)) or "none"
        self.stdout.write(
            f"Imported {archive} (sha256 {report.sha256}): {report.created} new, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.skipped} skipped; ecosystems: {ecosystems}."
        )
        for reason in report.skip_reasons:
            self.stdout.write(f"  skipped {reason}")
