"""A loopback stand-in for the AWX REST API (/api/v2), just what the awx.awx modules of awx/configure.yml call.

AWX itself cannot run on this machine. This keeps objects in memory the way AWX returns them (id, type, url, related
links, list views with count/results, name and field filters, ``or__id``/``or__name`` lookups), survey specs,
associations (credentials, notification templates, workflow node edges), approval templates created from a node, and
secret credential inputs returned as ``$encrypted$``. Every request is recorded (method, path, query, body).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

PREFIX = "/api/v2/"
ASSOCIATIONS = {
    "success_nodes": "workflow_job_template_nodes",
    "failure_nodes": "workflow_job_template_nodes",
    "always_nodes": "workflow_job_template_nodes",
    "credentials": "credentials",
    "labels": "labels",
    "instance_groups": "instance_groups",
    "notification_templates_started": "notification_templates",
    "notification_templates_success": "notification_templates",
    "notification_templates_error": "notification_templates",
    "notification_templates_approvals": "notification_templates",
}
UNIFIED = ("job_templates", "workflow_job_templates", "workflow_approval_templates", "projects")
SINGULAR = {"inventories": "inventory", "workflow_job_template_nodes": "workflow_job_template_node"}


class FakeAWX:
    def __init__(self, username="admin", password="", token=""):
        self.username, self.password, self.token = username, password, token
        self.objects = {}  # endpoint -> {id: object}
        self.surveys = {}  # (endpoint, id) -> spec
        self.links = {}  # (endpoint, id, association) -> [ids]
        self.requests = []
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self._create("organizations", {"name": "Default"})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- store ---------------------------------------------------------------------------------------------------
    def _create(self, endpoint, fields):
        oid = next(self.ids)
        obj = dict(fields, id=oid, type=SINGULAR.get(endpoint, endpoint.rstrip("s")), url=f"{PREFIX}{endpoint}/{oid}/")
        self.objects.setdefault(endpoint, {})[oid] = obj
        return obj

    def _view(self, endpoint, obj):
        view = dict(obj)
        view["related"] = {name: f"{obj['url']}{name}/" for name in ASSOCIATIONS}
        view["related"]["survey_spec"] = f"{obj['url']}survey_spec/"
        if endpoint == "workflow_job_template_nodes" and obj.get("unified_job_template"):
            ujt = self.find(obj["unified_job_template"])
            view["related"]["unified_job_template"] = ujt["url"] if ujt else None
        if endpoint == "credentials":
            ctype = self.objects.get("credential_types", {}).get(obj.get("credential_type"), {})
            secret = {f["id"] for f in (ctype.get("inputs") or {}).get("fields", []) if f.get("secret")}
            view["inputs"] = {
                k: "$encrypted$" if k in secret and v else v for k, v in (obj.get("inputs") or {}).items()
            }
        view.setdefault("summary_fields", {})
        return view

    def find(self, oid):
        for endpoint in self.objects:
            if oid in self.objects[endpoint]:
                return self.objects[endpoint][oid]
        return None

    def named(self, endpoint, name, field="name"):
        found = [o for o in self.objects.get(endpoint, {}).values() if o.get(field) == name]
        assert len(found) == 1, (endpoint, name, found)
        return found[0]

    def linked(self, endpoint, oid, association):
        return self.links.get((endpoint, oid, association), [])

    def survey(self, endpoint, oid):
        return self.surveys.get((endpoint, oid))

    def writes(self):
        return [
            r for r in self.requests if r["method"] in ("POST", "PATCH", "PUT", "DELETE") and "tokens" not in r["path"]
        ]

    @staticmethod
    def _matches(obj, query):
        ors = {k[4:]: v for k, v in query.items() if k.startswith("or__")}
        if ors and not any(str(obj.get(k)) == v for k, v in ors.items()):
            return False
        for key, value in query.items():
            if key.startswith("or__") or key in ("page", "page_size", "order_by"):
                continue
            if str(obj.get(key)) != value:
                return False
        return True

    # -- HTTP ----------------------------------------------------------------------------------------------------
    def handle(self, method, path, query, body, auth):
        self.requests.append(dict(method=method, path=path, query=query, body=body))
        if not self._authorised(auth, path, method):
            return 401, {"detail": "Authentication credentials were not provided."}
        if not path.startswith(PREFIX):
            return 404, {"detail": "not found"}
        parts = [p for p in path[len(PREFIX) :].split("/") if p]
        with self.lock:
            return self._route(method, parts, query, body)

    def _authorised(self, auth, path, method):
        if auth.startswith("Basic "):
            user, unused, password = base64.b64decode(auth[6:]).decode().partition(":")
            return user == self.username and password == self.password
        if auth.startswith("Bearer "):
            return auth[7:] in (self.token, "fake-session-token")
        return False

    def _route(self, method, parts, query, body):
        if parts in (["ping"], ["config"], ["me"]):
            return 200, {"version": "24.6.1", "results": [{"username": self.username}]}
        if parts[0] == "tokens":
            return (201, {"id": 1, "token": "fake-session-token"}) if method == "POST" else (204, None)
        endpoint = parts[0]
        if len(parts) == 1:
            if method == "GET":
                pool = UNIFIED if endpoint == "unified_job_templates" else (endpoint,)
                found = [
                    self._view(e, o) for e in pool for o in self.objects.get(e, {}).values() if self._matches(o, query)
                ]
                return 200, {"count": len(found), "next": None, "previous": None, "results": found}
            if method == "POST":
                return 201, self._view(endpoint, self._create(endpoint, body))
        oid = int(parts[1])
        obj = self.objects.get(endpoint, {}).get(oid)
        if obj is None:
            return 404, {"detail": "Not found."}
        if len(parts) == 2:
            if method == "GET":
                return 200, self._view(endpoint, obj)
            if method in ("PATCH", "PUT"):
                obj.update(body)
                return 200, self._view(endpoint, obj)
            if method == "DELETE":
                del self.objects[endpoint][oid]
                return 204, None
        sub = parts[2]
        if sub == "survey_spec":
            if method == "GET":
                return 200, self.surveys.get((endpoint, oid), {})
            if method == "POST":
                self.surveys[(endpoint, oid)] = body
                return 200, {}
            self.surveys.pop((endpoint, oid), None)
            return 204, None
        if sub == "create_approval_template" and method == "POST":
            approval = self._create("workflow_approval_templates", dict(body, type="workflow_approval_template"))
            obj["unified_job_template"] = approval["id"]
            return 201, self._view("workflow_approval_templates", approval)
        if sub in ASSOCIATIONS:
            key = (endpoint, oid, sub)
            if method == "GET":
                found = [self._view(ASSOCIATIONS[sub], self.find(i)) for i in self.links.get(key, [])]
                return 200, {"count": len(found), "next": None, "previous": None, "results": found}
            ids = self.links.setdefault(key, [])
            if body.get("disassociate"):
                ids.remove(body["id"])
            elif body["id"] not in ids:
                ids.append(body["id"])
            return 204, None
        return 404, {"detail": f"no {sub} here"}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else {}
                status, answer = fake.handle(
                    self.command, split.path, dict(parse_qsl(split.query)), body, self.headers.get("Authorization", "")
                )
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-API-Product-Name", "AWX")
                self.send_header("X-API-Product-Version", "24.6.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
