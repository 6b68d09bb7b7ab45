"""bluegreen.aws.codedeploy_deployment through real ansible-playbook runs on the emulator (real apps as revisions)."""

import json
import threading
import time

import pytest
from cdfleet import alarm
from cdfleet import deploy
from cdfleet import fleet
from cdfleet import registered
from cdfleet import wait_status
from conftest import run_playbook


def task(key="app-good.zip", **options):
    options = dict(
        application="web",
        deployment_group="web-dg",
        revision={"bucket": "releases", "key": key},
        poll_interval=0.1,
        gate_interval=0.1,
        **options,
    )
    body = "\n".join(f"    {k}: {json.dumps(v)}" for k, v in options.items())
    return f"- name: deploy\n  bluegreen.aws.codedeploy_deployment:\n{body}\n"


def test_success_with_timeline_then_same_revision_is_not_deployed_again(emulator, revisions, tmp_path):
    f = fleet(emulator)
    rc, results, unused_report = run_playbook(task(), emulator.endpoint, tmp_path)
    deploy_result = results["deploy"]
    assert rc == 0, deploy_result
    assert deploy_result["changed"] is True and deploy_result["status"] == "Succeeded"
    statuses = [e["status"] for e in deploy_result["timeline"] if not e["status"].startswith(("gates:", "Continue"))]
    assert statuses[-1] == "Succeeded" and "InProgress" in statuses
    rc, results, unused_report = run_playbook(task(), emulator.endpoint, tmp_path)
    assert rc == 0 and results["deploy"]["changed"] is False
    assert len(f["cd"].list_deployments(applicationName="web", deploymentGroupName="web-dg")["deployments"]) == 1


def test_broken_version_fails_with_diagnostics_naming_the_hook(emulator, revisions, tmp_path):
    f = fleet(emulator)
    rc, results, unused_report = run_playbook(task("app-broken.zip"), emulator.endpoint, tmp_path)
    deploy_result = results["deploy"]
    assert rc != 0 and deploy_result["status"] == "Failed"
    assert "ValidateService failed" in deploy_result["msg"]
    first, *unused_rest = deploy_result["diagnostics"]
    assert first["lifecycle_event"] == "ValidateService" and first["script"] == "scripts/validate_service.sh"
    assert first["error_code"] == "ScriptFailed" and "503" in first["log_tail"]
    assert registered(f) == sorted(f["blue"])  # auto-rollback: traffic never left blue


def ready_group(emulator, **kwargs):
    return fleet(emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60}, **kwargs)


def test_ready_wait_is_continued_only_after_the_gates_pass(emulator, revisions, tmp_path):
    f = ready_group(emulator)
    gate = [{"type": "target_health", "target_group": "web-tg", "min_healthy": 1, "min_healthy_percent": 0}]
    rc, results, unused_report = run_playbook(task(ready_gates=gate), emulator.endpoint, tmp_path)
    deploy_result = results["deploy"]
    assert rc == 0, deploy_result
    events = [e["status"] for e in deploy_result["timeline"]]
    assert events.index("Ready") < events.index("gates:ready") < events.index("ContinueRequested")
    assert deploy_result["status"] == "Succeeded"
    assert registered(f) != sorted(f["blue"])


def test_continue_ready_false_leaves_it_waiting_and_an_attached_run_continues_it(emulator, revisions, tmp_path):
    f = ready_group(emulator)
    rc, results, unused_report = run_playbook(task(continue_ready=False), emulator.endpoint, tmp_path)
    deploy_result = results["deploy"]
    assert rc == 0 and deploy_result["status"] == "Ready", deploy_result
    assert deploy_result["timeline"][-1]["status"] == "LeftWaiting"
    assert registered(f) == sorted(f["blue"])  # nobody continued: traffic stays on blue
    rc, results, unused_report = run_playbook(task(on_active="attach"), emulator.endpoint, tmp_path)
    assert rc == 0 and results["deploy"]["status"] == "Succeeded", results["deploy"]
    assert results["deploy"]["deployment_id"] == deploy_result["deployment_id"]
    assert registered(f) != sorted(f["blue"])


def test_a_gate_failing_during_ready_wait_stops_with_rollback(emulator, revisions, tmp_path):
    f = ready_group(emulator)
    gate = [{"type": "cloudwatch_alarm", "alarm_names": ["web-5xx"]}]
    alarm(emulator.client("cloudwatch"), "web-5xx", "ALARM")
    rc, results, unused_report = run_playbook(task(ready_gates=gate), emulator.endpoint, tmp_path)
    deploy_result = results["deploy"]
    assert rc != 0 and deploy_result["status"] == "Stopped", deploy_result
    assert "ready gates failed" in deploy_result["msg"] and "in ALARM: web-5xx" in deploy_result["msg"]
    assert registered(f) == sorted(f["blue"])


def test_a_bake_gate_failing_during_termination_wait_returns_traffic_to_blue(emulator, revisions, tmp_path):
    f = fleet(emulator, termination_minutes=60)
    alarm(emulator.client("cloudwatch"), "web-5xx", "ALARM")
    bake = [{"type": "cloudwatch_alarm", "alarm_names": ["web-5xx"]}]
    rc, results, unused_report = run_playbook(task(bake_gates=bake, bake_seconds=30), emulator.endpoint, tmp_path)
    deploy_result = results["deploy"]
    assert rc != 0 and deploy_result["status"] == "Stopped", deploy_result
    assert "bake gates failed" in deploy_result["msg"]
    assert registered(f) == sorted(f["blue"])


def test_active_deployment_fail_names_it_and_attach_follows_it(emulator, revisions, tmp_path):
    f = ready_group(emulator)
    active = deploy(f, "app-good.zip")
    wait_status(f, active, ("Ready",))
    rc, results, unused_report = run_playbook(task(), emulator.endpoint, tmp_path)
    assert rc != 0 and active in results["deploy"]["msg"] and "on_active=attach" in results["deploy"]["msg"]
    rc, results, unused_report = run_playbook(task(on_active="attach"), emulator.endpoint, tmp_path)
    assert rc == 0, results["deploy"]
    assert results["deploy"]["deployment_id"] == active and results["deploy"]["status"] == "Succeeded"
    assert results["deploy"]["changed"] is False  # it followed, it created nothing


@pytest.mark.parametrize("on_active", ["fail", "attach"])
def test_a_deployment_started_by_someone_else_during_our_create(emulator, revisions, tmp_path, on_active):
    """The deployment limit hit by a race: another deployment starts while our CreateDeployment is in flight."""
    f = ready_group(emulator)
    emulator.admin("calls", "DELETE")
    emulator.fault(operation="CreateDeployment", latency_ms=3000, count=1)
    answer = {}

    def ours_run():
        answer["rc"], answer["results"], unused_report = run_playbook(
            task("app-broken.zip", on_active=on_active), emulator.endpoint, tmp_path
        )

    ours = threading.Thread(target=ours_run)
    ours.start()
    deadline = time.monotonic() + 60
    while not emulator.calls().get("codedeploy.CreateDeployment"):  # ours is held in the emulator
        assert time.monotonic() < deadline and ours.is_alive()
        time.sleep(0.05)
    theirs = deploy(f, "app-good.zip")  # it will wait in Ready, active
    ours.join(120)
    result = answer["results"]["deploy"]
    assert emulator.calls()["codedeploy.CreateDeployment"] == 2
    if on_active == "fail":
        assert answer["rc"] != 0 and result["msg"].startswith(
            f"deployment group web-dg already has an active deployment {theirs}"
        )
    else:  # followed theirs to its end rather than failing or creating a second one
        assert answer["rc"] == 0, result
        assert result["deployment_id"] == theirs and result["status"] == "Succeeded" and result["changed"] is False
    assert f["cd"].list_deployments(applicationName="web", deploymentGroupName="web-dg")["deployments"] == [theirs]


def test_timeout_says_what_it_waited_for(emulator, revisions, tmp_path):
    fleet(emulator, termination_minutes=60)
    rc, results, unused_report = run_playbook(task(wait_timeout=1), emulator.endpoint, tmp_path)
    assert rc != 0 and results["deploy"]["msg"].startswith("wait_timeout: deployment ")
    assert "still InProgress after 1s" in results["deploy"]["msg"]


def test_state_stopped_rolls_back_the_active_deployment(emulator, revisions, tmp_path):
    f = fleet(emulator, termination_minutes=60)
    active = deploy(f, "app-good.zip")
    deadline = time.monotonic() + 20
    while registered(f) == sorted(f["blue"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    stop = (
        "- name: deploy\n  bluegreen.aws.codedeploy_deployment:\n"
        "    application: web\n    deployment_group: web-dg\n    state: stopped\n"
    )
    rc, results, unused_report = run_playbook(stop, emulator.endpoint, tmp_path)
    assert rc == 0 and results["deploy"]["changed"] is True and results["deploy"]["deployment_id"] == active
    assert registered(f) == sorted(f["blue"])
    rc, results, unused_report = run_playbook(stop, emulator.endpoint, tmp_path)
    assert rc == 0 and results["deploy"]["changed"] is False
