"""make demo / make demo-aws: the AWS release flow on the local emulator, from an empty account, with real
ansible-playbook runs (make demo: steps 1 to 4, the main job; make demo-aws: all seven).

The emulator (tests/emulator/bgemu: instances with their own addresses running the bundle's hook scripts and user-data,
each ALB listener served by a real HAProxy) starts empty. Then, with inventories/emulator:
  codedeploy (CodeDeploy blue/green on an Auto Scaling group): 1. site.yml provisions everything and releases v1;
  2. deploy.yml releases v2 (queued behind v1's termination wait) and ends once its bake passed, while v1's instances
  wait for their termination;
  3. rollback.yml in that wait: CodeDeploy stops v2's deployment and routes traffic back to v1's instances, in seconds;
  4. a v3 that breaks a few seconds after it starts is stopped by its gates and CodeDeploy rolls back to v1;
  alb (two fleets, the listener's weights): 5. site.yml provisions and releases v1; 6. deploy.yml releases v2 through
  canary steps with gates; 7. rollback.yml puts all traffic back on v1's fleet at once.

A bounded client sends keep-alive requests through the emulated ALB's listener the whole time; after every step the
demo prints the versions that answered and the failed requests, and at the end a table of the steps.

    python tests/tools/demo_aws.py [--main] [--keep]
      --main: steps 1 to 4 only (make demo); --keep: leave the emulator running (stop it with make demo-stop)
"""

import argparse
import collections
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
DEMO_DIR = os.path.join(ROOT, ".build", "demo-aws")
V3_FAILS_AFTER = 8  # seconds the broken v3 answers before it fails (the demo app's --fail-after)
V3_BAKE = 12  # seconds of bake gates for v3: it breaks while they watch (inventories/emulator bakes 5 s)
# The deployment group's termination wait in AWS minutes: 36 s at the emulator's 100x (inventories/emulator's 1 minute
# is 0.6 s here). Longer than v3's bake (the bake runs while the original instances wait, so a failed bake rolls back
# in seconds), and long enough for step 3's rollback.yml to start after v2's release ended in it. No release waits it
# out (codedeploy_release_wait_termination=false): v2's release prepares its bundle while v1's instances wait, then
# queues behind v1's deployment (codedeploy_release_on_active=queue).
TERMINATION_WAIT_MINUTES = 60
EARLY = ["-e", "codedeploy_release_wait_termination=false", "-e", "codedeploy_release_on_active=queue"]
CLIENT_LIMIT = 900  # seconds: the client stops by itself after this, whatever happens to the demo


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin(url, path):
    with urllib.request.urlopen(f"{url}/_bgemu/{path}", timeout=10) as response:
        return json.load(response)


def start_emulator(log):
    """The emulator on a free loopback port, with AWS's managed policies (an empty account); returns (process, url)."""
    port = free_port()
    env = dict(
        os.environ,
        MOTO_IAM_LOAD_MANAGED_POLICIES="true",
        PYTHONPATH=os.path.join(ROOT, "tests", "emulator") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    # AWS time 100x faster: hook timeouts, health check intervals, the termination wait (inventories/emulator)
    command = [sys.executable, "-m", "bgemu", "--port", str(port), "--time-scale", "0.01"]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            admin(url, "status")
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"DEMO FAILED: the emulator did not start (see {log.name})")
            time.sleep(0.2)


class Client:
    """Two keep-alive connections sending GET /version through the listener until stopped (or CLIENT_LIMIT seconds).

    Every answer is kept as (seconds since start, version or None for a failed request, what failed)."""

    def __init__(self, port, connections=2, pause=0.02):
        self.port, self.pause = port, pause
        self.started = time.monotonic()
        self.answers = []
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for unused in range(connections)]
        for thread in self.threads:
            thread.start()

    def now(self):
        return time.monotonic() - self.started

    def run(self):
        connection = None
        while not self.stopped.is_set() and self.now() < CLIENT_LIMIT:
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                connection.request("GET", "/version")
                response = connection.getresponse()
                body = response.read()
                if response.status == 200:
                    self.answers.append((self.now(), json.loads(body)["version"], ""))
                else:
                    self.answers.append((self.now(), None, f"HTTP {response.status}"))
            except (OSError, http.client.HTTPException, ValueError) as e:
                self.answers.append((self.now(), None, type(e).__name__))
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(0.1)
            time.sleep(self.pause)

    def stop(self):
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def between(self, start, end):
        return [a for a in self.answers if start <= a[0] < end]


def summary(answers):
    served = collections.Counter(version for unused, version, unused_error in answers if version)
    failed = collections.Counter(error for unused, version, error in answers if not version)
    return served, failed


def playbook(name, *args, log):
    """ansible-playbook playbooks/<name> -i inventories/emulator, its output into the demo's log; returns its rc."""
    command = [os.path.join(BIN, "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "emulator")]
    command += [os.path.join(ROOT, "playbooks", name), *args]
    log.write(f"\n\n===== {' '.join(command)}\n")
    log.flush()
    proc = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    return proc.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the emulator running at the end")
    parser.add_argument("--main", action="store_true", help="steps 1 to 3 only: codedeploy v1, v2, broken v3")
    args = parser.parse_args()
    os.makedirs(DEMO_DIR, exist_ok=True)
    os.environ.update(ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_PIPELINING="true")
    os.environ.setdefault("ANSIBLE_CALLBACKS_ENABLED", "ansible.posix.profile_tasks")  # durations in the log
    os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
    log_path = os.path.join(DEMO_DIR, "demo.log")
    began = time.monotonic()
    with open(log_path, "w") as log:
        emulator, url = start_emulator(log)
        with open(os.path.join(DEMO_DIR, "emulator.pid"), "w") as pidfile:
            pidfile.write(str(emulator.pid))
        os.environ["BGEMU_ENDPOINT"] = url
        print(f"emulator on {url}; every playbook's output goes to {log_path}", flush=True)
        steps = Steps(url, log)
        try:
            run_steps(steps, main_only=args.main)
        finally:
            steps.stop()
            if not args.keep:
                os.killpg(emulator.pid, signal.SIGTERM)
                emulator.wait(timeout=60)
    rows = steps.rows
    print_table(rows, time.monotonic() - began)
    bad = [row for row in rows if not row["ok"]]
    if bad:
        sys.exit(f"DEMO FAILED at: {', '.join(row['step'] for row in bad)} (see {log_path})")


class Steps:
    """The demo's steps: each runs a playbook while the client sends requests, then says what answered."""

    def __init__(self, url, log):
        self.url, self.log = url, log
        self.rows = []
        self.clients = []

    def listener(self, seen):
        """The local port of the listener that is not in ``seen`` (the one the last provisioning created)."""
        ports = [entry["local_port"] for entry in admin(self.url, "listeners") if entry["local_port"] not in seen]
        return ports[0] if ports else None

    def run(self, title, name, args, version, rc_wanted=0, client=None):
        """Run playbook ``name``; ok when its rc is as wanted and the last requests were all answered by ``version``."""
        began = time.monotonic()
        start = client.now() if client else 0
        print(f"\n===== {title}", flush=True)
        rc = playbook(name, *args, log=self.log)
        answers = client.between(start, client.now()) if client else []
        served, failed = summary(answers)
        last = [v for unused, v, unused_error in answers[-20:] if v]
        ok = (rc == 0) == (rc_wanted == 0) and (not client or set(last) == {version})
        row = dict(step=title.split(":")[0], ok=ok, served=dict(served), failed=sum(failed.values()))
        row["extra"] = f"{time.monotonic() - began:.0f} s" + switched(answers, start, version)
        row["extra"] += back_after_failures(answers, version)
        self.rows.append(row)
        print(
            f"   playbook rc={rc}; served through the ALB: {dict(served) or '-'}; failed: {sum(failed.values())}"
            f"{' ' + str(dict(failed)) if failed else ''}; now answering: {sorted(set(last)) or '-'}; {row['extra']}",
            flush=True,
        )
        if not ok:
            wanted = "0" if rc_wanted == 0 else "not 0"
            print(
                f"   STEP FAILED: wanted playbook rc {wanted} and the last requests answered by {version}", flush=True
            )
        return rc

    def client_on(self, seen):
        port = self.listener(seen)
        if port is None:
            return None
        print(f"   the listener is served on http://127.0.0.1:{port}/ (try: curl 127.0.0.1:{port}/version)", flush=True)
        client = Client(port)
        self.clients.append(client)
        time.sleep(2)
        return client

    def stop(self):
        for client in self.clients:
            client.stop()


def switched(answers, start, version):
    """When, into the step, the last request not answered by ``version`` was sent (traffic moved then)."""
    other = [(t, v) for t, v, unused in answers if v and v != version]
    done = other and answers[-1][1] == version
    return f"; all on {version} {other[-1][0] - start:.1f} s into the step" if done else ""


def back_after_failures(answers, version):
    """How long after the first failed request ``version`` answered again (the time to roll back)."""
    first = next((t for t, v, unused in answers if v is None), None)
    if first is None:
        return ""
    again = next((t for t, v, unused in answers if t > first and v == version), None)
    return f"; {version} answered again {again - first:.1f} s after the first failed request" if again else ""


def run_steps(steps, main_only=False):
    cd = ["-e", "bluegreen_strategy=codedeploy", "-e", f"aws_infra_termination_wait_minutes={TERMINATION_WAIT_MINUTES}"]
    if steps.run(
        "1. codedeploy: provision an empty account and release v1",
        "site.yml",
        cd + ["-e", "release_version=v1"] + EARLY,
        "v1",
    ):
        return
    client = steps.client_on(seen=[])
    steps.run(
        "2. codedeploy: v2 (queued behind v1's termination wait), ready gates on green, traffic moves, bake gates",
        "deploy.yml",
        cd + ["-e", "release_version=v2"] + EARLY,
        "v2",
        client=client,
    )
    steps.run(
        "3. codedeploy: rollback.yml in the termination wait: traffic back on v1's instances",
        "rollback.yml",
        cd,
        "v1",
        client=client,
    )
    broken = cd + ["-e", "release_version=v3", "-e", f"release_image_tag=v3-fail-after-{V3_FAILS_AFTER}"]
    broken += ["-e", f"codedeploy_release_bake_seconds={V3_BAKE}"]
    steps.run(
        f"4. codedeploy: v3 breaks {V3_FAILS_AFTER} s after it starts: gates stop it, CodeDeploy rolls back to v1",
        "deploy.yml",
        broken,
        "v1",
        rc_wanted=1,
        client=client,
    )
    if main_only:
        return
    alb = ["-e", "bluegreen_strategy=alb", "-e", "bluegreen_env=emulator-alb"]
    seen = [c.port for c in steps.clients]
    if steps.run(
        "5. alb: provision two fleets behind one listener and release v1",
        "site.yml",
        alb + ["-e", "release_version=v1"],
        "v1",
    ):
        return
    client = steps.client_on(seen=seen)
    steps.run(
        "6. alb: v2 on the idle fleet, canary 10% -> 50% -> 100% with gates",
        "deploy.yml",
        alb + ["-e", "release_version=v2"],
        "v2",
        client=client,
    )
    steps.run("7. alb: rollback.yml, all traffic back to v1's fleet at once", "rollback.yml", alb, "v1", client=client)


def print_table(rows, seconds):
    print(f"\n===== the demo took {seconds:.0f} s")
    header = ("step", "ok", "served through the ALB", "failed", "")
    table = [header] + [
        (
            row["step"],
            "yes" if row["ok"] else "NO",
            " ".join(f"{v}={n}" for v, n in sorted(row["served"].items())) or "-",
            str(row["failed"]),
            row["extra"],
        )
        for row in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for r in table:
        print("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4])


if __name__ == "__main__":
    main()
