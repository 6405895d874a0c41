from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from artifacts.models import Blob
from artifacts.services import blob_verify
from artifacts.services.integrity import blob_pending_enqueue, blob_scrub
from artifacts.storage.reads import TRANSIENT_STORAGE_ERRORS
from core.errors import DomainError
from core.validators import parse_digest

LISTED = 20


class Command(BaseCommand):
    help = (
        "Re-prove stored blobs against their SHA-256: one blob now, in this process (--digest), or queue the "
        "verification of every pending blob (--pending) or of one scrub run (--scrub) for the workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument(
            "--digest",
            metavar="sha256:HEX",
            help="Re-hash this blob here and now and record the result; exits with status 1 if it is corrupt.",
        )
        mode.add_argument("--pending", action="store_true", help="Queue every blob still pending verification.")
        mode.add_argument(
            "--scrub",
            action="store_true",
            help="Queue one scrub run now: the blobs proved least recently, up to the byte budget.",
        )
        parser.add_argument(
            "--budget",
            type=int,
            metavar="BYTES",
            help="With --scrub: bytes to re-prove in this run (default: PROVENANT_SCRUB_BYTES_PER_RUN).",
        )

    def handle(self, *args, digest: str | None, pending: bool, scrub: bool, budget: int | None, **options) -> None:
        if budget is not None and not scrub:
            raise CommandError("--budget goes with --scrub.")
        try:
            if digest is not None:
                self._verify_one(digest)
            elif pending:
                self._report_queued(blob_pending_enqueue(), "pending")
            else:
                budget = settings.PROVENANT_SCRUB_BYTES_PER_RUN if budget is None else budget
                self._report_queued(blob_scrub(byte_budget=budget), f"scrub, budget {budget:,} bytes")
        except DomainError as error:
            raise CommandError(error.message) from None

    def _verify_one(self, digest: str) -> None:
        try:
            hex_digest = parse_digest(digest)
        except ValidationError as error:
            raise CommandError(f"--digest {digest!r}: {error.messages[0]}") from None
        blob = Blob.objects.filter(digest=hex_digest).first()
        if blob is None:
            raise CommandError(f"No blob sha256:{hex_digest} is recorded.")
        try:
            blob = blob_verify(blob=blob)
        except TRANSIENT_STORAGE_ERRORS as error:
            raise CommandError(
                f"Could not read the bytes of {blob.prefixed_digest} from storage ({error}); its state is unchanged "
                f"({blob.state}). Try again."
            ) from None
        if blob.state == Blob.State.CORRUPT:
            raise CommandError(
                f"{blob.prefixed_digest} is corrupt: the stored bytes are missing or no longer match. It is "
                "quarantined; upload the original bytes again to repair it."
            )
        self.stdout.write(f"{blob.prefixed_digest} verified ({blob.size:,} bytes).")

    def _report_queued(self, blob_ids: list[int], why: str) -> None:
        if not blob_ids:
            self.stdout.write(f"Nothing to verify ({why}).")
            return
        # Read back after the queueing commit: without a broker the tasks have already run, and show their result.
        listed = Blob.objects.in_bulk(blob_ids[:LISTED])
        self.stdout.write(f"Queued {len(blob_ids)} blobs for verification ({why}):")
        for blob_id in blob_ids[:LISTED]:
            blob = listed[blob_id]
            self.stdout.write(f"  {blob.prefixed_digest}  {blob.size:,} bytes  {blob.state}")
        if len(blob_ids) > LISTED:
            self.stdout.write(f"  …and {len(blob_ids) - LISTED} more")
