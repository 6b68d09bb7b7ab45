"""The deploy job template's playbook run the way AWX runs a job: ansible-runner's Python API with a private data
dir, the template's inventory and the survey's answers as extra vars; the test reads the job events AWX would store
(runner_on_ok / runner_on_failed, the progress lines with their timestamps, playbook_on_stats). Local strategy: real
HAProxy and app slots."""

import datetime
import os
import re
import subprocess
import sys

import ansible_runner
import yaml
from dataplane import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(ROOT, "inventories", "local", "hosts.yml")
SVC = os.path.join(ROOT, "roles", "local_bluegreen", "files", "bluegreen_svc.py")
SWITCH = "Move the traffic to the new slot in health-gated steps"


def template(name):
    with open(os.path.join(ROOT, "awx", "configuration", "controller_templates.yml"), encoding="utf-8") as f:
        (found,) = [t for t in yaml.safe_load(f)["controller_templates"] if t["name"] == name]
    return found


def job(tmp_path, name, host, survey, **more):
    """One job: the template's playbook, the survey answers and the host settings as extra vars."""
    events = []
    (tmp_path / f"job-{name}").mkdir()
    runner = ansible_runner.run(
        private_data_dir=str(tmp_path / f"job-{name}"),
        project_dir=ROOT,
        playbook=template("bluegreen deploy dev")["playbook"],
        inventory=INVENTORY,
        extravars=dict(host, **survey, **more),
        envvars={
            "ANSIBLE_COLLECTIONS_PATH": os.environ["ANSIBLE_COLLECTIONS_PATH"],
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        },
        event_handler=lambda event: events.append(event) or True,
        quiet=True,
        timeout=600,
    )
    return runner, events


def created(event):
    return datetime.datetime.fromisoformat(event["created"])


def task_event(events, kind, task=SWITCH):
    (found,) = [e for e in events if e["event"] == kind and e["event_data"].get("task", "").endswith(task)]
    return found


def test_deploy_template_success_and_rolled_back_failure_as_job_events(tmp_path, monkeypatch):
    # ansible-runner starts the ansible-playbook it finds on PATH: this venv's, as an EE has its own
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    base = tmp_path / "host"
    host = {
        "local_bluegreen_base_dir": str(base),
        "local_bluegreen_listen_port": free_port(),
        "local_bluegreen_slots": {"blue": free_port(), "green": free_port()},
        "local_bluegreen_gate_interval": 0.2,
        "release_record_report_dir": str(tmp_path / "reports"),
    }
    try:
        first, unused = job(tmp_path, "v1", host, {"release_version": "v1", "release_environment": "dev"})
        assert first.status == "successful", first.stdout.read()
        steps = [{"weight": 10}, {"pause": 1.5}, {"weight": 50}, {"pause": 1.5}, {"weight": 100}]
        ok, events = job(
            tmp_path, "v2", host, {"release_version": "v2", "release_environment": "dev"}, local_bluegreen_steps=steps
        )
        broken = [{"weight": 20}, {"pause": 30}, {"weight": 100}]
        failed, failed_events = job(
            tmp_path,
            "v3",
            host,
            {"release_version": "v3", "release_environment": "dev"},
            local_bluegreen_steps=broken,
            release_app_args=["--fail-after", "2"],
        )
    finally:
        for pidfile in (base / "run").glob("*.pid"):
            subprocess.run([sys.executable, SVC, "stop", pidfile.stem, "--dir", str(base / "run")], check=False)

    # success: the switch's runner_on_ok, promoted through three steps; the stats say no failure
    assert ok.status == "successful" and ok.rc == 0
    done = task_event(events, "runner_on_ok")
    assert done["event_data"]["res"]["status"] == "promoted"
    (stats,) = [e for e in events if e["event"] == "playbook_on_stats"]
    assert stats["event_data"]["failures"] == {}
    # the progress lines are job events of their own, stored before the task's end event
    # (ansible-runner may fold lines printed together into one event: the lines are counted, each with its event)
    progress = [
        (line, e)
        for e in events
        for line in e.get("stdout", "").splitlines()
        if re.match(r"^\[localhost\] traffic_switch \d\d:\d\d:\d\d weight ", line)
    ]
    assert [line.rsplit(" ", 1)[-1] for line, unused in progress] == ["10%", "50%", "100%"], progress
    assert all(e["counter"] < done["counter"] for unused, e in progress)
    first, second = progress[0][1], progress[1][1]
    assert (created(done) - created(first)).total_seconds() > 2.5
    assert (created(second) - created(first)).total_seconds() > 1.0

    # failure: the switch's runner_on_failed (rolled back, the gate named), the record and report of the failure ran,
    # and the job failed
    assert failed.status == "failed" and failed.rc != 0
    bad = task_event(failed_events, "runner_on_failed")
    # v3 went into the idle slot (blue; v2 is on green) and its gate failed
    assert bad["event_data"]["res"]["status"] == "rolled_back" and "blue-health" in bad["event_data"]["res"]["msg"]
    said = [e["stdout"] for e in failed_events if "release report (rolled_back)" in e.get("stdout", "")]
    assert said
    (stats,) = [e for e in failed_events if e["event"] == "playbook_on_stats"]
    assert stats["event_data"]["failures"] == {"localhost": 1}
