"""The names of the artifact store's tasks its services queue (core/jobs.py). artifacts/tasks.py defines them and
imports the services they run, so the services name them rather than import them."""

VERIFY_BLOB = "artifacts.tasks.verify_blob"
VERIFY_DIRECT_UPLOAD = "artifacts.tasks.verify_direct_upload"
COLLECT_BLOB = "artifacts.tasks.collect_blob"
