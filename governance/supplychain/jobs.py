"""The names of the supply-chain tasks its services queue (core/jobs.py): tasks import services, so services name
tasks rather than import them."""

VERIFY_SIGNATURE = "governance.supplychain.tasks.verify_signature"
