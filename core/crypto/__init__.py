"""The hashing and signing rules the server shares with what runs apart from it: the audit log's Merkle tree and
tree-head signatures (merkle.py, which tools/audit_verify.py imports) and Standard Webhooks signatures
(webhook_signatures.py, which examples/webhook_receiver.py imports). Nothing here imports Django or the rest of
core: the `standalone-crypto` contract in .importlinter checks it."""
