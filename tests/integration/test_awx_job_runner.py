"""The deploy job template's playbook run the way AWX runs a job: ansible-runner's Python API with a private data
dir, the template's inventory and the survey's answers as extra vars; the test reads the job events AWX would store
(runner_on_ok / runner_on_failed, the progress lines with their timestamps, playbook_on_stats). Local strategy: real
HAProxy and app slots."""

import datetime
import json
import os
import re
import subprocess
import sys

import ansible_runner
import yaml
from conftest import REGION
from dataplane import get
from dataplane import local_host

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(ROOT, "inventories", "local", "hosts.yml")
SVC = os.path.join(ROOT, "roles", "local_bluegreen", "files", "bluegreen_svc.py")
SWITCH = "Move the traffic to the new slot in health-gated steps"


def template(name):
    with open(os.path.join(ROOT, "awx", "configuration", "controller_templates.yml"), encoding="utf-8") as f:
        (found,) = [t for t in yaml.safe_load(f)["controller_templates"] if t["name"] == name]
    return found


def job(tmp_path, name, host, survey, template_name="bluegreen deploy dev", envvars=None, **more):
    """One job of a template: its playbook, the survey answers and the host settings as extra vars."""
    events = []
    (tmp_path / f"job-{name}").mkdir()
    runner = ansible_runner.run(
        private_data_dir=str(tmp_path / f"job-{name}"),
        project_dir=ROOT,
        playbook=template(template_name)["playbook"],
        inventory=INVENTORY,
        extravars=dict(host, **survey, **more),
        envvars={
            "ANSIBLE_COLLECTIONS_PATH": os.environ["ANSIBLE_COLLECTIONS_PATH"],
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            **(envvars or {}),
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
    host = local_host(tmp_path)
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


def survey_of(name):
    return [q["variable"] for q in template(name)["survey_spec"]["spec"]]


def test_rollback_unlock_abort_and_promote_templates_as_job_events(tmp_path, monkeypatch, emulator):
    """The other templates' playbooks as AWX jobs, with the deploy lock and history in the emulator's S3: rollback
    returns to v1, unlock with nothing locked says so, abort with nothing running fails naming why, and promote
    releases dev's last good version to stage."""
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="release-state", CreateBucketConfiguration={"LocationConstraint": REGION})
    base = tmp_path / "host"
    host = local_host(
        tmp_path,
        local_bluegreen_steps=[{"weight": 100}],
        # the templates' extra_vars (bluegreen_awx_release_bucket / _region) and the environment's inventory
        release_bucket="release-state",
        release_region=REGION,
        release_endpoint_url=emulator.url,
        release_application="web",
    )
    aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    dev = {"release_environment": "dev"}
    # each survey asks exactly what the job below answers
    assert survey_of("bluegreen rollback dev") == ["release_version"]
    assert (
        set(survey_of("bluegreen abort dev"))
        == set(survey_of("bluegreen unlock dev"))
        == {
            "release_reason",
            "release_version",
        }
    )
    assert survey_of("bluegreen promote dev to stage") == ["promote_version"]
    runs = {}
    try:
        for version in ("v1", "v2"):
            runs[version] = job(tmp_path, version, host, {"release_version": version}, envvars=aws, **dev)
        runs["rollback"] = job(tmp_path, "rollback", host, {}, "bluegreen rollback dev", aws, **dev)
        served_after_rollback = get_version(host)
        reason = {"release_reason": "AWX job 12 killed"}
        runs["unlock"] = job(tmp_path, "unlock", host, reason, "bluegreen unlock dev", aws, **dev)
        runs["abort"] = job(tmp_path, "abort", host, reason, "bluegreen abort dev", aws, **dev)
        # the promote template's extra_vars name its source; the target environment is its inventory's
        promote = {"promote_version": "v2", "release_source_environment": "dev", "release_environment": "stage"}
        runs["promote"] = job(tmp_path, "promote", host, promote, "bluegreen promote dev to stage", aws)
        served_after_promote = get_version(host)
    finally:
        for pidfile in (base / "run").glob("*.pid"):
            subprocess.run([sys.executable, SVC, "stop", pidfile.stem, "--dir", str(base / "run")], check=False)
    for name in ("v1", "v2", "rollback", "unlock", "promote"):
        runner, events = runs[name]
        assert runner.status == "successful", (name, runner.stdout.read())
        (stats,) = [e for e in events if e["event"] == "playbook_on_stats"]
        assert stats["event_data"]["failures"] == {}, name
    assert served_after_rollback == "v1"
    said = task_event(runs["unlock"][1], "runner_on_ok", "Say what was removed")
    assert said["event_data"]["res"]["msg"] == "no lock was held"
    runner, events = runs["abort"]
    assert runner.status == "failed"
    refused = task_event(events, "runner_on_failed", "Mark the release aborted")
    assert "nothing to abort" in refused["event_data"]["res"]["msg"]
    assert served_after_promote == "v2"
    listed = s3.list_objects_v2(Bucket="release-state", Prefix="bluegreen/web/stage/history/")["Contents"]
    (record,) = [json.loads(s3.get_object(Bucket="release-state", Key=o["Key"])["Body"].read()) for o in listed]
    assert (record["version"], record["result"]) == ("v2", "success"), record


def get_version(host):
    status, body = get(f"http://127.0.0.1:{host['local_bluegreen_listen_port']}/version")
    assert status == 200, (status, body)
    return json.loads(body)["version"]
