"""A webhook receiver that verifies Herald's signatures with the official `standardwebhooks`
package: 204 for a verified delivery (printing its event type), 401 for anything else.

    HERALD_WEBHOOK_SECRET=whsec_... .venv/bin/python examples/receivers/python/receiver.py 8000
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["HERALD_WEBHOOK_SECRET"])


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            # Needs webhook-id, webhook-timestamp within 5 minutes of now, and any matching
            # v1 signature in webhook-signature; returns the parsed JSON body.
            event = webhook.verify(body, dict(self.headers))
        except (WebhookVerificationError, ValueError) as error:
            print(f"rejected: {error}", file=sys.stderr, flush=True)
            self.send_response(401)
        else:
            print(event.get("type"), flush=True)
            self.send_response(204)
        self.end_headers()

    def log_message(self, format, *args):
        pass  # print event types only


port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", 8000))
server = HTTPServer(("127.0.0.1", port), Receiver)
print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
server.serve_forever()
