from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.audit.context import acting_as_system
from core.audit.recorder import audit_export_begin, export_lines


class Command(BaseCommand):
    help = (
        "Export the whole audit log as JSON Lines with every signed tree head, for tools/audit_verify.py to "
        "check offline. PATH is the file to write, or - for standard output. The export is itself recorded in the "
        "log first, so it covers its own entry."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", metavar="PATH", help="Where to write the export; - for standard output.")

    def handle(self, *args, path: str, **options) -> None:
        target = None if path == "-" else Path(path)
        if target is not None and not target.parent.is_dir():
            raise CommandError(f"Cannot write {target}: the folder {target.parent} does not exist.")
        with acting_as_system("command audit_export"):
            head = audit_export_begin()
        if target is None:
            # Bytes as they were hashed; a text stream (as in tests) gets them decoded, unchanged (they are UTF-8).
            binary = getattr(self.stdout._out, "buffer", None)
            for line in export_lines(head):
                binary.write(line) if binary is not None else self.stdout.write(line.decode(), ending="")
            self.stdout.flush()
            self.stderr.write(f"Exported {head.tree_size} entries to standard output.")
            return
        try:
            with target.open("wb") as handle:
                handle.writelines(export_lines(head))
        except OSError as error:
            raise CommandError(f"Cannot write {target}: {error.strerror}.") from None
        self.stdout.write(
            f"Exported {head.tree_size} entries (tree head signed at {head.signed_at:%Y-%m-%d %H:%M:%S} UTC) to "
            f"{target.resolve()}.\nVerify with: python tools/audit_verify.py {target} --public-key KEY "
            "(manage.py audit_public_key --pem prints the key)."
        )
