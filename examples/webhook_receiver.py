#!/usr/bin/env python3
"""A receiver of Provenant's webhook deliveries, to start yours from: it checks each delivery's signature before
trusting a byte of it, handles each event once however often it arrives, and answers 2xx so Provenant stops
retrying.

Run it from a checkout of Provenant with Python 3.11+ (standard library only), the endpoint's secret (shown once,
when the endpoint was created or its secret rotated) in the environment rather than on the command line, where
other users could read it:

    PROVENANT_WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py --port 8080

It prints one line per event, and each rejected delivery's reason on standard error. Register its URL as the
endpoint's: a public `https://` address (put a TLS proxy in front of it), or an internal one the operator allows
(PROVENANT_WEBHOOK_ALLOWED_NETWORKS). The check is `core.crypto.webhook_signatures.verify`, the module the server
signs with: it refuses a body or headers changed on the way, a signature made with another secret, and a
timestamp more than five minutes from this machine's clock (a recorded delivery replayed later). To use it outside
the checkout, copy `core/crypto/webhook_signatures.py` beside your code (it needs only the standard library).

What a receiver in production does beyond this one:
- It remembers the ids it has handled durably, in the same transaction as the work an event causes. Provenant
  sends a delivery again, with the same `webhook-id` and a new timestamp, until it sees a 2xx: after a lost answer,
  on a re-send by hand, or when a worker died mid-delivery, for up to about three days by default
  (PROVENANT_WEBHOOK_RETRY_SCHEDULE). This one remembers the last REMEMBERED ids in memory only.
- It answers fast and does slow work afterwards (a queue): Provenant counts a delivery as failed when no answer
  comes within PROVENANT_WEBHOOK_TIMEOUT_SECONDS (15 s by default), and retries it.
- During a secret rotation Provenant signs with the old and the new secret at once, so it can switch to the new
  one at any moment of the overlap.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a script (`python examples/webhook_receiver.py`), Python puts examples/ on the path, not the folder
    # above it that holds core/crypto/webhook_signatures.py: put that folder first.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.crypto.webhook_signatures import (
    WebhookVerificationError,
    secret_key,
    verify,
)

SECRET_VARIABLE = "PROVENANT_WEBHOOK_SECRET"  # noqa: S105 (the variable's name, not a secret)
#: Provenant's bodies are a few kilobytes; anything far larger is not a delivery.
MAX_BODY_BYTES = 1 << 20
#: How many handled ids this example remembers (see the module's docstring for what a real receiver keeps).
REMEMBERED = 100_000


def print_event(event: dict) -> None:
    """The example's work: one line per event. Replace it with yours."""
    project = (event.get("project") or {}).get("slug", "-")
    print(f"{event.get('timestamp')} {event.get('type')} {event.get('id')} project={project}", flush=True)


class Receiver(ThreadingHTTPServer):
    """An HTTP server that hands each verified event, once per `webhook-id`, to `on_event`."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], *, secret: str, on_event: Callable[[dict], None] = print_event
    ) -> None:
        secret_key(secret)  # a malformed secret fails now, at start, not at the first delivery
        self.secret = secret
        self.on_event = on_event
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        super().__init__(address, DeliveryHandler)

    def handle_once(self, msg_id: str, event: dict) -> bool:
        """Hand `event` to `on_event` unless its id was handled before; whether it was handled now.

        The id is remembered only once `on_event` returned: if it raises, the delivery is answered 500 and
        Provenant's retry gets another chance. One event at a time, so a retry crossing a slow first delivery
        waits for it and then finds its id handled.
        """
        with self._lock:
            if msg_id in self._handled:
                self._handled.move_to_end(msg_id)
                return False
            self.on_event(event)
            self._handled[msg_id] = None
            if len(self._handled) > REMEMBERED:
                self._handled.popitem(last=False)
            return True


class DeliveryHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            self._answer(411, "A delivery states its Content-Length.")
            return
        if not 0 <= length <= MAX_BODY_BYTES:
            self._answer(413, f"A delivery is at most {MAX_BODY_BYTES} bytes.")
            return
        body = self.rfile.read(length)  # the raw bytes, as signed: verify them before parsing anything
        try:
            verify(self.server.secret, dict(self.headers.items()), body)
        except WebhookVerificationError as error:
            print(f"rejected a delivery from {self.client_address[0]}: {error}", file=sys.stderr, flush=True)
            self._answer(400, str(error))
            return
        try:
            event = json.loads(body)
        except ValueError:
            self._answer(400, "The body is not JSON.")
            return
        try:
            handled = self.server.handle_once(self.headers["webhook-id"], event)
        except Exception as error:  # whatever the work failed on: answer 500, so that Provenant retries
            print(f"failed to handle {self.headers['webhook-id']}: {error!r}", file=sys.stderr, flush=True)
            self._answer(500, "The event could not be handled; send it again.")
            return
        self._answer(204 if handled else 200, "" if handled else "Already handled.")

    def _answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="the port to listen on; 0 for any free one")
    args = parser.parse_args(argv)
    secret = os.environ.get(SECRET_VARIABLE, "")
    try:
        server = Receiver((args.host, args.port), secret=secret)
    except ValueError as error:
        print(f"error: {SECRET_VARIABLE}: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 2
    with server:
        host, port = server.server_address[:2]
        print(f"Listening on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
