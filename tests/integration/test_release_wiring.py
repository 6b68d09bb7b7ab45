"""playbooks/site.yml with the release pipeline on: lock first (released in always), history record, notifications.

Real HAProxy and app slots (the local strategy), the emulator's S3, a webhook receiver on loopback.
"""

import http.server
import json
import os
import subprocess
import sys
import threading

import pytest
from conftest import REGION
from conftest import ansible_playbook
from dataplane import free_port
from dataplane import get

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(ROOT, "inventories", "local", "hosts.yml")
SITE = os.path.join(ROOT, "playbooks", "release.yml")
ROLLBACK = os.path.join(ROOT, "playbooks", "rollback.yml")
SVC = os.path.join(ROOT, "roles", "local_bluegreen", "files", "bluegreen_svc.py")
QUICK = [{"weight": 50}, {"pause": 0.5}, {"weight": 100}]
BUCKET = "release-state"
LOCK_KEY = "bluegreen/web/prod/lock.json"
ENV = dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")


class Receiver(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        type(self).received.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", Receiver.received
    server.shutdown()


@pytest.fixture
def host(tmp_path, emulator, receiver):
    emulator.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    base = tmp_path / "host"
    settings = {
        "local_bluegreen_base_dir": str(base),
        "local_bluegreen_listen_port": free_port(),
        "local_bluegreen_slots": {"blue": free_port(), "green": free_port()},
        "local_bluegreen_gate_interval": 0.2,
        "release_bucket": BUCKET,
        "release_application": "web",
        "release_environment": "prod",
        "release_endpoint_url": emulator.url,
        "release_region": REGION,
        "release_notify_webhook_url": receiver[0],
        # a dead Slack URL: it must not change any release's outcome
        "release_notify_slack_webhook_url": f"http://127.0.0.1:{free_port()}/dead",
        "release_notify_timeout": 2,
    }
    yield settings
    for pidfile in (base / "run").glob("*.pid"):
        subprocess.run([sys.executable, SVC, "stop", pidfile.stem, "--dir", str(base / "run")], check=False)


def site(host, version, app_args=(), playbook=SITE):
    extra = dict(host, release_version=version, local_bluegreen_steps=QUICK, release_app_args=list(app_args))
    return ansible_playbook(playbook, "-e", json.dumps(extra), inventory=INVENTORY, env=ENV)


def operator_playbook(emulator, name, reason):
    """playbooks/abort.yml or unlock.yml for web/prod, run by an operator from another process."""
    extra = dict(
        release_endpoint_url=emulator.url,
        release_region=REGION,
        release_bucket=BUCKET,
        release_application="web",
        release_environment="prod",
        release_reason=reason,
    )
    return ansible_playbook(os.path.join(ROOT, "playbooks", f"{name}.yml"), "-e", json.dumps(extra), env=ENV)


def served(host, n=20):
    seen = {}
    for status, body in [get(f"http://127.0.0.1:{host['local_bluegreen_listen_port']}/version") for i in range(n)]:
        key = json.loads(body)["version"] if status == 200 else f"HTTP {status}"
        seen[key] = seen.get(key, 0) + 1
    return seen


def history(s3):
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="bluegreen/web/prod/history/")["Contents"])
    return [json.load(s3.get_object(Bucket=BUCKET, Key=k)["Body"]) for k in keys]


def test_site_takes_the_lock_records_and_announces_each_release(host, emulator, receiver):
    s3 = emulator.client("s3")
    url, received = receiver
    v1, v2, v3 = "ABC-1-web-20260101120000", "ABC-2-web-20260102120000", "ABC-3-web-20260103120000"
    rc, results, unused = site(host, v1)
    assert rc == 0, results
    rc, results, unused = site(host, v2)
    assert rc == 0, results
    assert served(host) == {v2: 20}
    # the switch watched the abort mark of this release (playbooks/abort.yml can stop it)
    watched = results["Move the traffic to the new slot in health-gated steps"]["abort_check"]
    assert watched["checks"] >= 2 and watched["errors"] == 0 and watched["key"] == "bluegreen/web/prod/abort.json"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=LOCK_KEY)  # released in always

    # rollback.yml: locked, recorded (as the version rolled back to) and announced too
    rc, results, unused = site(host, v2, playbook=ROLLBACK)
    assert rc == 0, results
    assert served(host) == {v1: 20}
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=LOCK_KEY)

    # a broken v3: rolled back, recorded as such, announced as start + rollback, lock released; dead Slack URL ignored
    rc, results, unused = site(host, v3, app_args=["--fail-after", "1"])
    assert rc != 0
    assert served(host) == {v1: 20}
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=LOCK_KEY)

    records = history(s3)
    assert [(r["version"], r["result"]) for r in records] == [
        (v1, "success"),
        (v2, "success"),
        (v1, "success"),  # the rollback, recorded as the version it put back
        (v3, "rolled_back"),
    ]
    assert records[2]["lock_id"] and records[2]["to_version"] == v1
    assert records[1]["strategy"] == "local" and records[1]["to_version"] == v2 and records[1]["lock_id"]
    assert [e["event"] for e in records[1]["timeline"]][-1] == "done" and records[1]["ended"]
    assert "rolled_back" in records[3]["reason"] or "gate" in records[3]["reason"], records[3]["reason"]
    assert [(m["event"], m["version"]) for m in received] == [
        ("start", v1),
        ("success", v1),
        ("start", v2),
        ("success", v2),
        ("start", v2),  # rollback.yml begins with the version it was given
        ("rollback", v1),
        ("start", v3),
        ("rollback", v3),
    ]
    assert all(m["details"]["lock_id"] for m in received) and received[7]["reason"]

    # someone else holds the lock: the release fails at the lock naming the holder, the traffic is untouched
    s3.put_object(
        Bucket=BUCKET,
        Key=LOCK_KEY,
        Body=json.dumps({"id": "other", "who": "alice@laptop", "version": "ABC-9-web-20260109120000", "ttl": 3600}),
    )
    rc, results, unused = site(host, v1)
    assert rc != 0
    assert "alice@laptop" in results["Take the deploy lock"]["msg"]
    assert "Move the traffic to the new slot in health-gated steps" not in results
    assert served(host) == {v1: 20}
    assert json.load(s3.get_object(Bucket=BUCKET, Key=LOCK_KEY)["Body"])["id"] == "other"  # not ours to release
    assert len(history(s3)) == 4


def test_abort_playbook_stops_a_site_release_held_at_50_percent(host, emulator, receiver):
    import subprocess as sp
    import time

    from conftest import playbook_env

    from ansible_collections.bluegreen.aws.plugins.module_utils.routers.haproxy import HaproxyRouter

    s3 = emulator.client("s3")
    url, received = receiver
    v1, v2 = "ABC-1-web-20260101120000", "ABC-2-web-20260102120000"
    assert site(host, v1)[0] == 0
    extra = dict(host, release_version=v2, local_bluegreen_steps=[{"weight": 50}, {"pause": 300}, {"weight": 100}])
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY, SITE]
    release = sp.Popen(
        command + ["-e", json.dumps(extra)], stdout=sp.PIPE, stderr=sp.PIPE, text=True, env=playbook_env(ENV)
    )
    base = host["local_bluegreen_base_dir"]
    router = HaproxyRouter(f"{base}/run/haproxy.sock", "app", "blue", "green")
    try:
        deadline = time.monotonic() + 120
        while sorted(router.read().values()) != [50, 50]:
            assert release.poll() is None and time.monotonic() < deadline, release.communicate()
            time.sleep(0.1)
        time.sleep(1.0)
        aborted = operator_playbook(emulator, "abort", "error budget burnt")
        started = time.monotonic()
        while sorted(router.read().values()) != [0, 100]:
            assert time.monotonic() < started + 30
            time.sleep(0.05)
        back_after = time.monotonic() - started
        out, err = release.communicate(timeout=120)
    finally:
        if release.poll() is None:
            release.kill()
    assert aborted[0] == 0, aborted[1]
    who = aborted[1]["Mark the release aborted"]["mark"]["who"]
    print(f"traffic back on the stable slot {back_after:.2f}s after abort.yml returned")
    assert back_after <= 1.0  # the gate interval here is 0.2 s: within one interval (+ slack) of abort.yml returning
    assert release.returncode != 0
    assert served(host) == {v1: 20}
    record = history(s3)[-1]
    assert record["version"] == v2 and record["result"] == "aborted", record
    assert f"aborted by {who}" in record["reason"] and "error budget burnt" in record["reason"]
    assert [(m["event"], m["version"]) for m in received][-2:] == [("start", v2), ("abort", v2)]
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=LOCK_KEY)  # released in always


def test_a_release_killed_mid_canary_leaves_its_lock_until_unlock(host, emulator):
    import signal
    import subprocess as sp
    import time

    from conftest import playbook_env

    s3 = emulator.client("s3")
    v1, v2, v3 = "ABC-1-web-20260101120000", "ABC-2-web-20260102120000", "ABC-3-web-20260103120000"
    assert site(host, v1)[0] == 0
    extra = dict(host, release_version=v2, local_bluegreen_steps=[{"weight": 50}, {"pause": 300}, {"weight": 100}])
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY, SITE]
    release = sp.Popen(
        command + ["-e", json.dumps(extra)],
        stdout=sp.DEVNULL,
        stderr=sp.DEVNULL,
        env=playbook_env(ENV),
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while v2 not in served(host, 10):
        assert release.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(release.pid, signal.SIGKILL)  # no always, no rescue: the lock stays
    release.wait(10)
    holder = json.load(s3.get_object(Bucket=BUCKET, Key=LOCK_KEY)["Body"])
    assert holder["version"] == v2

    rc, results, unused = site(host, v3)
    assert rc != 0
    message = results["Take the deploy lock"]["msg"]
    assert holder["who"] in message and v2 in message and holder["created"] in message and holder["id"] in message

    rc, results, unused = operator_playbook(emulator, "unlock", "release of v2 killed mid-canary")
    assert rc == 0 and results["Remove the lock"]["released"]["id"] == holder["id"]
    rc, results, unused = site(host, v3)
    assert rc == 0, results
    assert served(host) == {v3: 20}
