"""The names of the webhook tasks queued outside governance/webhooks/tasks.py (core/jobs.py), which imports the
hand-off that queues them."""

DELIVER_WEBHOOK = "governance.webhooks.tasks.deliver_webhook"
