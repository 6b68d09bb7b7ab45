"""Run by bgemu.userdata inside an instance (its network and mount namespaces): cloud-init's part for a user-data
script, with a stand-in instance metadata service (IMDSv2) while it runs.

userdata_helper.py METADATA_JSON        the script on stdin

- IMDSv2 on 169.254.169.254:80 (the address is on the instance's ``lo``): ``PUT /latest/api/token`` with
  ``X-aws-ec2-metadata-token-ttl-seconds`` gives a token, every ``GET`` needs it (401 otherwise, as with
  ``HttpTokens: required``); ``/latest/meta-data/<key>`` answers the keys of METADATA_JSON (``instance-id``,
  ``local-ipv4``, ``placement/region``, ``placement/availability-zone``), anything else 404.
- The script is written to ``/var/lib/cloud/instance/scripts/part-001`` and run once as root by ``/bin/bash``; its
  output goes to ``/var/log/cloud-init-output.log``, as cloud-init does.  The metadata service stops with it.
"""

import http.server
import json
import os
import secrets
import subprocess
import sys
import threading

SCRIPT = "/var/lib/cloud/instance/scripts/part-001"
LOG = "/var/log/cloud-init-output.log"


def serve(metadata):
    tokens = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *unused):
            pass

        def answer(self, status, body=b""):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self):  # noqa: N802 - http.server's name
            if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self.answer(400)
            token = secrets.token_urlsafe(32)
            tokens.add(token)
            return self.answer(200, token.encode())

        def do_GET(self):  # noqa: N802 - http.server's name
            if self.headers.get("X-aws-ec2-metadata-token") not in tokens:
                return self.answer(401)
            key = self.path.removeprefix("/latest/meta-data/")
            if key == self.path or key not in metadata:
                return self.answer(404)
            return self.answer(200, str(metadata[key]).encode())

    server = http.server.ThreadingHTTPServer(("169.254.169.254", 80), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv):
    metadata = json.loads(argv[1])
    script = sys.stdin.read()
    os.makedirs(os.path.dirname(SCRIPT), exist_ok=True)
    with open(SCRIPT, "w") as f:
        f.write(script)
    os.chmod(SCRIPT, 0o700)
    server = serve(metadata)
    os.makedirs(os.path.dirname(LOG), exist_ok=True)
    try:
        with open(LOG, "ab") as log:
            code = subprocess.run(
                ["/bin/bash", SCRIPT], stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/", check=False
            ).returncode
            log.write(f"[bgemu] user-data exited {code}\n".encode())
    finally:
        server.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
