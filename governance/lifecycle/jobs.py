"""The names of the lifecycle tasks its services and views queue (core/jobs.py): tasks.py imports the services, so
they name the tasks rather than import them."""

APPLY_RETENTION_PLAN = "governance.lifecycle.tasks.apply_retention_plan"
