import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.audit import tree as audit_tree
from core.audit.recorder import tree_head_sign
from core.errors import DomainError
from core.models import AuditEntry
from governance.audit import selectors


class Command(BaseCommand):
    help = (
        "Print an audit log proof as JSON, as the API serves it. `inclusion SEQ [--tree-size N]`: the proof that "
        "entry SEQ is in the tree of N entries (default: the latest signed tree head holding it, signed now if "
        "none does). `consistency FIRST SECOND`: the proof that the tree of FIRST entries is the start of the tree "
        "of SECOND entries."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        kinds = parser.add_subparsers(dest="kind", required=True, metavar="{inclusion,consistency}")
        inclusion = kinds.add_parser("inclusion", help="Prove that one entry is in the log.")
        inclusion.add_argument("seq", type=int, help="The entry's sequence number (from 0).")
        inclusion.add_argument("--tree-size", type=int, help="Prove it against the tree of this many entries.")
        consistency = kinds.add_parser("consistency", help="Prove that a smaller tree is the start of a larger one.")
        consistency.add_argument("first", type=int, help="The smaller tree's size.")
        consistency.add_argument("second", type=int, help="The larger tree's size.")

    def handle(self, *args, kind: str, **options) -> None:
        try:
            proof = self._inclusion(**options) if kind == "inclusion" else self._consistency(**options)
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(json.dumps(proof, indent=2))

    def _inclusion(self, *, seq: int, tree_size: int | None, **options) -> dict:
        entry = AuditEntry.objects.filter(seq=seq).first() if seq >= 0 else None
        if entry is None:
            size = audit_tree.log_size()
            holds = f"seq 0 to {size - 1}" if size else "no entries yet"
            raise CommandError(f"No audit entry {seq}: the log holds {holds}.")
        if tree_size is None:
            tree_size = (selectors.tree_head_covering(seq) or tree_head_sign()).tree_size
        return selectors.audit_inclusion_proof(entry, tree_size)

    def _consistency(self, *, first: int, second: int, **options) -> dict:
        return selectors.audit_consistency_proof(first, second)
