"""playbooks/abort.yml against a traffic_switch canary held in a long pause by another process.

Real HAProxy and demo apps (dataplane helpers), the emulator's S3 for the lock and the mark, real ansible-playbook runs.
"""

import datetime
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import REGION
from conftest import ansible_playbook
from conftest import playbook_env
from conftest import run_playbook
from dataplane import Processes
from dataplane import free_port
from dataplane import get
from dataplane import start_haproxy

from ansible_collections.bluegreen.aws.plugins.module_utils.routers.haproxy import HaproxyRouter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUCKET = "release-state"
MARK_KEY = "bluegreen/web/prod/abort.json"
INTERVAL = 1.0


@pytest.fixture
def stack(tmp_path, emulator):
    procs = Processes()
    ports = {"blue": free_port(), "green": free_port()}
    procs.app(ports["blue"], "v1")
    procs.app(ports["green"], "v2")
    hap = start_haproxy(procs, str(tmp_path), ports["blue"], ports["green"])
    router = HaproxyRouter(hap["socket"], "app", "blue", "green", config_path=hap["config"])
    emulator.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield hap, router, ports
    procs.stop_all()


def release_play(tmp_path, endpoint, hap, ports, steps, version):
    """Take the lock, run the canary with the abort option, release the lock in always."""
    play = textwrap.dedent(f"""\
        - hosts: localhost
          gather_facts: false
          module_defaults:
            group/bluegreen.aws.aws:
              {{endpoint_url: "{endpoint}", region: {REGION}, access_key: testing, secret_key: testing}}
          tasks:
            - name: lock
              bluegreen.aws.release_lock:
                {{bucket: {BUCKET}, application: web, environment: prod, version: "{version}"}}
              register: lock
            - block:
                - name: switch
                  bluegreen.aws.traffic_switch:
                    haproxy: {{socket: "{hap['socket']}", backend: app, config: "{hap['config']}"}}
                    stable: blue
                    canary: green
                    steps: {json.dumps(steps)}
                    pre_switch_check: false
                    gate_interval: {INTERVAL}
                    gates: [{{name: green-health, urls: ["http://127.0.0.1:{ports['green']}/health"]}}]
                    abort:
                      bucket: {BUCKET}
                      application: web
                      environment: prod
                      lock_id: "{{{{ lock.lock.id }}}}"
                      version: "{version}"
              always:
                - name: unlock
                  bluegreen.aws.release_lock:
                    bucket: {BUCKET}
                    application: web
                    environment: prod
                    state: absent
                    lock_id: "{{{{ lock.lock.id }}}}"
        """)
    path = tmp_path / f"release-{version}.yml"
    path.write_text(play)
    return path


def versions(url, n=30):
    seen = {}
    for status, body in [get(url + "/version") for request in range(n)]:
        key = json.loads(body).get("version") if status == 200 else f"HTTP {status}"
        seen[key] = seen.get(key, 0) + 1
    return seen


def abort_playbook(endpoint, *extra):
    return ansible_playbook(
        os.path.join(ROOT, "playbooks", "abort.yml"),
        "-e",
        f"release_endpoint_url={endpoint} release_region={REGION} release_bucket={BUCKET}",
        "-e",
        "release_application=web release_environment=prod",
        *extra,
        env=dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing"),
    )


def test_abort_from_another_process_wins_within_one_gate_interval(stack, emulator, tmp_path):
    hap, router, ports = stack
    s3 = emulator.client("s3")
    steps = [{"weight": 50}, {"pause": 300}, {"weight": 100}]
    play = release_play(tmp_path, emulator.url, hap, ports, steps, "ABC-7-web-20260101120000")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local"]
    switch = subprocess.Popen(
        command + [str(play)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=playbook_env()
    )
    try:
        deadline = time.monotonic() + 90
        while router.read() != {"blue": 50, "green": 50}:
            assert switch.poll() is None and time.monotonic() < deadline, switch.communicate()
            time.sleep(0.1)
        time.sleep(2 * INTERVAL)  # well into the 300 s pause
        assert versions(hap["url"]).keys() == {"v1", "v2"}

        seen = {}

        def watch():  # when the mark appears in S3, and when the traffic is back on blue (wall clock)
            end = time.monotonic() + 120
            while time.monotonic() < end and "back" not in seen:
                if "mark" not in seen and s3.list_objects_v2(Bucket=BUCKET, Prefix=MARK_KEY).get("KeyCount"):
                    seen["mark"] = time.time()
                if router.read() == {"blue": 100, "green": 0}:
                    seen["back"] = time.time()
                time.sleep(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        rc, results, abort_report = abort_playbook(emulator.url, "-e", "release_reason='5xx on the canary'")
        assert rc == 0, results
        mark = results["Mark the release aborted"]["mark"]
        watcher.join(60)
        out, err = switch.communicate(timeout=60)
    finally:
        if switch.poll() is None:
            switch.kill()
    took = seen["back"] - seen["mark"]
    # the task that wrote the mark: its start is before the write (an upper bound on the delay)
    task = next(t for p in abort_report["plays"] for t in p["tasks"] if t["task"]["name"] == "Mark the release aborted")
    started = datetime.datetime.fromisoformat(task["task"]["duration"]["start"].replace("Z", "+00:00")).timestamp()
    print(
        f"abort mark seen in S3 -> all traffic on blue in {took:.2f}s; from the start of the abort task "
        f"{seen['back'] - started:.2f}s (gate interval {INTERVAL}s)"
    )
    assert "mark" in seen and took <= INTERVAL + 1.0, seen  # one interval, plus the mark's poll and the rollback write
    assert versions(hap["url"]) == {"v1": 30}

    report = json.loads(out)
    tasks = {t["task"]["name"]: t["hosts"]["localhost"] for p in report["plays"] for t in p["tasks"]}
    result = tasks["switch"]
    assert switch.returncode != 0 and result["status"] == "rolled_back" and result["aborted"] is True
    assert f"aborted by {mark['who']}" in result["reason"] and "5xx on the canary" in result["reason"]
    assert result["abort_check"]["mark"]["lock_id"] == tasks["lock"]["lock"]["id"]
    assert result["abort_check"]["errors"] == 0
    assert tasks["unlock"]["changed"]  # the lock was released in always
    assert mark["lock_id"] == tasks["lock"]["lock"]["id"] and mark["version"] == "ABC-7-web-20260101120000"

    # the mark is still there, but it names the last release: the next release is not aborted by it
    play = release_play(tmp_path, emulator.url, hap, ports, [{"weight": 100}], "ABC-8-web-20260101130000")
    rc, tasks, unused = ansible_playbook(play, env=None)
    assert rc == 0 and tasks["switch"]["status"] == "promoted" and tasks["switch"]["aborted"] is False, tasks
    assert versions(hap["url"]) == {"v2": 30}


def test_abort_with_no_release_running_is_refused(stack, emulator):
    rc, results, unused = abort_playbook(emulator.url, "-e", "release_reason=why")
    assert rc != 0 and "nothing to abort" in results["Mark the release aborted"]["msg"]
    rc, results, unused = abort_playbook(emulator.url)
    assert rc != 0 and "release_reason" in results["Check what to abort and why"]["msg"]


def test_an_unreadable_mark_warns_then_aborts_after_max_errors(stack, emulator, tmp_path):
    """The bucket does not exist: every read fails. max_errors=3 in a row stops the run, traffic back on blue."""
    hap, router, ports = stack
    task = textwrap.dedent(f"""\
        - name: switch
          bluegreen.aws.traffic_switch:
            haproxy: {{socket: "{hap['socket']}", backend: app, config: "{hap['config']}"}}
            stable: blue
            canary: green
            steps: [{{weight: 50}}, {{pause: 60}}, {{weight: 100}}]
            pre_switch_check: false
            gate_interval: 0.3
            abort: {{bucket: no-such-bucket, application: web, environment: prod, version: v1}}
        """)
    rc, results, unused = run_playbook(task, emulator.url, tmp_path)
    switch = results["switch"]
    assert rc != 0 and switch["status"] == "rolled_back", switch
    assert "could not be read 3 time(s) in a row" in switch["reason"] and "NoSuchBucket" in switch["reason"]
    assert switch["abort_check"]["errors"] == 3 and router.read() == {"blue": 100, "green": 0}
