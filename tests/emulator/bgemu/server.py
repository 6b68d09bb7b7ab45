"""The emulator's WSGI app: moto's, wrapped with call counting, fault injection and an admin API.

Admin API (JSON, loopback):
  GET    /_bgemu/status        {"moto": version, "time_scale": f}
  GET    /_bgemu/calls         {"autoscaling.CompleteLifecycleAction": n, ...}
  DELETE /_bgemu/calls         reset the counts
  POST   /_bgemu/faults        {"operation": "CompleteLifecycleAction", "code": "Throttling", "status": 400,
                                "rate": 1.0, "count": 2, "latency_ms": 0}  (count: how many, null: no limit)
  DELETE /_bgemu/faults        remove every fault
  POST   /_bgemu/endpoints     {"instance_id": "i-…", "endpoint": "127.0.0.1:8081"}  where the instance answers
  GET    /_bgemu/instances     {"i-…": {"address": "10.231.0.2", "netns": "bgemu0-i-…", "link": "bge0h0"}}  the
                               running instances (link: the host end of its veth pair)
  POST   /_bgemu/exec          {"instance_id", "command": ["cat", "/etc/app/app.env"], "timeout": 30}  run a command
                               inside the instance: {"returncode", "stdout", "stderr"}
  POST   /_bgemu/install       {"instance_id", "bucket", "key", "version", "eTag"}  the agent runs the revision's
                               in-place events there (ApplicationStop … ValidateService): [{"event", "status",
                               "diagnostics"}]; on success it is the instance's last successful revision
  POST   /_bgemu/hook-faults   {"event": "AfterInstall", "key": null, "count": null, "message": "…"}  that event's
                               scripts fail (the agent runs a failing command in their place); DELETE removes them
  POST   /_bgemu/health        {"instance_id": "i-…", "healthy": false}  force its health (null: probe again)
  GET    /_bgemu/listeners     [{"listener_arn", "dns_name", "local_port", "url", ...}]  the HAProxy serving each
                               ELBv2 listener (bgemu.dataplane), once it has every change made so far
  GET    /_bgemu/lifecycle-actions  pending lifecycle actions with their tokens (AWS sends them in notifications)
  POST   /_bgemu/time-scale    {"scale": 0.01}
  POST   /_bgemu/reset         moto's state, counts, faults, time scale 1
"""

import io
import json
import random
import re
import subprocess
import threading
import time
import traceback
import urllib.parse

import moto
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.moto_server.werkzeug_app import create_backend_app

from bgemu import agent
from bgemu import codedeploy
from bgemu import dataplane
from bgemu import instances
from bgemu import lifecycle
from bgemu import targethealth
from bgemu.clock import CLOCK

CREDENTIAL = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


class Emulator:
    def __init__(self):
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.calls = {}
        self.faults = []
        self.lock = threading.Lock()

    # -- request classification -----------------------------------------------------------------------
    @staticmethod
    def operation(environ, body):
        target = environ.get("HTTP_X_AMZ_TARGET")
        match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = match.group(1) if match else "unknown"
        if target:
            return service, target.rsplit(".", 1)[-1], "json"
        params = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        if body and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
            params.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
        action = params.get("Action", [None])[0]
        return service, action, "query"

    # -- faults ---------------------------------------------------------------------------------------
    def fault_for(self, operation):
        with self.lock:
            for fault in self.faults:
                if fault["operation"] != operation or fault.get("count") == 0:
                    continue
                if random.random() >= fault.get("rate", 1.0):
                    return None
                if fault.get("count") is not None:
                    fault["count"] -= 1
                return dict(fault)
        return None

    @staticmethod
    def error_response(start_response, fault, protocol):
        code, status = fault.get("code", "Throttling"), int(fault.get("status", 400))
        message = fault.get("message", "Rate exceeded (injected by the emulator)")
        if protocol == "json":
            body = json.dumps({"__type": code, "message": message}).encode()
            content_type = "application/x-amz-json-1.1"
        else:
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                "<RequestId>bgemu-fault</RequestId></ErrorResponse>"
            ).encode()
            content_type = "text/xml"
        start_response(f"{status} Injected", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    # -- admin ----------------------------------------------------------------------------------------
    def admin(self, environ, start_response, body):
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD")
        data = json.loads(body or b"{}")
        answer, status = None, "200 OK"
        if path == "/_bgemu/status":
            answer = {"moto": moto.__version__, "time_scale": CLOCK.scale}
        elif path == "/_bgemu/calls":
            with self.lock:
                if method == "DELETE":
                    self.calls.clear()
                answer = dict(self.calls)
        elif path == "/_bgemu/faults":
            with self.lock:
                if method == "DELETE":
                    self.faults.clear()
                elif method == "POST":
                    if not data.get("operation"):
                        answer, status = {"error": "operation is required"}, "400 Bad Request"
                    else:
                        self.faults.append(data)
                answer = answer or {"faults": list(self.faults)}
        elif path == "/_bgemu/lifecycle-actions":
            # What AWS would send in the hook's notification (the token), which moto has nowhere to send.
            answer = [
                {
                    "AutoScalingGroupName": a.group.name,
                    "LifecycleHookName": a.hook.name,
                    "InstanceId": a.state.instance.id,
                    "LifecycleActionToken": a.token,
                    "LifecycleTransition": a.hook.lifecycle_transition,
                }
                for backend in lifecycle.all_backends()
                for a in getattr(backend, "bgemu_actions", [])
            ]
        elif path == "/_bgemu/endpoints" and method == "POST":
            targethealth.ENDPOINTS[data["instance_id"]] = data["endpoint"]
            dataplane.DATAPLANE.changed(wait=True)  # a target's address may have changed
            answer = dict(targethealth.ENDPOINTS)
        elif path == "/_bgemu/listeners":
            answer = dataplane.listeners()
        elif path == "/_bgemu/instances":
            with instances.LOCK:
                answer = {
                    i: {"address": m.ip, "netns": m.netns, "link": m.host_if} for i, m in instances.INSTANCES.items()
                }
        elif path == "/_bgemu/exec" and method == "POST":
            answer, status = self.exec_in(data)
        elif path == "/_bgemu/install" and method == "POST":
            if instances.get(data.get("instance_id", "")) is None:
                answer, status = {"error": f"no running instance {data.get('instance_id')}"}, "404 Not Found"
            else:
                location = {k: data[k] for k in ("bucket", "key", "version", "eTag") if data.get(k)}
                revision = {"revisionType": "S3", "s3Location": dict(location, bundleType="zip")}
                account = data.get("account", "123456789012")
                answer = agent.install_revision(data["instance_id"], revision, account)
        elif path == "/_bgemu/hook-faults":
            if method == "DELETE":
                agent.reset_faults()
                answer = []
            elif method == "POST":
                answer = agent.add_fault(data)
        elif path == "/_bgemu/health" and method == "POST":
            if data.get("healthy") is None:
                targethealth.FORCED.pop(data["instance_id"], None)
            else:
                targethealth.FORCED[data["instance_id"]] = bool(data["healthy"])
            answer = dict(targethealth.FORCED)
        elif path == "/_bgemu/time-scale" and method == "POST":
            CLOCK.scale = float(data["scale"])
            answer = {"time_scale": CLOCK.scale}
        elif path == "/_bgemu/reset" and method == "POST":
            from moto.moto_api import _internal

            instances.reset()
            _internal.moto_api_backend.reset()
            targethealth.reset()
            codedeploy.reset()
            dataplane.reset()
            with self.lock:
                self.calls.clear()
                self.faults.clear()
            CLOCK.scale = 1.0
            answer = {"reset": True}
        else:
            answer, status = {"error": f"no admin endpoint {method} {path}"}, "404 Not Found"
        payload = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    @staticmethod
    def exec_in(data):
        if instances.get(data.get("instance_id", "")) is None:
            return {"error": f"no running instance {data.get('instance_id')}"}, "404 Not Found"
        try:
            proc = instances.run(
                data["instance_id"],
                list(data["command"]),
                capture_output=True,
                text=True,
                timeout=float(data.get("timeout", 30)),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"{data['command']} did not finish in {data.get('timeout', 30)} s"}, "504 Timeout"
        return {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}, "200 OK"

    # -- WSGI -----------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if environ.get("PATH_INFO", "").startswith("/_bgemu/"):
            return self.admin(environ, start_response, body)
        service, operation, protocol = self.operation(environ, body)
        if operation:
            key = f"{service}.{operation}"
            with self.lock:
                self.calls[key] = self.calls.get(key, 0) + 1
            fault = self.fault_for(operation)
            if fault:
                if fault.get("latency_ms"):
                    time.sleep(fault["latency_ms"] / 1000.0)
                if fault.get("code"):
                    return self.error_response(start_response, fault, protocol)
        return self.moto(environ, start_response)


def ticker(stop, interval=0.05):
    """Advance what AWS does on its own: lifecycle hook timeouts, target health checks, deployments.

    An error in one of them is printed and the ticker goes on: a dead ticker would freeze the emulator.
    """
    while not stop.wait(interval):
        for step in (lambda: lifecycle.expire(lifecycle.all_backends()), targethealth.tick, codedeploy.advance):
            try:
                step()
            except Exception:  # noqa: BLE001
                traceback.print_exc()
