import time

from django.conf import settings
from django.core.management.base import BaseCommand

from governance.webhooks.deliveries import deliveries_relay


class Command(BaseCommand):
    help = (
        "Hand due webhook deliveries (retries, and events written while the broker was down) to the workers, or run "
        "them in-process when there is no broker. Celery beat does this in production; the embedded default has no "
        "beat, so run this with --loop next to `runserver` to get retries."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--loop", action="store_true", help="Keep relaying until interrupted.")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between rounds with --loop (default PROVENANT_WEBHOOK_RELAY_INTERVAL_SECONDS).",
        )

    def handle(self, *args, loop: bool, interval: float | None, **options) -> None:
        interval = interval or settings.PROVENANT_WEBHOOK_RELAY_INTERVAL_SECONDS
        while True:
            handed = deliveries_relay()
            if handed or not loop:
                self.stdout.write(f"Handed {len(handed)} webhook deliveries to the workers.")
            if not loop:
                return
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                return
