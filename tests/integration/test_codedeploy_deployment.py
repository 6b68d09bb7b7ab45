"""bluegreen.aws.codedeploy_deployment through real ansible-playbook runs on the emulator: real bundles whose hook
scripts the emulator's agent runs on each instance, at the instance's own address."""

import json
import threading
import time

import pytest
from cdfleet import APP_PORT
from cdfleet import addresses
from cdfleet import alarm
from cdfleet import deploy
from cdfleet import deployment_task as task
from cdfleet import fleet
from cdfleet import registered
from cdfleet import status
from cdfleet import wait_status
from conftest import run_playbook
from dataplane import get


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
    f = fleet(emulator, blue_revision="app-good.zip")
    rc, results, unused_report = run_playbook(task("app-broken.zip"), emulator.endpoint, tmp_path)
    deploy_result = results["deploy"]
    assert rc != 0 and deploy_result["status"] == "Failed"
    assert "ValidateService failed" in deploy_result["msg"]
    first, *unused_rest = deploy_result["diagnostics"]
    assert first["lifecycle_event"] == "ValidateService" and first["script"] == "scripts/validate_service.sh"
    assert first["error_code"] == "ScriptFailed"
    assert first["message"].endswith("run as user root failed with exit code 1")
    # the real script's own last words, as the agent reports them
    assert (
        "[stderr]" in first["log_tail"] and "[ValidateService] ERROR: http://127.0.0.1:8080/health" in first["log_tail"]
    )
    assert "still failing after 3 attempts" in first["log_tail"] and "503" in first["log_tail"]
    assert registered(f) == sorted(f["blue"])  # auto-rollback: traffic never left blue
    for ip in addresses(emulator, f["blue"]).values():  # and blue still serves the old version
        assert json.loads(get(f"http://{ip}:{APP_PORT}/version")[1]) == {"version": "1.0.0"}
    assert health_of(f) == {i: "healthy" for i in f["blue"]}


def ready_group(emulator, **kwargs):
    kwargs.setdefault("ready", {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60})
    kwargs.setdefault("blue_revision", "app-good.zip")  # a rollback's AllowTraffic waits for blue to be healthy
    return fleet(emulator, **kwargs)


GREEN_URL = f"http://{{private_ip}}:{APP_PORT}/health/deep"  # each green instance's own address


def green_gate():
    return [{"type": "http", "name": "green-deep", "urls": [GREEN_URL], "failure_threshold": 2}]


def probed(emulator, result):
    """The instance ids the ready gates probed (their URLs hold each instance's private address)."""
    found = set()
    for event in result["timeline"]:
        for gate in event.get("gates", []):
            found.update(url.split("/")[2].split(":")[0] for url in gate.get("details", {}).get("probes", {}))
    ids = [t["InstanceId"] for r in emulator.client("ec2").describe_instances()["Reservations"] for t in r["Instances"]]
    by_ip = {ip: i for i, ip in addresses(emulator, ids).items()}
    return {by_ip.get(ip, ip) for ip in found}


def test_ready_gates_judge_the_green_instances_then_continue(emulator, revisions, tmp_path):
    f = ready_group(emulator, blue_revision="app-good.zip")
    rc, results, unused_report = run_playbook(task(ready_gates=green_gate()), emulator.endpoint, tmp_path)
    deploy_result = results["deploy"]
    assert rc == 0, deploy_result
    events = [e["status"] for e in deploy_result["timeline"]]
    assert events.index("Ready") < events.index("gates:ready") < events.index("ContinueRequested")
    green = next(e["instances"] for e in deploy_result["timeline"] if e["status"] == "GreenInstances")
    assert len(green) == 2 and not set(green) & set(f["blue"])
    assert probed(emulator, deploy_result) == set(green)  # the gates judged green, never blue
    assert deploy_result["status"] == "Succeeded"
    assert registered(f) == sorted(green)


def test_green_broken_and_blue_healthy_stops_follows_the_rollback_and_keeps_blue(emulator, revisions, tmp_path):
    f = ready_group(emulator, blue_revision="app-good.zip")
    # app-degrading passes ValidateService, then breaks 8 s after it started: the gate never passes, then fails
    gate = [dict(green_gate()[0], success_threshold=100000)]
    rc, results, unused_report = run_playbook(task("app-degrading.zip", ready_gates=gate), emulator.endpoint, tmp_path)
    deploy_result = results["deploy"]
    assert rc != 0 and deploy_result["status"] == "Stopped", deploy_result
    assert "ready gates failed" in deploy_result["msg"] and "green-deep" in deploy_result["msg"]
    rollback = deploy_result["rollback_deployment_id"]
    assert rollback and rollback != deploy_result["deployment_id"]
    assert deploy_result["rollback_status"] == "Succeeded"
    assert (
        f"rollback deployment {rollback} Succeeded: traffic is back on the original instances" in deploy_result["msg"]
    )
    assert "StopRequested" in [e["status"] for e in deploy_result["timeline"]]
    assert f["cd"].get_deployment(deploymentId=rollback)["deploymentInfo"]["status"] == "Succeeded"
    assert registered(f) == sorted(f["blue"])
    assert health_of(f) == {i: "healthy" for i in f["blue"]}  # blue serves, verified by real health checks


def health_of(f):
    answer = f["elb"].describe_target_health(TargetGroupArn=f["tg"])["TargetHealthDescriptions"]
    return {t["Target"]["Id"]: t["TargetHealth"]["State"] for t in answer if t["TargetHealth"]["State"] != "draining"}


def test_a_reupload_to_the_same_key_is_a_new_deployment(emulator, revisions, tmp_path):
    f = fleet(emulator)
    rc, results, unused_report = run_playbook(task(), emulator.endpoint, tmp_path)
    assert rc == 0 and results["deploy"]["changed"] is True, results["deploy"]
    first_etag = results["deploy"]["revision"]["etag"]
    rc, results, unused_report = run_playbook(task(), emulator.endpoint, tmp_path)
    assert rc == 0 and results["deploy"]["changed"] is False
    with open(revisions["app-v2.zip"], "rb") as bundle:  # another release, uploaded to the same key
        emulator.client("s3").put_object(Bucket="releases", Key="app-good.zip", Body=bundle.read())
    rc, results, unused_report = run_playbook(task(), emulator.endpoint, tmp_path)
    assert rc == 0 and results["deploy"]["changed"] is True, results["deploy"]
    assert results["deploy"]["revision"]["etag"] != first_etag
    deployments = f["cd"].list_deployments(applicationName="web", deploymentGroupName="web-dg")["deployments"]
    assert len(deployments) == 2
    pinned = f["cd"].get_deployment(deploymentId=results["deploy"]["deployment_id"])["deploymentInfo"]
    assert pinned["revision"]["s3Location"]["eTag"] == results["deploy"]["revision"]["etag"]


def test_a_missing_bundle_is_refused_naming_it(emulator, revisions, tmp_path):
    fleet(emulator)
    emulator.admin("calls", "DELETE")
    rc, results, unused_report = run_playbook(task("nope.zip"), emulator.endpoint, tmp_path)
    assert rc != 0 and "revision: s3://releases/nope.zip does not exist" in results["deploy"]["msg"]
    assert "codedeploy.CreateDeployment" not in emulator.calls()


WRITES = ("CreateDeployment", "StopDeployment", "ContinueDeployment", "CreateDeploymentGroup", "UpdateDeploymentGroup")


@pytest.mark.parametrize(
    "group, options, message",
    [
        (
            {},
            {"ready_gates": [{"urls": ["http://127.0.0.1:1/{instance_id}"]}]},
            "ready_gates: deployment group web-dg reroutes as soon as green is ready (CONTINUE_DEPLOYMENT)",
        ),
        (
            {"ready": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60}},
            {"ready_gates": [{"type": "target_health", "target_group": "web-tg"}]},
            "ready_gates[0].target_group: web-tg is the deployment group's own target group",
        ),
        (
            {"termination_minutes": 0},
            {"bake_gates": [{"type": "cloudwatch_alarm", "alarm_names": ["web-5xx"]}]},
            "bake_gates: deployment group web-dg has no termination wait",
        ),
        (
            {"termination_minutes": 1},
            {"bake_gates": [{"type": "cloudwatch_alarm", "alarm_names": ["web-5xx"]}], "bake_seconds": 300},
            "bake_seconds=300 is longer than the group's termination wait (1 min)",
        ),
        (
            {},
            {"ready_gates": [{"urls": ["http://127.0.0.1:1/{nope}"]}]},
            "ready_gates[0].urls: http://127.0.0.1:1/{nope} uses an unknown placeholder",
        ),
    ],
)
def test_gates_that_could_never_run_are_refused_with_no_write(emulator, revisions, tmp_path, group, options, message):
    fleet(emulator, **group)
    emulator.admin("calls", "DELETE")
    rc, results, unused_report = run_playbook(task(**options), emulator.endpoint, tmp_path)
    assert rc != 0 and message in results["deploy"]["msg"], results["deploy"]["msg"]
    calls = emulator.calls()
    assert [c for c in calls if c.split(".")[-1] in WRITES] == [], calls


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
    f = fleet(emulator, termination_minutes=60, blue_revision="app-good.zip")
    alarm(emulator.client("cloudwatch"), "web-5xx", "ALARM")
    bake = [{"type": "cloudwatch_alarm", "alarm_names": ["web-5xx"]}]
    rc, results, unused_report = run_playbook(task(bake_gates=bake, bake_seconds=30), emulator.endpoint, tmp_path)
    deploy_result = results["deploy"]
    assert rc != 0 and deploy_result["status"] == "Stopped", deploy_result
    assert "bake gates failed" in deploy_result["msg"]
    assert registered(f) == sorted(f["blue"])


def test_active_deployment_fail_names_it_and_attach_follows_it(emulator, revisions, tmp_path):
    # a ready wait two playbook runs cannot outlast on a loaded machine (60 min lasted 36 s: it ran out once)
    f = ready_group(emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 600})
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


def in_termination_wait(f, deployment_id):
    """Wait until ``deployment_id`` has moved traffic to green and keeps blue for its termination wait."""
    deadline = time.monotonic() + 90
    while (
        not f["cd"]
        .get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        .get("instanceTerminationWaitTimeStarted")
    ):
        assert time.monotonic() < deadline and status(f, deployment_id) in ("Created", "Queued", "InProgress")
        time.sleep(0.05)


def test_queue_waits_for_the_termination_wait_then_deploys(emulator, revisions, tmp_path):
    # 30 min at the emulator's 0.01: 18 s of termination wait, which the queued release must sit out
    f = fleet(emulator, termination_minutes=30, blue_revision="app-good.zip")
    theirs = deploy(f, "app-good.zip")
    in_termination_wait(f, theirs)
    rc, results, unused_report = run_playbook(task("app-v2.zip", on_active="queue"), emulator.endpoint, tmp_path)
    ours = results["deploy"]
    assert rc == 0 and ours["changed"] is True and ours["status"] == "Succeeded", ours
    assert ours["queued_behind"] == [theirs] and ours["deployment_id"] != theirs
    info = {d: f["cd"].get_deployment(deploymentId=d)["deploymentInfo"] for d in (theirs, ours["deployment_id"])}
    assert info[theirs]["status"] == "Succeeded"
    assert info[ours["deployment_id"]]["createTime"] >= info[theirs]["completeTime"]  # created once theirs ended


def test_queue_that_outlasts_wait_timeout_names_the_deployment_and_creates_nothing(emulator, revisions, tmp_path):
    f = fleet(emulator, termination_minutes=600, blue_revision="app-good.zip")
    theirs = deploy(f, "app-good.zip")
    in_termination_wait(f, theirs)
    queued = task("app-v2.zip", on_active="queue", wait_timeout=2)
    rc, results, unused_report = run_playbook(queued, emulator.endpoint, tmp_path, check=True)
    assert rc == 0 and results["deploy"]["status"] == "WouldCreate" and results["deploy"]["queued_behind"] == [theirs]
    assert status(f, theirs) == "InProgress"  # check mode did not wait for it
    rc, results, unused_report = run_playbook(queued, emulator.endpoint, tmp_path)
    assert rc != 0 and results["deploy"]["status"] == "Queued", results["deploy"]
    assert f"deployment {theirs} was still InProgress after 2 s" in results["deploy"]["msg"]
    assert f["cd"].list_deployments(applicationName="web", deploymentGroupName="web-dg")["deployments"] == [theirs]


def test_timeout_says_what_it_waited_for(emulator, revisions, tmp_path):
    fleet(emulator, termination_minutes=60)
    rc, results, unused_report = run_playbook(task(wait_timeout=1), emulator.endpoint, tmp_path)
    assert rc != 0 and results["deploy"]["msg"].startswith("wait_timeout: deployment ")
    assert "still InProgress after 1s" in results["deploy"]["msg"]


def test_state_stopped_rolls_back_the_active_deployment(emulator, revisions, tmp_path):
    f = fleet(emulator, termination_minutes=60, blue_revision="app-good.zip")
    active = deploy(f, "app-good.zip")
    deadline = time.monotonic() + 90
    while registered(f) == sorted(f["blue"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    stop = (
        "- name: deploy\n  bluegreen.aws.codedeploy_deployment:\n"
        "    application: web\n    deployment_group: web-dg\n    state: stopped\n"
    )
    rc, results, unused_report = run_playbook(stop, emulator.endpoint, tmp_path)
    stopped = results["deploy"]
    assert rc == 0 and stopped["changed"] is True and stopped["deployment_id"] == active, stopped
    # it returned only once CodeDeploy said Stopped (StopDeployment answers Pending), and after the rollback ended
    assert stopped["status"] == "Stopped" and status(f, active) == "Stopped"
    rollback = stopped["rollback_deployment_id"]
    assert rollback and stopped["rollback_status"] == "Succeeded" and status(f, rollback) == "Succeeded"
    assert [e for e in stopped["timeline"] if e["status"] == "StopRequested"][0]["stop_status"] == "Pending"
    assert "traffic is back on the original instances" in stopped["traffic"]
    assert registered(f) == sorted(f["blue"])
    rc, results, unused_report = run_playbook(stop, emulator.endpoint, tmp_path)
    assert rc == 0 and results["deploy"]["changed"] is False


def test_a_ready_wait_that_runs_out_while_gates_are_undecided_sends_no_stop(emulator, revisions, tmp_path):
    """CodeDeploy stops the deployment itself when its ready wait ends; the tracker re-polls and sends nothing."""
    ready_group(emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 1})
    undecided = [{"name": "never-sure", "urls": [GREEN_URL], "success_threshold": 100000}]
    emulator.admin("calls", "DELETE")
    rc, results, unused_report = run_playbook(task(ready_gates=undecided), emulator.endpoint, tmp_path)
    deploy_result = results["deploy"]
    assert rc != 0 and deploy_result["status"] == "Stopped", deploy_result
    assert "gates undecided" in deploy_result["msg"] and "never-sure" in deploy_result["msg"]
    calls = emulator.calls()
    assert "codedeploy.StopDeployment" not in calls and "codedeploy.ContinueDeployment" not in calls, calls
