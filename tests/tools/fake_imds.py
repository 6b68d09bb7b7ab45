"""IMDSv2 on loopback for tests: a token by PUT, then metadata only with that token (401 without, as with
http_tokens=required).  Account 210987654321, region ap-northeast-2.

    python3 fake_imds.py PORT      serve in the foreground (molecule uses it inside a container)
"""

import http.server
import json
import sys

TOKEN = "token-123"
PATHS = {
    "/latest/dynamic/instance-identity/document": json.dumps(
        {"accountId": "210987654321", "region": "ap-northeast-2", "instanceId": "i-0123456789abcdef0"}, indent=2
    ),
    "/latest/meta-data/placement/region": "ap-northeast-2",
}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(200, TOKEN)
        return self.reply(400, "")

    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            return self.reply(401, "")
        if self.path in PATHS:
            return self.reply(200, PATHS[self.path])
        return self.reply(404, "")

    def reply(self, status, body):
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def serve(port):
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)


if __name__ == "__main__":
    serve(int(sys.argv[1])).serve_forever()
