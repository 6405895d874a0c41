from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management.base import BaseCommand, CommandError, CommandParser

from artifacts.storage.reads import TRANSIENT_STORAGE_ERRORS
from core.audit import signing
from core.audit.copies import verify_tree_head_copies


def _public_key(path: str) -> bytes:
    """The raw 32 bytes of the Ed25519 public key in the PEM file at `path` (what `audit_public_key --pem` prints)."""
    try:
        pem = Path(path).read_bytes()
    except OSError as error:
        raise CommandError(f"--public-key {path}: cannot read it ({error.strerror}).") from None
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as error:
        raise CommandError(f"--public-key {path} is not a PEM public key: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CommandError(f"--public-key {path} holds a {type(key).__name__}; tree heads are signed with Ed25519.")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Command(BaseCommand):
    help = (
        "Check the database's audit log against the signed tree heads kept in the bucket (audit/tree-heads/): "
        "each copy's signature, and that the log holds at least the entries it signed with the same root. Run it "
        "after restoring a backup: a database older than the newest head fails, naming that head. Exits 1 on any "
        "failure, 2 if the bucket cannot be read."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--public-key",
            action="append",
            default=[],
            metavar="PEM",
            help="A public key the heads may be signed with (repeat for old keys). Default: the configured key's.",
        )
        parser.add_argument(
            "--newest", type=int, metavar="N", help="Check only the newest N copies (default: every copy)."
        )

    def handle(self, *args, public_key: list[str], newest: int | None, **options) -> None:
        if newest is not None and newest < 1:
            raise CommandError(f"--newest {newest}: give a number of copies, 1 or more.")
        keys = [_public_key(path) for path in public_key] or [signing.public_key_bytes()]
        verbose = options["verbosity"] > 1
        try:
            report = verify_tree_head_copies(keys, newest=newest, progress=self.stdout.write if verbose else None)
        except TRANSIENT_STORAGE_ERRORS as error:
            # Not a verdict on the log: the check could not be made (status 2, as the offline verifier's).
            raise CommandError(f"Cannot read the tree heads in the blob storage: {error}", returncode=2) from None
        if not report.ok:
            failures = "\n".join(f"- {failure}" for failure in report.failures)
            raise CommandError(
                f"The audit log ({report.log_size} entries) does not match the tree heads in the bucket "
                f"({len(report.failures)} failure(s)):\n{failures}",
                returncode=1,
            )
        if report.newest is None:
            self.stdout.write(
                f"No signed tree head in the bucket yet; the audit log holds {report.log_size} entries. Nothing to "
                "check (sign one with audit_sign_tree_head)."
            )
            return
        newest_head = report.newest
        self.stdout.write(
            f"The audit log ({report.log_size} entries) is consistent with all {len(report.checked)} signed tree "
            f"head(s) checked in the bucket; the newest, {newest_head['name']}, signed {newest_head['tree_size']} "
            f"entries at {newest_head['signed_at']}."
        )
