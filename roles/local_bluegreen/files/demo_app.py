"""bluegreen.aws demo app: one version of a service, with a switch to make it fail.

Endpoints: ``/`` and ``/version`` (the version), ``/health`` and ``/health/deep``.
Failing on purpose: ``--fail`` (unhealthy from the start), ``--fail-after SECONDS`` (healthy, then
unhealthy and every request answered 500), or a file ``<state-dir>/fail`` present at request time.
"""

import argparse
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--version", default="v1")
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--fail-after", type=float, default=None)
    parser.add_argument("--state-dir", default=None)
    args = parser.parse_args(argv)
    started = time.monotonic()

    def failing():
        if args.fail:
            return True
        if args.fail_after is not None and time.monotonic() - started >= args.fail_after:
            return True
        return bool(args.state_dir) and os.path.exists(os.path.join(args.state_dir, "fail"))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real service behind a proxy
        disable_nagle_algorithm = True  # headers and body go out without waiting for a delayed ACK

        def do_GET(self):
            bad = failing()
            if self.path in ("/health", "/health/deep"):
                status, body = (503, {"status": "DOWN"}) if bad else (200, {"status": "UP", "version": args.version})
            elif self.path in ("/", "/version"):
                status, body = (
                    (500, {"error": "broken", "version": args.version}) if bad else (200, {"version": args.version})
                )
            else:
                status, body = 404, {"error": "not found"}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

        def handle_error(self, request, client_address):
            if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
                super().handle_error(request, client_address)  # a client going away is not an error

    server = Server((args.host, args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
