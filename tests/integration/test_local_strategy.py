"""The local strategy (seed 002) end to end: playbooks/site.yml and rollback.yml with real HAProxy and app slots."""

import datetime
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ansible_playbook
from conftest import playbook_env
from dataplane import Processes
from dataplane import free_port
from dataplane import get

from ansible_collections.bluegreen.aws.plugins.module_utils.routers.haproxy import HaproxyRouter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(ROOT, "inventories", "local", "hosts.yml")
SITE = os.path.join(ROOT, "playbooks", "site.yml")
ROLLBACK = os.path.join(ROOT, "playbooks", "rollback.yml")
SVC = os.path.join(ROOT, "roles", "local_bluegreen", "files", "bluegreen_svc.py")
SWITCH = "Move the traffic to the new slot in health-gated steps"
QUICK = [{"weight": 10}, {"pause": 0.5}, {"weight": 50}, {"pause": 0.5}, {"weight": 100}]


@pytest.fixture(scope="session")
def image():
    name = "localhost/bluegreen-base:bookworm"
    subprocess.run([os.path.join(ROOT, "tests", "tools", "build-image.sh"), name], check=True, timeout=900)
    return name


@pytest.fixture
def host(tmp_path):
    base = tmp_path / "host"
    settings = {
        "local_bluegreen_base_dir": str(base),
        "local_bluegreen_listen_port": free_port(),
        "local_bluegreen_slots": {"blue": free_port(), "green": free_port()},
        "local_bluegreen_gate_interval": 0.2,
    }
    yield settings
    for pidfile in (base / "run").glob("*.pid"):
        subprocess.run([sys.executable, SVC, "stop", pidfile.stem, "--dir", str(base / "run")], check=False)
    for slot in settings["local_bluegreen_slots"]:
        if settings.get("local_bluegreen_runtime") == "container":
            subprocess.run(["podman", "rm", "-f", "-t", "0", f"bluegreen-{slot}"], check=False, capture_output=True)


def site(host, version, steps=None, app_args=(), playbook=SITE):
    extra = dict(host, release_version=version, local_bluegreen_steps=steps or QUICK, release_app_args=list(app_args))
    return ansible_playbook(playbook, "-e", json.dumps(extra), inventory=INVENTORY)


def served(host, n=30):
    seen = {}
    for status, body in [get(f"http://127.0.0.1:{host['local_bluegreen_listen_port']}/version") for i in range(n)]:
        key = json.loads(body)["version"] if status == 200 else f"HTTP {status}"
        seen[key] = seen.get(key, 0) + 1
    return seen


def router(host):
    base = host["local_bluegreen_base_dir"]
    return HaproxyRouter(f"{base}/run/haproxy.sock", "app", "blue", "green", config_path=f"{base}/haproxy.cfg")


def test_v1_then_v2_canary_then_rerun_changes_nothing(host):
    rc, results, report = site(host, "v1")
    assert rc == 0, results
    assert served(host) == {"v1": 30}
    rc, results, report = site(host, "v2")
    assert rc == 0, results
    switch = results[SWITCH]
    assert switch["status"] == "promoted" and switch["changed"] is True
    assert [e["weights"]["green"] for e in switch["timeline"] if e["event"] == "weight"] == [10, 50, 100]
    assert served(host) == {"v2": 30}
    # the same release again: nothing to do, nothing changed anywhere in the play
    rc, results, report = site(host, "v2")
    assert rc == 0 and results[SWITCH]["changed"] is False
    assert report["stats"]["localhost"]["changed"] == 0


def test_broken_version_is_rolled_back_and_rollback_playbook_returns_at_once(host):
    assert site(host, "v1")[0] == 0
    assert site(host, "v2")[0] == 0
    rc, results, unused_report = ansible_playbook(ROLLBACK, "-e", json.dumps(host), inventory=INVENTORY)
    assert rc == 0, results
    assert results["Switch everything to the previous slot (it must answer its health check first)"]["live"] == "blue"
    assert served(host) == {"v1": 30}
    steps = [{"weight": 20}, {"pause": 30}, {"weight": 100}]
    rc, results, unused_report = site(host, "v3", steps=steps, app_args=["--fail-after", "2"])
    assert rc != 0
    assert results[SWITCH]["status"] == "rolled_back"
    assert "green-health" in results[SWITCH]["msg"]
    assert router(host).read() == {"blue": 100, "green": 0}
    assert served(host) == {"v1": 30}


def rollback(host):
    return ansible_playbook(ROLLBACK, "-e", json.dumps(host), inventory=INVENTORY)


def kill_mid_canary(host, version, at):
    """Start a slow canary of ``version`` and SIGKILL ansible-playbook once the new slot has ``at`` percent."""
    slow = [{"weight": 10}, {"pause": 0.5}, {"weight": at}, {"pause": 120}, {"weight": 100}]
    extra = dict(host, release_version=version, local_bluegreen_steps=slow)
    proc = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            "-i",
            INVENTORY,
            SITE,
            "-e",
            json.dumps(extra),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=playbook_env(),
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            if router(host).read()["green"] == at:
                break
        except Exception:  # the proxy may not be up yet
            pass
        assert proc.poll() is None and time.monotonic() < deadline, f"the canary never reached {at}%"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert router(host).read() == {"blue": 100 - at, "green": at}  # left mid-canary


def test_killed_mid_canary_then_rerun_converges(host):
    assert site(host, "v1")[0] == 0
    kill_mid_canary(host, "v2", at=50)
    rc, results, unused_report = site(host, "v2")
    assert rc == 0, results
    switch = results[SWITCH]
    assert switch["status"] == "promoted"
    assert any(e["event"] == "resume" for e in switch["timeline"])
    assert [e["weights"]["green"] for e in switch["timeline"] if e["event"] == "weight"] == [100]
    assert served(host) == {"v2": 30}


@pytest.mark.parametrize("at", [50, 90])
def test_another_release_after_a_crashed_canary_replaces_the_canary_not_the_previous_release(host, at):
    assert site(host, "v1")[0] == 0
    kill_mid_canary(host, "v2", at=at)
    rc, results, unused_report = site(host, "v3")
    assert rc == 0, results
    drain = results["Move the traffic off the slot that gets the new release"]
    assert drain["changed"] is True and drain["weights"] == {"blue": 100, "green": 0}  # v2's share went back to v1
    switch = results[SWITCH]
    # v3 got no traffic before its gates passed: the canary starts from 0%, not from v2's share
    assert switch["timeline"][0]["weights"] == {"blue": 100, "green": 0}
    assert [e["weights"]["green"] for e in switch["timeline"] if e["event"] == "weight"] == [10, 50, 100]
    assert served(host) == {"v3": 30}
    # v1 stayed in its slot: the rollback of v3 returns to it, not to the abandoned v2
    rc, results, unused_report = rollback(host)
    assert rc == 0, results
    assert served(host, 50) == {"v1": 50}


def test_rollback_at_a_50_50_split_returns_to_the_previous_release(host):
    assert site(host, "v1")[0] == 0
    kill_mid_canary(host, "v2", at=50)
    rc, results, unused_report = ansible_playbook(ROLLBACK, "-e", json.dumps(host), inventory=INVENTORY)
    assert rc == 0, results
    assert router(host).read() == {"blue": 100, "green": 0}
    assert served(host) == {"v1": 30}


def test_slots_as_containers(host, image):
    host.update(local_bluegreen_runtime="container", local_bluegreen_image=image)
    rc, results, unused_report = site(host, "v1")
    assert rc == 0, results
    assert served(host) == {"v1": 30}
    rc, results, unused_report = site(host, "v2")
    assert rc == 0, results
    assert results[SWITCH]["status"] == "promoted"
    assert served(host) == {"v2": 30}
    inspect = subprocess.run(
        ["podman", "inspect", "--format", '{{index .Config.Labels "bluegreen.version"}}', "bluegreen-green"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert inspect.stdout.strip() == "v2"
    # the same release again: the container is left alone
    rc, results, report = site(host, "v2")
    assert rc == 0 and report["stats"]["localhost"]["changed"] == 0


# -- rollback by release identity (issue 11, item 3): "previous" is the release that was live before the rollout
# began, recorded before the first weight moved; never the pool with the larger share.

TO_90_THEN_WAIT = [
    {"weight": 10},
    {"pause": 0.3},
    {"weight": 50},
    {"pause": 0.3},
    {"weight": 90},
    {"pause": None},
    {"weight": 100},
]


def record(host):
    with open(os.path.join(host["local_bluegreen_base_dir"], "rollout.json")) as f:
        return json.load(f)


def test_rollback_while_a_canary_waits_at_90_returns_every_request_to_the_previous_release(host):
    assert site(host, "v1")[0] == 0
    rc, results, unused_report = site(host, "v2", steps=TO_90_THEN_WAIT)
    assert rc == 0, results
    assert results[SWITCH]["status"] == "paused"
    assert router(host).read() == {"blue": 10, "green": 90}
    assert record(host)["stable"] == {"slot": "blue", "release": {"version": "v1", "args": []}}
    rc, results, unused_report = rollback(host)
    assert rc == 0, results
    assert router(host).read() == {"blue": 100, "green": 0}
    assert served(host, 50) == {"v1": 50}
    assert record(host)["state"] == "rolled_back"
    # a second rollback stays where it is
    rc, results, unused_report = rollback(host)
    assert rc == 0 and served(host) == {"v1": 30}


def test_rollback_after_a_play_killed_at_90_returns_every_request_to_the_previous_release(host):
    assert site(host, "v1")[0] == 0
    kill_mid_canary(host, "v2", at=90)
    assert record(host)["state"] == "started"  # the play died; the record written before the first weight stayed
    rc, results, unused_report = rollback(host)
    assert rc == 0, results
    assert router(host).read() == {"blue": 100, "green": 0}
    assert served(host, 50) == {"v1": 50}


def test_rollback_after_a_finished_rollout_returns_to_the_release_before_it(host):
    assert site(host, "v1")[0] == 0
    assert site(host, "v2")[0] == 0
    assert site(host, "v3")[0] == 0
    assert served(host) == {"v3": 30}
    rc, results, unused_report = rollback(host)
    assert rc == 0, results
    assert served(host, 50) == {"v2": 50}


# -- a slot is verified to be its release before any gate (issue 16)


@pytest.fixture
def stranger():
    """Another process on a port: a demo app of some other checkout."""
    procs = Processes()
    yield procs.app
    procs.stop_all()


def failed_task(report):
    """(task name, result) of the task that failed the play: the first failed one (release.yml's rescue records the
    failure and fails the play again with its message)."""
    failed = [
        (task["task"]["name"].split(" : ")[-1], task["hosts"]["localhost"])
        for play in report["plays"]
        for task in play["tasks"]
        if task["hosts"].get("localhost", {}).get("failed")
    ]
    assert failed, "no task failed"
    return failed[0]


def play_seconds(report):
    """Seconds from the start of the play's first task to the end of its last."""
    tasks = [task["task"]["duration"] for play in report["plays"] for task in play["tasks"]]
    start, end = (
        datetime.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (tasks[0]["start"], tasks[-1]["end"])
    )
    return (end - start).total_seconds()


def failure_text(result):
    return json.dumps(result.get("msg")) + json.dumps([r.get("msg") for r in result.get("results", [])])


def test_a_slot_port_held_by_another_process_fails_the_first_run_at_once_naming_the_port(host, stranger):
    green = host["local_bluegreen_slots"]["green"]
    stranger(green, "v1")  # even one answering the very release we give
    rc, results, report = site(host, "v1")
    assert rc != 0
    assert play_seconds(report) < 30  # from the role's first task to the failure; 2-4 s on an idle machine
    name, result = failed_task(report)
    assert name.startswith("Check that no other process listens")
    assert f"port {green} is in use by another process: the slot green" in failure_text(result)
    assert not os.path.exists(os.path.join(host["local_bluegreen_base_dir"], "run", "haproxy.pid"))  # nothing started


def test_a_port_taken_while_the_slot_is_idle_fails_before_any_gate_and_v1_keeps_serving(host, stranger):
    assert site(host, "v1")[0] == 0
    green = host["local_bluegreen_slots"]["green"]
    stranger(green, "v2")  # answers the release we are about to give: only the port check can tell
    rc, results, report = site(host, "v2")
    assert rc != 0
    assert f"port {green} is in use by another process" in failure_text(failed_task(report)[1])
    assert SWITCH not in results
    assert router(host).read() == {"blue": 100, "green": 0}
    assert served(host) == {"v1": 30}


def test_a_slot_whose_process_dies_is_stopped_before_any_gate(host):
    assert site(host, "v1")[0] == 0
    rc, results, report = site(host, "v2", app_args=["--no-such-option"])  # the app exits at once, again and again
    assert rc != 0
    name, result = failed_task(report)
    assert name == "Check that the slot runs its release"
    green = host["local_bluegreen_slots"]["green"]
    assert f"slot green (port {green}) is not release v2" in result["msg"]
    assert SWITCH not in results
    assert router(host).read() == {"blue": 100, "green": 0}
    assert served(host) == {"v1": 30}


def test_a_slot_answering_another_release_is_stopped_before_any_gate(host):
    app = os.path.join(host["local_bluegreen_base_dir"], "app", "demo_app.py")
    host["local_bluegreen_app_command"] = f"{sys.executable} {app} --port {{port}} --version impostor"
    rc, results, report = site(host, "v1")
    assert rc != 0
    name, result = failed_task(report)
    assert name == "Check that the slot runs its release"
    assert "is not release v1" in result["msg"] and "impostor" in result["msg"]
    assert SWITCH not in results
