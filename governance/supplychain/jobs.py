"""The names of the supply-chain area's tasks its services queue (core/jobs.py): tasks.py defines them and imports
the services, so the services name them rather than import them."""

SCAN_BLOB = "governance.supplychain.tasks.scan_blob"
VERIFY_SIGNATURE = "governance.supplychain.tasks.verify_signature"
