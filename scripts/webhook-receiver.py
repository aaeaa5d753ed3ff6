#!/usr/bin/env python3
"""A webhook receiver for trying cashout locally: prints every delivery and verifies its
Standard Webhooks signature with the official library (pip install standardwebhooks).

    python3 scripts/webhook-receiver.py --port 9000 --secret whsec_...

Answers 200 to verified deliveries and 401 to others. --fail-rate 30 answers 500 to that
percentage of deliveries, to watch retries.
"""
import argparse
import json
import random
from http.server import BaseHTTPRequestHandler, HTTPServer

try:
    from standardwebhooks.webhooks import Webhook
except ImportError:  # pragma: no cover
    raise SystemExit("pip install standardwebhooks  (the official Standard Webhooks library)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", required=True, help="the whsec_... shown when the endpoint was created")
    parser.add_argument("--fail-rate", type=int, default=0, help="percentage of deliveries answered 500")
    args = parser.parse_args()
    verifier = Webhook(args.secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                event = verifier.verify(body, headers)
            except Exception as e:  # the library raises WebhookVerificationError
                print(f"REFUSED {headers.get('webhook-id')}: {e}", flush=True)
                self.send_response(401)
                self.end_headers()
                return
            if random.randrange(100) < args.fail_rate:
                print(f"failing {headers['webhook-id']} on purpose", flush=True)
                self.send_response(500)
                self.end_headers()
                return
            print(f"{headers['webhook-id']}  {json.dumps(event, sort_keys=True)}", flush=True)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: object) -> None:
            pass

    print(f"receiving on http://127.0.0.1:{args.port}/", flush=True)
    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
