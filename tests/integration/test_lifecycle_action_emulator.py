"""bluegreen.aws.lifecycle_action through real ansible-playbook runs on the emulator, where instances really wait."""

import http.server
import threading
import time

import pytest
from cdfleet import deploy
from cdfleet import fleet
from cdfleet import wait_status
from conftest import run_playbook

CODEDEPLOY_HOOK = "CodeDeploy-managed-automatic-launch-deployment-hook-web-0123"
LAUNCH = "autoscaling:EC2_INSTANCE_LAUNCHING"


def scale_out(emulator, count, hook=CODEDEPLOY_HOOK, transition=LAUNCH):
    ec2 = emulator.client("ec2")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro"}
    )
    asg = emulator.client("autoscaling")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateName": "web-lt", "Version": "$Latest"},
        MinSize=0,
        MaxSize=10,
        DesiredCapacity=0,
        AvailabilityZones=[f"{emulator.region}a"],
    )
    asg.put_lifecycle_hook(
        AutoScalingGroupName="web", LifecycleHookName=hook, LifecycleTransition=transition, HeartbeatTimeout=3600
    )
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=count)
    return asg


def states(asg):
    instances = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]["Instances"]
    return {i["InstanceId"]: i["LifecycleState"] for i in instances}


TASK = """\
- name: complete
  bluegreen.aws.lifecycle_action:
    group_name: web
    poll_interval: 1
"""


def test_three_stuck_instances_go_in_service_and_a_rerun_changes_nothing(emulator, tmp_path):
    asg = scale_out(emulator, 3)
    assert set(states(asg).values()) == {"Pending:Wait"}
    emulator.admin("calls", "DELETE")
    rc, results, unused_report = run_playbook(TASK, emulator.endpoint, tmp_path)
    calls = emulator.calls()  # before this test makes calls of its own
    result = results["complete"]
    assert rc == 0, result
    assert result["changed"] is True
    assert [i["action"] for i in result["instances"]] == ["completed"] * 3
    assert {i["final_state"] for i in result["instances"]} == {"InService"}
    assert all(i["hooks"] == [CODEDEPLOY_HOOK] for i in result["instances"])
    assert set(states(asg).values()) == {"InService"}
    assert calls["autoscaling.CompleteLifecycleAction"] == 3
    # one describe to find them, one per wait poll: not one per instance
    assert calls["autoscaling.DescribeAutoScalingGroups"] == 2

    rc, results, unused_report = run_playbook(TASK, emulator.endpoint, tmp_path)
    assert rc == 0 and results["complete"]["changed"] is False and results["complete"]["instances"] == []


def test_check_mode_completes_nothing(emulator, tmp_path):
    asg = scale_out(emulator, 2)
    emulator.admin("calls", "DELETE")
    rc, results, unused_report = run_playbook(TASK, emulator.endpoint, tmp_path, check=True)
    assert rc == 0 and results["complete"]["changed"] is True
    assert {i["action"] for i in results["complete"]["instances"]} == {"would_complete"}
    assert set(states(asg).values()) == {"Pending:Wait"}
    assert "autoscaling.CompleteLifecycleAction" not in emulator.calls()


def test_throttled_completions_are_retried(emulator, tmp_path):
    asg = scale_out(emulator, 1)
    emulator.fault(operation="CompleteLifecycleAction", code="Throttling", status=400, count=2)
    rc, results, unused_report = run_playbook(TASK, emulator.endpoint, tmp_path)
    assert rc == 0, results["complete"]
    assert set(states(asg).values()) == {"InService"}
    assert emulator.calls()["autoscaling.CompleteLifecycleAction"] == 3


@pytest.fixture
def health_server():
    """Per-instance health: /<instance id>/health answers 200 for ids in .healthy, 503 otherwise."""

    class Handler(http.server.BaseHTTPRequestHandler):
        healthy = set()

        def do_GET(self):
            instance = self.path.strip("/").split("/")[0]
            self.send_response(200 if instance in type(self).healthy else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Handler.url = f"http://127.0.0.1:{server.server_port}/{{instance_id}}/health"
    yield Handler
    server.shutdown()


def test_health_gate_continues_the_healthy_and_abandons_the_broken(emulator, tmp_path, health_server):
    asg = scale_out(emulator, 2)
    good, bad = sorted(states(asg))
    health_server.healthy.add(good)
    task = f"""\
- name: complete
  bluegreen.aws.lifecycle_action:
    group_name: web
    poll_interval: 1
    health_check:
      url: "{health_server.url}"
      interval: 1
      failure_threshold: 2
      on_failure: abandon
"""
    rc, results, unused_report = run_playbook(task, emulator.endpoint, tmp_path)
    assert rc == 0, results["complete"]
    by_id = {i["instance_id"]: i for i in results["complete"]["instances"]}
    assert by_id[good]["action"] == "completed" and by_id[good]["final_state"] == "InService"
    assert by_id[bad]["action"] == "abandoned_by_gate" and by_id[bad]["gate"]["verdict"] == "fail"
    now = states(asg)
    assert now[good] == "InService" and bad not in now  # abandoned, and the group launched a replacement
    assert sorted(now.values()) == ["InService", "Pending:Wait"]


def test_codedeploys_hook_is_not_completed_unchecked_during_its_deployment(emulator, revisions, tmp_path):
    """A scale-out while a deployment waits in Ready: completing CodeDeploy's hook with no check is refused."""
    f = fleet(emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60})
    active = deploy(f, "app-good.zip")
    wait_status(f, active, ("Ready",))
    f["asg"].set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    deadline = time.monotonic() + 20
    while "Pending:Wait" not in states(f["asg"]).values():
        assert time.monotonic() < deadline, states(f["asg"])
        time.sleep(0.1)
    emulator.admin("calls", "DELETE")
    rc, results, unused_report = run_playbook(TASK, emulator.endpoint, tmp_path)
    assert rc != 0, results["complete"]
    message = results["complete"]["msg"]
    assert "is CodeDeploy's own launch hook and deployment " + active + " is active" in message
    assert "autoscaling.CompleteLifecycleAction" not in emulator.calls()
    assert "Pending:Wait" in states(f["asg"]).values()
