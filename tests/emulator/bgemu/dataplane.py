"""The ALB data plane: every emulated ELBv2 listener is served by a real HAProxy on a loopback port.

One HAProxy process per listener (at most ``MAX_LISTENERS``), started when the listener appears and
stopped when it goes (DeleteListener, DeleteLoadBalancer, ``POST /_bgemu/reset``, the emulator's exit).
The configuration is written once; everything that follows the ELBv2 model afterwards goes through
HAProxy's runtime API, never a reload:

* rules: the frontend builds the key ``METHOD:host/path`` for each request and looks it up in a regex
  map (``prepare map`` / ``add map @ver`` / ``commit map``: one atomic swap) whose entries are the
  listener's rules in priority order; the value names the rule's backend.  Conditions modelled:
  ``path-pattern``, ``host-header``, ``http-request-method``; a rule with another condition never
  matches (``GET /_bgemu/listeners`` lists it under ``unmodelled``).
* actions: the default action and each rule's terminal action get a backend of ``SERVER_SLOTS``
  pre-allocated server slots (``server-template``).  ``forward`` (one target group or ``ForwardConfig``
  weights) fills the slots with ``set server ... addr/port/weight/state``; another action type answers
  501 (not modelled).
* weights: a request first picks a target group by its weight, then a target of that group, as an ALB
  does: each routable target's HAProxy weight is proportional to ``group weight / routable targets``
  (scaled to HAProxy's 1-256).  A group with nothing routable keeps its share and answers 503 (a slot
  pointing at a reserved loopback port where nothing listens).
* health: the routable targets of a group are its ``healthy`` ones (the emulator's target health,
  ``bgemu.targethealth``); if it has none, its ``unhealthy`` ones (ALB fails open); ``initial`` targets
  get nothing.  A target that is registered but not routable, or deregistered and still ``draining``,
  is in HAProxy's ``drain`` state: in-flight requests finish, new ones go elsewhere.  When the
  deregistration delay is over the slot goes to ``maint`` and its remaining connections are shut.
* addresses: ``bgemu.targethealth.endpoint(group, target_id)``, the same resolver the health checks use;
  a target without one gets the reserved port where nothing listens (connection refused: 503).

Changes reach HAProxy from hooks, never from a polling loop: the ELBv2 API calls that change listeners,
rules or targets (they return once HAProxy has the change) and the target health ticker (when a state
changes) wake one worker thread, which compares the model with what it last applied and sends the
difference.
"""

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import traceback

from moto.elbv2 import models

from bgemu import targethealth

MAX_LISTENERS = 16  # HAProxy processes at most; a listener beyond this is listed as not served
RULE_SLOTS = 20  # rules per listener with their own backend (AWS allows 100; more are listed as not served)
SERVER_SLOTS = 32  # targets per action (all of its target groups together, draining ones included)
HAPROXY_MAX_WEIGHT = 256
APPLY_TIMEOUT = 5.0  # an API call waits at most this long for HAProxy to have its change

CONFIG = """\
global
    stats socket {sock} mode 600 level admin
    maxconn 4096
    hard-stop-after 2s

defaults
    mode http
    option forwardfor
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 60s
    retries 0

frontend listener
    bind 127.0.0.1:{port}
    http-request set-var-fmt(txn.bgkey) "%[method]:%[req.hdr(host),field(1,:),lower]%[path]"
    http-request set-var(txn.bgrule) var(txn.bgkey),map_reg({map},default)
    use_backend %[var(txn.bgrule)]
    default_backend default

backend unmodelled
    http-request return status 501 content-type text/plain string "bgemu: this action type is not modelled"
{backends}"""

BACKEND = """
backend {name}
    balance roundrobin
    server-template s 1-{slots} 127.0.0.1:{dead} disabled weight 1
"""


def _die_with_parent():
    """In the child before exec: HAProxy gets SIGTERM when the emulator dies, even by SIGKILL."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def haproxy_binary():
    path = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(path):
        raise RuntimeError("haproxy is not installed: run `make deps` (it installs the apt package)")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- ELBv2 rules as regexes over "METHOD:host/path" ---------------------------------------------------------
def _wildcard(pattern, any_char):
    """An ALB wildcard pattern (``*``, ``?``) as a regex without backslashes (the CLI would eat them)."""
    out = []
    for c in pattern:
        if c == "*":
            out.append(any_char + "*")
        elif c == "?":
            out.append(any_char)
        elif c.isalnum() or c in "/-_~%:@&'\",=":
            out.append(c)
        else:
            out.append(f"[{c}]")
    return "".join(out)


def _values(condition, config_key):
    return list((condition.get(config_key) or {}).get("Values") or condition.get("Values") or [])


def rule_regex(conditions):
    """(regex, None) for the conditions this data plane models, or (None, reason) when it cannot."""
    method, host, path = "[A-Z]*", "[^/]*", "/.*"
    for condition in conditions:
        field = condition.get("Field")
        if field == "path-pattern":
            values = _values(condition, "PathPatternConfig")
            path = "(" + "|".join(_wildcard(v, ".") for v in values) + ")"
        elif field == "host-header":
            values = _values(condition, "HostHeaderConfig")
            host = "(" + "|".join(_wildcard(v.lower(), "[^/]") for v in values) + ")"
        elif field == "http-request-method":
            values = _values(condition, "HttpRequestMethodConfig")
            method = "(" + "|".join(_wildcard(v.upper(), "[A-Z]") for v in values) + ")"
        else:
            return None, f"condition {field} is not modelled"
    return f"^{method}:{host}{path}$", None


# -- what HAProxy should do, from the model --------------------------------------------------------------
def _forward_groups(actions):
    """[(target group arn, weight)] of the terminal action, or None when it is not a forward."""
    if not actions:
        return None
    action = actions[-1]
    data = getattr(action, "data", action)
    if data.get("Type") != "forward":
        return None
    config = data.get("ForwardConfig") or {}
    if config.get("TargetGroups"):
        return [(g["TargetGroupArn"], int(g.get("Weight", 1))) for g in config["TargetGroups"]]
    return [(data["TargetGroupArn"], 1)]


def desired_servers(backend, groups, dead):
    """{key: (host, port, weight, state)} for one forward action; state is ready or drain."""
    with targethealth.LOCK:
        checks = dict(targethealth.STATES)
    total = sum(w for unused_arn, w in groups if w > 0)
    servers, shares = {}, {}
    for arn, weight in groups:
        group = backend.target_groups.get(arn)
        if group is None:
            continue
        registered = dict(group.targets)
        state = {tid: getattr(checks.get((arn, tid)), "state", "initial") for tid in registered}
        healthy = [tid for tid in registered if state[tid] == "healthy"]
        routable = healthy or [tid for tid in registered if state[tid] == "unhealthy"]  # ALB fails open
        share = weight / total if total and weight > 0 else 0.0
        for tid in registered:
            address = targethealth.endpoint(group, tid)
            host, unused, port = (address or f"127.0.0.1:{dead}").rpartition(":")
            key = (arn, tid)  # the same key while it drains: its slot, and its in-flight requests, stay
            servers[key] = [host, int(port), 0, "drain"]
            if tid in routable and share:
                shares[key] = share / len(routable)
        for (check_arn, tid), check in checks.items():
            if check_arn == arn and check.draining_until is not None and tid not in registered:
                address = targethealth.endpoint(group, tid)
                host, unused, port = (address or f"127.0.0.1:{dead}").rpartition(":")
                servers[(arn, tid)] = [host, int(port), 0, "drain"]
        if share and not routable:  # the group keeps its share, and nobody can answer it: 503
            key = (arn, None)
            servers[key] = ["127.0.0.1", dead, 0, "drain"]
            shares[key] = share
    top = max(shares.values(), default=0)
    for key, share in shares.items():
        servers[key][2] = max(1, round(HAPROXY_MAX_WEIGHT * share / top))
        servers[key][3] = "ready"
    return {key: tuple(value) for key, value in servers.items()}


class ListenerProxy:
    """One HAProxy serving one listener."""

    def __init__(self, arn, dead):
        self.arn = arn
        self.dead = dead
        self.dir = tempfile.mkdtemp(prefix="bgemu-alb-")
        self.sock = os.path.join(self.dir, "admin.sock")
        self.map = os.path.join(self.dir, "rules.map")
        self.port = free_port()
        self.backends = ["default"] + [f"r{i}" for i in range(1, RULE_SLOTS + 1)]
        self.rule_slots = {}  # rule arn -> backend name
        self.slots = {b: {} for b in self.backends}  # backend -> {key: slot number}
        self.applied = {b: {} for b in self.backends}  # backend -> {slot: (host, port, weight, state)}
        self.applied_map = None
        self.report = {}
        open(self.map, "w").close()
        backends = "".join(BACKEND.format(name=b, slots=SERVER_SLOTS, dead=dead) for b in self.backends)
        with open(os.path.join(self.dir, "haproxy.cfg"), "w") as f:
            f.write(CONFIG.format(sock=self.sock, port=self.port, map=self.map, backends=backends))
        self.log = open(os.path.join(self.dir, "haproxy.log"), "wb")
        self.proc = subprocess.Popen(
            [haproxy_binary(), "-db", "-f", os.path.join(self.dir, "haproxy.cfg")],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 5
        while True:
            try:
                self.command("show info")
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"haproxy for {arn} did not start: see {self.dir}/haproxy.log") from None
                time.sleep(0.02)

    def command(self, *commands):
        """Send commands on one connection (prompt mode); returns the output."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.sock)
            s.sendall(("prompt\n" + "\n".join(commands) + "\nquit\n").encode())
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.reap()

    def reap(self):
        if self.proc.poll() is None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- following the model ---------------------------------------------------------------------------
    def apply(self, backend, load_balancer, listener):
        rules = sorted(
            (r for r in listener.rules.values() if not r.is_default), key=lambda r: int(r.priority)
        )  # AWS evaluates rules by priority, the default last
        for arn in [a for a in self.rule_slots if a not in {r.arn for r in rules}]:
            self.release(self.rule_slots.pop(arn))
        free = [b for b in self.backends[1:] if b not in self.rule_slots.values()]
        entries, unmodelled, actions = [], [], {"default": listener.default_actions}
        for rule in rules:
            regex, reason = rule_regex(rule.conditions)
            if regex is None:
                unmodelled.append({"rule": rule.arn, "reason": reason})
                continue
            if rule.arn not in self.rule_slots:
                if not free:
                    unmodelled.append({"rule": rule.arn, "reason": f"more than {RULE_SLOTS} rules"})
                    continue
                self.rule_slots[rule.arn] = free.pop(0)
            name = self.rule_slots[rule.arn]
            actions[name] = rule.actions
            entries.append((regex, name if _forward_groups(rule.actions) is not None else "unmodelled"))
        commands, forwards = [], {}
        for name, acts in actions.items():
            groups = _forward_groups(acts)
            forwards[name] = [{"target_group": arn, "weight": weight} for arn, weight in groups or []]
            if groups is None:
                self.release(name)
                continue
            commands += self.servers(name, desired_servers(backend, groups, self.dead), unmodelled)
        if commands:
            self.command(*commands)
        if entries != self.applied_map:
            out = self.command(f"prepare map {self.map}")
            version = out.split("New version created:")[1].split()[0]
            adds = [f"add map @{version} {self.map} {regex} {value}" for regex, value in entries]
            self.command(*adds, f"commit map @{version} {self.map}")
            self.applied_map = entries
        self.report = {
            "listener_arn": self.arn,
            "load_balancer_arn": load_balancer.arn,
            "load_balancer_name": load_balancer.name,
            "dns_name": load_balancer.dns_name,
            "protocol": listener.protocol,
            "port": int(listener.port),
            "local_port": self.port,
            "url": f"http://127.0.0.1:{self.port}",
            "pid": self.proc.pid,
            "rules": [{"regex": regex, "backend": value} for regex, value in entries],
            "forwards": forwards,
            "backends": self.describe(),
            "unmodelled": unmodelled,
        }

    def servers(self, name, wanted, unmodelled):
        """Runtime API commands that make backend ``name`` serve ``wanted``."""
        slots, applied, commands = self.slots[name], self.applied[name], []
        for key in [k for k in slots if k not in wanted]:  # gone (deregistration delay over, group removed)
            slot = slots.pop(key)
            commands += [f"set server {name}/s{slot} state maint", f"shutdown sessions server {name}/s{slot}"]
            applied.pop(slot, None)
        used = set(slots.values())
        free = (n for n in range(1, SERVER_SLOTS + 1) if n not in used)
        for key, (host, port, weight, state) in sorted(wanted.items(), key=lambda kv: kv[1][3] != "ready"):
            if key not in slots:
                slot = next(free, None)
                if slot is None:
                    reason = f"more than {SERVER_SLOTS} targets"
                    unmodelled.append({"backend": name, "target": key[1], "reason": reason})
                    continue
                slots[key] = slot
            slot = slots[key]
            before = applied.get(slot, (None, None, None, None))
            server = f"{name}/s{slot}"
            if (host, port) != before[:2]:
                commands.append(f"set server {server} addr {host} port {port}")
            if weight and weight != before[2]:
                commands.append(f"set server {server} weight {weight}")
            if state != before[3]:
                commands.append(f"set server {server} state {state}")
            applied[slot] = (host, port, weight, state)
        return commands

    def release(self, name):
        """Every slot of a backend back to maint (its action is gone or no longer a forward)."""
        commands = []
        for slot in self.slots[name].values():
            commands += [f"set server {name}/s{slot} state maint", f"shutdown sessions server {name}/s{slot}"]
        self.slots[name].clear()
        self.applied[name].clear()
        if commands:
            self.command(*commands)

    def describe(self):
        found = {}
        for name, slots in self.slots.items():
            if not slots:
                continue
            found[name] = [
                {
                    "target_group": key[0],
                    "target": key[1],
                    "server": f"s{slot}",
                    "address": f"{self.applied[name][slot][0]}:{self.applied[name][slot][1]}",
                    "weight": self.applied[name][slot][2],
                    "state": self.applied[name][slot][3],
                }
                for key, slot in sorted(slots.items(), key=lambda kv: kv[1])
                if slot in self.applied[name]
            ]
        return found


class DataPlane:
    def __init__(self):
        self.cond = threading.Condition()
        self.requested = 0
        self.done = 0
        self.thread = None
        self.lock = threading.Lock()  # proxies
        self.proxies = {}  # listener arn -> ListenerProxy
        self.unserved = {}  # listener arn -> reason
        self.dead = None  # a bound, never listening socket: connections to its port are refused

    def serving(self):
        """Whether there is a listener to serve (or one served): without one a change needs no wait."""
        if self.proxies or self.unserved:
            return True
        try:
            for regions in list(models.elbv2_backends.values()):
                for backend in list(regions.values()):
                    if any(lb.listeners for lb in list(backend.load_balancers.values())):
                        return True
        except RuntimeError:  # changed while read: assume there is
            return True
        return False

    def changed(self, wait=False):
        """The model changed: wake the worker; with ``wait``, return once it applied this change."""
        if not self.serving():
            return
        with self.cond:
            if self.thread is None:
                self.thread = threading.Thread(target=self.run, name="bgemu-dataplane", daemon=True)
                self.thread.start()
            self.requested += 1
            wanted = self.requested
            self.cond.notify_all()
            if wait and threading.current_thread() is not self.thread:
                self.cond.wait_for(lambda: self.done >= wanted, timeout=APPLY_TIMEOUT)

    def run(self):
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.requested > self.done)
                wanted = self.requested
            for attempt in range(3):
                try:
                    self.sync()
                    break
                except RuntimeError as e:  # a model dict changed while we read it: read again
                    if "changed size" not in str(e) or attempt == 2:
                        traceback.print_exc()
                        break
                except Exception:  # noqa: BLE001  (a dead worker would freeze the data plane)
                    traceback.print_exc()
                    break
            with self.cond:
                self.done = wanted
                self.cond.notify_all()

    def sync(self):
        found = {}
        for regions in list(models.elbv2_backends.values()):
            for backend in list(regions.values()):
                for lb in list(backend.load_balancers.values()):
                    if lb.type != "application":
                        continue
                    for listener in list(lb.listeners.values()):
                        found[listener.arn] = (backend, lb, listener)
        with self.lock:
            for arn in [a for a in self.proxies if a not in found]:
                self.proxies.pop(arn).stop()
            for arn in [a for a in self.unserved if a not in found]:
                del self.unserved[arn]
            for arn, (backend, lb, listener) in found.items():
                if arn in self.proxies and self.proxies[arn].proc.poll() is not None:  # it died: a new one
                    self.proxies.pop(arn).stop()
                if arn not in self.proxies:
                    if len(self.proxies) >= MAX_LISTENERS:
                        self.unserved[arn] = f"more than {MAX_LISTENERS} listeners"
                        continue
                    if self.dead is None:
                        self.dead = socket.socket()
                        self.dead.bind(("127.0.0.1", 0))
                    try:
                        self.proxies[arn] = ListenerProxy(arn, self.dead.getsockname()[1])
                    except (OSError, RuntimeError) as e:  # haproxy missing or not starting: said, not retried
                        self.unserved[arn] = str(e)
                        continue
                    self.unserved.pop(arn, None)
                self.proxies[arn].apply(backend, lb, listener)

    def listeners(self):
        self.changed(wait=True)
        with self.lock:
            answer = [dict(p.report) for p in self.proxies.values() if p.report]
            answer += [{"listener_arn": arn, "local_port": None, "unserved": why} for arn, why in self.unserved.items()]
        return answer

    def reset(self):
        with self.lock:
            for proxy in self.proxies.values():  # all at once, then wait for each
                if proxy.proc.poll() is None:
                    proxy.proc.terminate()
            for proxy in self.proxies.values():
                proxy.reap()
            self.proxies.clear()
            self.unserved.clear()


DATAPLANE = DataPlane()
targethealth.WATCHERS.append(DATAPLANE.changed)  # health or registration changed: follow it
atexit.register(DATAPLANE.reset)


def reset():
    DATAPLANE.reset()


def listeners():
    return DATAPLANE.listeners()


# -- hooks on the ELBv2 API calls that change what a listener serves --------------------------------------------
def _applied(original):
    def call(self, *args, **kwargs):
        answer = original(self, *args, **kwargs)
        DATAPLANE.changed(wait=True)
        return answer

    call.__name__ = original.__name__
    call.__doc__ = f"moto's {original.__name__}, then the data plane follows (bgemu.dataplane)."
    return call


HOOKED = (
    "create_listener",
    "modify_listener",
    "delete_listener",
    "create_rule",
    "modify_rule",
    "delete_rule",
    "set_rule_priorities",
    "delete_load_balancer",
    "register_targets",
    "deregister_targets",
    "modify_target_group_attributes",
)
PATCHES = [(models.ELBv2Backend, name, _applied(getattr(models.ELBv2Backend, name))) for name in HOOKED]
