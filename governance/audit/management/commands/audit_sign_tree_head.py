import json

from django.core.management.base import BaseCommand

from core.audit.recorder import tree_head_document, tree_head_sign


class Command(BaseCommand):
    help = (
        "Sign the audit log's current size and root now, keep a copy in the blob storage, and print the signed "
        "tree head as JSON (the form the verifier's --tree-head reads)."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write(json.dumps(tree_head_document(tree_head_sign()), indent=2))
