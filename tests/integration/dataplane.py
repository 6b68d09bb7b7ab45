"""Real data-plane processes for tests and benchmarks: demo app slots, HAProxy, nginx (loopback only)."""

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_APP = os.path.join(ROOT, "roles", "local_bluegreen", "files", "demo_app.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_host(tmp_path, **extra):
    """The local strategy's host variables for a test: its files under tmp_path/host, proxy and slots on free ports,
    fast gates, reports under tmp_path/reports; ``extra`` adds to them."""
    return {
        "local_bluegreen_base_dir": str(tmp_path / "host"),
        "local_bluegreen_listen_port": free_port(),
        "local_bluegreen_slots": {"blue": free_port(), "green": free_port()},
        "local_bluegreen_gate_interval": 0.2,
        "release_record_report_dir": str(tmp_path / "reports"),
        **extra,
    }


def wait_http(url, timeout=10.0, status=None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if status in (None, response.status):
                    return response.status
        except urllib.error.HTTPError as e:
            if status in (None, e.code):
                return e.code
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer in {timeout}s")
        time.sleep(0.05)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Processes:
    def __init__(self):
        self.procs = []

    def start(self, argv, **kwargs):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
        self.procs.append(proc)
        return proc

    def app(self, port, version, *extra):
        proc = self.start([sys.executable, DEMO_APP, "--port", str(port), "--version", version, *extra])
        wait_http(f"http://127.0.0.1:{port}/version")
        return proc

    def stop_all(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.procs.clear()


HAPROXY_CFG = """\
global
    stats socket {socket} mode 600 level admin
    maxconn 2048

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option redispatch
    retries 3

frontend web
    bind 127.0.0.1:{port}
    default_backend app

backend app
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
    server blue 127.0.0.1:{blue} weight {blue_weight} check
    server green 127.0.0.1:{green} weight {green_weight} check
"""


def haproxy_binary():
    path = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(path):
        raise RuntimeError("haproxy is not installed: run `make deps` (it installs the apt package)")
    return path


def start_haproxy(procs, directory, blue, green, blue_weight=100, green_weight=0):
    port = free_port()
    sock = os.path.join(directory, "haproxy.sock")
    cfg = os.path.join(directory, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(
            HAPROXY_CFG.format(
                socket=sock, port=port, blue=blue, green=green, blue_weight=blue_weight, green_weight=green_weight
            )
        )
    proc = procs.start([haproxy_binary(), "-db", "-f", cfg])
    deadline = time.monotonic() + 10
    while not os.path.exists(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"haproxy did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.05)
    wait_http(f"http://127.0.0.1:{port}/version")
    return {"proc": proc, "port": port, "socket": sock, "config": cfg, "url": f"http://127.0.0.1:{port}"}


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    include {dir}/upstream.conf;
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 100000;
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}
}}
"""


def nginx_binary():
    path = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(path):
        raise RuntimeError("nginx is not installed: run `make deps` (it installs the apt package)")
    return path


def start_nginx(procs, directory, upstream_text, upstream="app"):
    port = free_port()
    os.makedirs(os.path.join(directory, "tmp"), exist_ok=True)
    conf = os.path.join(directory, "nginx.conf")
    with open(os.path.join(directory, "upstream.conf"), "w") as f:
        f.write(upstream_text)
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=directory, port=port, upstream=upstream))
    proc = procs.start([nginx_binary(), "-c", conf])
    wait_http(f"http://127.0.0.1:{port}/version")
    return {
        "proc": proc,
        "port": port,
        "conf": conf,
        "upstream_file": os.path.join(directory, "upstream.conf"),
        "url": f"http://127.0.0.1:{port}",
    }


def start_moto(procs):
    """A moto server on a free loopback port; returns its URL once it answers."""
    port = free_port()
    procs.start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/moto-api/", timeout=90)
    return url


def emulator_process(port, time_scale=1.0):
    """(argv, env) that start the bgemu AWS emulator on 127.0.0.1:``port``."""
    emulator_path = os.path.join(ROOT, "tests", "emulator")
    env = dict(os.environ, PYTHONPATH=emulator_path + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return [sys.executable, "-m", "bgemu", "--port", str(port), "--time-scale", str(time_scale)], env


def start_emulator(procs, time_scale=1.0):
    """The bgemu AWS emulator on a free loopback port; returns (url, seconds it took to answer)."""
    port = free_port()
    argv, env = emulator_process(port, time_scale)
    started = time.monotonic()
    procs.start(argv, env=env)
    url = f"http://127.0.0.1:{port}"
    # under 3 s on a quiet machine (make bench prints it); moto's import alone took 16 s on a loaded 2-core one
    wait_http(url + "/_bgemu/status", timeout=90)
    return url, time.monotonic() - started


@contextlib.contextmanager
def fake_imds():
    """A loopback IMDSv2 (tests/tools/fake_imds.py: account 210987654321, region ap-northeast-2); yields its URL."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
    try:
        from fake_imds import serve
    finally:
        sys.path.pop(0)
    server = serve(0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


class KeepAliveLoad:
    """``clients`` keep-alive connections sending GET ``path`` to 127.0.0.1:``port`` until stopped, and never longer
    than ``limit`` seconds; ``records`` holds (started, ended, status or None, version or error) per request."""

    def __init__(self, port, clients=4, limit=240, path="/version"):
        self.port, self.path = port, path
        self.stop = threading.Event()
        self.records = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for unused in range(clients)]
        self.deadline = time.monotonic() + limit

    def run(self):
        connection = None
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            started = time.monotonic()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                connection.request("GET", self.path)
                response = connection.getresponse()
                body = response.read()
                try:
                    answer = (response.status, json.loads(body).get("version") if body else None)
                except ValueError:  # not the app's JSON (a proxy's error page): the status says what happened
                    answer = (response.status, body[:80].decode(errors="replace"))
                if response.getheader("connection", "").lower() == "close":
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as e:
                answer = (None, repr(e))
                if connection is not None:
                    connection.close()
                connection = None
            with self.lock:
                self.records.append((started, time.monotonic(), *answer))
        if connection is not None:
            connection.close()

    def since(self, moment):
        """The requests started after ``moment``."""
        with self.lock:
            return [r for r in self.records if r[0] > moment]

    def wait_for(self, count, moment, timeout=30):
        """Returns once ``count`` requests started after ``moment`` were answered (or failed)."""
        deadline = time.monotonic() + timeout
        while len(self.since(moment)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} requests in {timeout} s: the load stopped")
            time.sleep(0.05)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(15)


class Poller:
    """Calls ``sample()`` every ``interval`` seconds in a thread, until stopped and never longer than ``limit`` seconds;
    ``samples`` holds (asked, answered, wall clock asked, value) per call.  Subclasses define ``sample``."""

    def __init__(self, interval=0.05, limit=240):
        self.interval, self.limit = interval, limit
        self.samples = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self):
        raise NotImplementedError

    def run(self):
        deadline = time.monotonic() + self.limit
        while not self.stop.wait(self.interval) and time.monotonic() < deadline:
            asked, wall = time.monotonic(), time.time()
            value = self.sample()
            self.samples.append((asked, time.monotonic(), wall, value))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(15)


def served(emulator, listener_arn):
    """What GET /_bgemu/listeners says of one listener (its HAProxy's local_port, forwards, backends)."""
    (entry,) = [e for e in emulator.admin("listeners") if e["listener_arn"] == listener_arn]
    return entry
