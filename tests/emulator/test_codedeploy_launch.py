"""CodeDeploy's automatic deployment on an Auto Scaling scale-out (creator ``autoscaling``), proved with boto3 calls.

User guide, "Integrating CodeDeploy with Amazon EC2 Auto Scaling": the launch hook notifies CodeDeploy, which deploys
the deployment group's last successful revision to the new instance and completes the hook with CONTINUE or ABANDON.
"""

import time

import botocore.exceptions
import pytest
from cdfleet import deploy
from cdfleet import fleet
from cdfleet import run_in
from cdfleet import targets
from cdfleet import wait_status

LAUNCH_ORDER = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
]


def instances(f, group):
    found = f["asg"].describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    return {i["InstanceId"]: i["LifecycleState"] for i in (found[0]["Instances"] if found else [])}


def until(check, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached"
        time.sleep(0.05)


def launches(f):
    """{deployment id: info} of the deployments Auto Scaling made (creator autoscaling)."""
    ids = f["cd"].list_deployments(applicationName="web", deploymentGroupName="web-dg")["deployments"]
    infos = f["cd"].batch_get_deployments(deploymentIds=ids)["deploymentsInfo"] if ids else []
    return {d["deploymentId"]: d for d in infos if d["creator"] == "autoscaling"}


def released(emulator, key="app-good.zip", termination_minutes=60):
    """A fleet released with ``key``, returned in its termination wait (the deployment group still names "web")."""
    f = fleet(emulator, termination_minutes=termination_minutes)
    release = deploy(f, key)
    until(
        lambda: f["cd"].get_deployment(deploymentId=release)["deploymentInfo"]["instanceTerminationWaitTimeStarted"],
        what="termination wait",
    )
    f.update(release=release, green=f"CodeDeploy_web-dg_{release}")
    return f


def test_scale_out_gets_the_last_successful_revision_through_an_autoscaling_deployment(emulator, revisions):
    f = released(emulator)
    green = f["green"]
    before = set(instances(f, green))

    # 1. the termination wait: the deployment group names the original group, not green. A scale-out of green is
    # held by CodeDeploy's hook, and CodeDeploy deploys nothing to it: it waits until the hook times out (600 s,
    # ABANDON), and the group launches another that waits in turn
    f["asg"].set_desired_capacity(AutoScalingGroupName=green, DesiredCapacity=3)
    (stuck,) = set(instances(f, green)) - before
    assert instances(f, green)[stuck] == "Pending:Wait"
    time.sleep(1.0)  # 100 AWS seconds: CodeDeploy would have started by now
    assert launches(f) == {} and instances(f, green)[stuck] == "Pending:Wait"
    replacement = until(lambda: set(instances(f, green)) - before - {stuck}, what="the hook's timeout")
    assert stuck not in instances(f, green)  # abandoned at the heartbeat timeout
    assert [instances(f, green)[i] for i in replacement] == ["Pending:Wait"]
    assert launches(f) == {}

    # 2. the deployment ends: the deployment group names green, and a scale-out of green gets a deployment
    f["cd"].continue_deployment(deploymentId=f["release"], deploymentWaitType="TERMINATION_WAIT")
    wait_status(f, f["release"], ("Succeeded",))
    waiting = set(instances(f, green))
    f["asg"].set_desired_capacity(AutoScalingGroupName=green, DesiredCapacity=4)
    (new,) = set(instances(f, green)) - waiting
    assert instances(f, green)[new] == "Pending:Wait"
    (launch,) = until(lambda: launches(f), what="an autoscaling deployment")
    info = f["cd"].get_deployment(deploymentId=launch)["deploymentInfo"]
    assert info["revision"]["s3Location"]["key"] == "app-good.zip"  # the last successful revision
    assert info["status"] in ("Created", "Queued", "InProgress")

    # 3. while it runs it is the group's active deployment: a user's CreateDeployment is refused, naming it
    with pytest.raises(botocore.exceptions.ClientError) as error:
        deploy(f, "app-v2.zip")
    assert error.value.response["Error"]["Code"] == "DeploymentLimitExceededException"
    assert launch in error.value.response["Error"]["Message"]
    assert instances(f, green)[new] == "Pending:Wait"  # held until the deployment completes the hook

    # 4. it succeeds: CONTINUE, InService, and the instance serves the released version
    assert wait_status(f, launch, ("Succeeded", "Failed", "Stopped"))[-1] == "Succeeded"
    (target,) = targets(f, launch).values()
    assert target["targetId"] == new
    assert [e["lifecycleEventName"] for e in target["lifecycleEvents"]] == LAUNCH_ORDER
    assert {e["status"] for e in target["lifecycleEvents"]} <= {"Succeeded", "Skipped"}
    until(lambda: instances(f, green)[new] == "InService", what="InService")
    answer = run_in(emulator, new, "curl", "-s", "http://127.0.0.1:8080/version")
    assert "1.0.0" in answer["stdout"], answer


def test_a_failing_launch_deployment_abandons_the_instance(emulator, revisions):
    """The last successful revision no longer passes ValidateService (user guide, troubleshooting: a scale-out
    deploys the last successful revision; when it fails, Auto Scaling terminates the instance and launches again)."""
    f = released(emulator, termination_minutes=0)
    wait_status(f, f["release"], ("Succeeded",))
    green = f["green"]
    emulator.admin("hook-faults", "POST", {"event": "ValidateService", "key": "app-good.zip", "message": "down"})
    before = set(instances(f, green))
    f["asg"].set_desired_capacity(AutoScalingGroupName=green, DesiredCapacity=3)
    (new,) = set(instances(f, green)) - before
    (launch,) = until(lambda: launches(f), what="an autoscaling deployment")
    assert wait_status(f, launch, ("Succeeded", "Failed", "Stopped"))[-1] == "Failed"
    info = f["cd"].get_deployment(deploymentId=launch)["deploymentInfo"]
    assert "ValidateService failed on " + new in info["errorInformation"]["message"]
    until(lambda: new not in instances(f, green), what="the instance abandoned")
    # Auto Scaling launches a replacement, and CodeDeploy deploys to it in turn
    until(lambda: len(launches(f)) == 2, what="a second autoscaling deployment")
    assert not (set(instances(f, green)) - before) & {new}
