from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import DomainError
from governance.supplychain.formats import SCANNER, SCANNER_VERSION
from governance.supplychain.services.scans import blobs_rescan_enqueue


class Command(BaseCommand):
    help = (
        "Queue format scans for the workers: of every verified blob (--all), or of those with no scan by the "
        f"current scanner ({SCANNER} {SCANNER_VERSION}; --outdated), e.g. after upgrading the scanner."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument("--all", action="store_true", help="Rescan every verified blob whose bytes can be read now.")
        mode.add_argument(
            "--outdated",
            action="store_true",
            help="Scan blobs never scanned, or scanned only by an older scanner version.",
        )
        parser.add_argument("--limit", type=int, metavar="N", help="Queue at most N blobs, lowest id first.")

    def handle(self, *args, all: bool, outdated: bool, limit: int | None, **options) -> None:
        try:
            queued = blobs_rescan_enqueue(outdated_only=outdated, limit=limit)
        except DomainError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Queued {len(queued)} blob scans ({SCANNER} {SCANNER_VERSION}).")
