"""The emulator's lifecycle hooks, proved with plain boto3 calls."""

import os
import sys
import time

import botocore.config
import botocore.exceptions
import moto
import pytest

EMULATOR_PATH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, EMULATOR_PATH)
import bgemu  # noqa: E402

LAUNCH = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATE = "autoscaling:EC2_INSTANCE_TERMINATING"


def group(emulator, name="web", size=0, hooks=()):
    ec2 = emulator.client("ec2")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt", LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro"}
    )
    asg = emulator.client("autoscaling")
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Latest"},
        MinSize=0,
        MaxSize=10,
        DesiredCapacity=size,
        AvailabilityZones=[f"{emulator.region}a"],
    )
    for hook_name, transition, timeout, default in hooks:
        asg.put_lifecycle_hook(
            AutoScalingGroupName=name,
            LifecycleHookName=hook_name,
            LifecycleTransition=transition,
            HeartbeatTimeout=timeout,
            DefaultResult=default,
        )
    return asg


def states(asg, name="web"):
    instances = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]["Instances"]
    return {i["InstanceId"]: i["LifecycleState"] for i in instances}


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_scale_out_waits_in_pending_wait_until_continued(emulator):
    asg = group(emulator, hooks=[("warm-up", LAUNCH, 3600, "ABANDON")])
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=2)
    first = states(asg)
    assert list(first.values()) == ["Pending:Wait", "Pending:Wait"]
    one, two = sorted(first)
    asg.complete_lifecycle_action(
        AutoScalingGroupName="web", LifecycleHookName="warm-up", InstanceId=one, LifecycleActionResult="CONTINUE"
    )
    assert states(asg) == {one: "InService", two: "Pending:Wait"}
    # the desired capacity counts waiting instances: no extra launch
    assert len(states(asg)) == 2


def test_complete_by_token(emulator):
    asg = group(emulator, hooks=[("warm-up", LAUNCH, 3600, "ABANDON")])
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    (action,) = emulator.admin("lifecycle-actions")
    asg.complete_lifecycle_action(
        AutoScalingGroupName="web",
        LifecycleHookName="warm-up",
        LifecycleActionToken=action["LifecycleActionToken"],
        LifecycleActionResult="CONTINUE",
    )
    assert states(asg) == {action["InstanceId"]: "InService"}


def test_abandon_terminates_and_the_group_launches_a_replacement(emulator):
    asg = group(emulator, hooks=[("warm-up", LAUNCH, 3600, "CONTINUE")])
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    (bad,) = states(asg)
    asg.complete_lifecycle_action(
        AutoScalingGroupName="web", LifecycleHookName="warm-up", InstanceId=bad, LifecycleActionResult="ABANDON"
    )
    now = states(asg)
    assert bad not in now and list(now.values()) == ["Pending:Wait"]
    reservations = emulator.client("ec2").describe_instances(InstanceIds=[bad])["Reservations"]
    assert reservations[0]["Instances"][0]["State"]["Name"] == "terminated"


def test_every_hook_must_complete(emulator):
    asg = group(emulator, hooks=[("a", LAUNCH, 3600, "ABANDON"), ("b", LAUNCH, 3600, "ABANDON")])
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    (iid,) = states(asg)
    asg.complete_lifecycle_action(
        AutoScalingGroupName="web", LifecycleHookName="a", InstanceId=iid, LifecycleActionResult="CONTINUE"
    )
    assert states(asg) == {iid: "Pending:Wait"}
    asg.complete_lifecycle_action(
        AutoScalingGroupName="web", LifecycleHookName="b", InstanceId=iid, LifecycleActionResult="CONTINUE"
    )
    assert states(asg) == {iid: "InService"}


def test_completing_an_action_that_no_longer_exists_is_the_aws_error(emulator):
    asg = group(emulator, size=1)
    (iid,) = states(asg)
    with pytest.raises(botocore.exceptions.ClientError) as error:
        asg.complete_lifecycle_action(
            AutoScalingGroupName="web", LifecycleHookName="warm-up", InstanceId=iid, LifecycleActionResult="CONTINUE"
        )
    assert error.value.response["Error"]["Code"] == "ValidationError"
    assert error.value.response["Error"]["Message"] == f"No active Lifecycle Action found with instance ID {iid}"


@pytest.mark.parametrize("default, expected", [("CONTINUE", "InService"), ("ABANDON", "replaced")])
def test_hook_timeout_applies_the_default_result(emulator, default, expected):
    asg = group(emulator, hooks=[("warm-up", LAUNCH, 30, default)])  # 30 AWS seconds = 0.3 s at scale 0.01
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    (iid,) = states(asg)
    if expected == "InService":
        wait_for(lambda: states(asg) == {iid: "InService"})
    else:
        wait_for(lambda: iid not in states(asg))
        wait_for(lambda: list(states(asg).values()) == ["Pending:Wait"])  # the replacement waits too


def test_heartbeat_extends_the_wait(emulator):
    asg = group(emulator, hooks=[("warm-up", LAUNCH, 60, "CONTINUE")])  # 0.6 s real
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    (iid,) = states(asg)
    for _beat in range(4):  # 4 x 0.3 s = 1.2 s, twice the timeout, kept waiting by heartbeats
        time.sleep(0.3)
        asg.record_lifecycle_action_heartbeat(AutoScalingGroupName="web", LifecycleHookName="warm-up", InstanceId=iid)
    assert states(asg) == {iid: "Pending:Wait"}
    wait_for(lambda: states(asg) == {iid: "InService"})


def test_terminating_hook_holds_in_terminating_wait(emulator):
    asg = group(emulator, size=1, hooks=[("drain", TERMINATE, 3600, "CONTINUE")])
    (iid,) = states(asg)
    asg.terminate_instance_in_auto_scaling_group(InstanceId=iid, ShouldDecrementDesiredCapacity=True)
    assert states(asg) == {iid: "Terminating:Wait"}
    asg.complete_lifecycle_action(
        AutoScalingGroupName="web", LifecycleHookName="drain", InstanceId=iid, LifecycleActionResult="CONTINUE"
    )
    assert states(asg) == {}


def test_faults_are_injected_and_calls_counted(emulator):
    asg = group(emulator, size=0)
    emulator.admin("calls", "DELETE")
    emulator.fault(operation="DescribeAutoScalingGroups", code="Throttling", status=400, count=2)
    raw = emulator.client("autoscaling", config=botocore.config.Config(retries={"total_max_attempts": 1}))
    for _attempt in range(2):
        with pytest.raises(botocore.exceptions.ClientError, match="Throttling"):
            raw.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])
    assert states(asg) == {}  # the third call goes through
    calls = emulator.calls()
    assert calls["autoscaling.DescribeAutoScalingGroups"] >= 3


def test_moto_is_the_version_the_extension_was_written_for(emulator):
    """An upgrade of moto fails here, loudly, until every patch has been checked against it."""
    assert emulator.admin("status")["moto"] == moto.__version__
    bgemu.check_moto()  # raises when the installed moto is not bgemu.MOTO_VERSION
    with open(os.path.join(EMULATOR_PATH, "..", "..", "requirements-dev.txt")) as f:
        assert f"moto[server]=={bgemu.MOTO_VERSION}" in f.read()


def test_scale_in_holds_the_leaving_instance_in_terminating_wait(emulator):
    asg = group(emulator, size=2, hooks=[("drain", TERMINATE, 3600, "CONTINUE")])
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    now = states(asg)
    assert sorted(now.values()) == ["InService", "Terminating:Wait"]
    leaving = next(i for i, s in now.items() if s == "Terminating:Wait")
    asg.complete_lifecycle_action(
        AutoScalingGroupName="web", LifecycleHookName="drain", InstanceId=leaving, LifecycleActionResult="CONTINUE"
    )
    assert list(states(asg).values()) == ["InService"] and leaving not in states(asg)
