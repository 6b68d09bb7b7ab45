"""CodeDeploy blue/green (COPY_AUTO_SCALING_GROUP) on the emulator, proved with plain boto3 calls."""

import os
import socket
import subprocess
import sys
import time

import botocore.exceptions
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_APP = os.path.join(ROOT, "roles", "local_bluegreen", "files", "demo_app.py")
GREEN_ORDER = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def revisions(emulator):
    """Map S3 keys to real demo apps: "app-good.zip" healthy, "app-broken.zip" failing its health check."""
    procs = []
    for key, extra in (("app-good.zip", []), ("app-broken.zip", ["--fail"])):
        port = free_port()
        procs.append(subprocess.Popen([sys.executable, DEMO_APP, "--port", str(port), "--version", key, *extra]))
        emulator.admin("revisions", "POST", {"key": key, "endpoint": f"127.0.0.1:{port}"})
        if key == "app-good.zip":  # same healthy app, but its AfterInstall script fails
            emulator.admin(
                "revisions",
                "POST",
                {"key": "app-bad-install.zip", "endpoint": f"127.0.0.1:{port}", "fail_hook": "AfterInstall"},
            )
    time.sleep(0.5)
    yield
    for proc in procs:
        proc.terminate()
        proc.wait(5)


def fleet(emulator, ready=None, termination_minutes=1):
    ec2, elb, asg, cd = (emulator.client(s) for s in ("ec2", "elbv2", "autoscaling", "codedeploy"))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{emulator.region}a")["Subnet"][
        "SubnetId"
    ]
    tg = elb.create_target_group(Name="web-tg", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0][
        "TargetGroupArn"
    ]
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro"}
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateName": "web-lt", "Version": "$Latest"},
        MinSize=2,
        MaxSize=4,
        DesiredCapacity=2,
        VPCZoneIdentifier=subnet,
    )
    blue = [
        i["InstanceId"]
        for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]["Instances"]
    ]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": i} for i in blue])
    cd.create_application(applicationName="web", computePlatform="Server")
    config = {
        "terminateBlueInstancesOnDeploymentSuccess": {
            "action": "TERMINATE",
            "terminationWaitTimeInMinutes": termination_minutes,
        },
        "deploymentReadyOption": ready or {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
        "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"},
    }
    cd.create_deployment_group(
        applicationName="web",
        deploymentGroupName="web-dg",
        serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
        autoScalingGroups=["web"],
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        blueGreenDeploymentConfiguration=config,
        loadBalancerInfo={"targetGroupInfoList": [{"name": "web-tg"}]},
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"]},
    )
    return {"cd": cd, "asg": asg, "elb": elb, "tg": tg, "blue": blue}


def deploy(f, key):
    return f["cd"].create_deployment(
        applicationName="web",
        deploymentGroupName="web-dg",
        revision={"revisionType": "S3", "s3Location": {"bucket": "releases", "key": key, "bundleType": "zip"}},
    )["deploymentId"]


def status(f, deployment_id):
    return f["cd"].get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"]


def wait_status(f, deployment_id, wanted, timeout=20.0):
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        current = status(f, deployment_id)
        if not seen or seen[-1] != current:
            seen.append(current)
        if current in wanted:
            return seen
        assert time.monotonic() < deadline, f"still {current} (seen {seen})"
        time.sleep(0.02)


def registered(f):
    return sorted(
        t["Target"]["Id"]
        for t in f["elb"].describe_target_health(TargetGroupArn=f["tg"])["TargetHealthDescriptions"]
        if t["TargetHealth"]["State"] != "draining"
    )


def targets(f, deployment_id):
    ids = f["cd"].list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    found = f["cd"].batch_get_deployment_targets(deploymentId=deployment_id, targetIds=ids)["deploymentTargets"]
    return {t["instanceTarget"]["targetId"]: t["instanceTarget"] for t in found}


def test_success_moves_traffic_to_the_green_group_and_retires_blue(emulator, revisions):
    f = fleet(emulator)
    deployment_id = deploy(f, "app-good.zip")
    seen = wait_status(f, deployment_id, ("Succeeded", "Failed", "Stopped"))
    assert seen[-1] == "Succeeded" and "InProgress" in seen
    documented = ["Created", "Queued", "InProgress", "Succeeded"]
    assert [s for s in documented if s in seen] == seen  # every status seen, in the documented order
    green_name = f"CodeDeploy_web-dg_{deployment_id}"
    groups = {g["AutoScalingGroupName"]: g for g in f["asg"].describe_auto_scaling_groups()["AutoScalingGroups"]}
    assert set(groups) == {green_name}  # the original group is gone
    green = sorted(i["InstanceId"] for i in groups[green_name]["Instances"])
    assert registered(f) == green
    by_id = targets(f, deployment_id)
    assert [e["lifecycleEventName"] for e in by_id[green[0]]["lifecycleEvents"]] == GREEN_ORDER
    assert {e["status"] for e in by_id[green[0]]["lifecycleEvents"]} <= {"Succeeded", "Skipped"}
    assert by_id[f["blue"][0]]["instanceLabel"] == "Blue"
    assert [e["lifecycleEventName"] for e in by_id[f["blue"][0]]["lifecycleEvents"]] == [
        "BeforeBlockTraffic",
        "BlockTraffic",
        "AfterBlockTraffic",
    ]
    group = f["cd"].get_deployment_group(applicationName="web", deploymentGroupName="web-dg")["deploymentGroupInfo"]
    assert [g["name"] for g in group["autoScalingGroups"]] == [green_name]
    assert group["autoScalingGroups"][0]["hook"].startswith(
        "CodeDeploy-managed-automatic-launch-deployment-hook-web-dg-"
    )


def test_broken_version_fails_validate_service_and_rolls_back(emulator, revisions):
    f = fleet(emulator)
    deployment_id = deploy(f, "app-broken.zip")
    assert wait_status(f, deployment_id, ("Succeeded", "Failed", "Stopped"))[-1] == "Failed"
    info = f["cd"].get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert "ValidateService failed" in info["errorInformation"]["message"]
    assert registered(f) == sorted(f["blue"])  # traffic never left blue
    groups = [g["AutoScalingGroupName"] for g in f["asg"].describe_auto_scaling_groups()["AutoScalingGroups"]]
    assert groups == ["web"]  # green removed
    failed = [t for t in targets(f, deployment_id).values() if t["status"] == "Failed"]
    event = next(e for e in failed[0]["lifecycleEvents"] if e["lifecycleEventName"] == "ValidateService")
    assert event["status"] == "Failed"
    assert event["diagnostics"]["errorCode"] == "ScriptFailed"
    assert event["diagnostics"]["scriptName"] == "scripts/validate_service.sh"
    assert "503" in event["diagnostics"]["logTail"]


def test_ready_wait_holds_until_continued(emulator, revisions):
    f = fleet(emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60})
    deployment_id = deploy(f, "app-good.zip")
    wait_status(f, deployment_id, ("Ready",))
    time.sleep(0.3)
    assert status(f, deployment_id) == "Ready" and registered(f) == sorted(f["blue"])
    f["cd"].continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
    assert wait_status(f, deployment_id, ("Succeeded", "Failed", "Stopped"))[-1] == "Succeeded"


def test_ready_wait_timeout_stops_the_deployment(emulator, revisions):
    f = fleet(emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 1})
    deployment_id = deploy(f, "app-good.zip")
    assert wait_status(f, deployment_id, ("Succeeded", "Failed", "Stopped"))[-1] == "Stopped"
    assert registered(f) == sorted(f["blue"])


def test_stop_during_termination_wait_returns_traffic_to_blue(emulator, revisions):
    f = fleet(emulator, termination_minutes=60)
    deployment_id = deploy(f, "app-good.zip")
    deadline = time.monotonic() + 20
    while registered(f) == sorted(f["blue"]):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert status(f, deployment_id) == "InProgress"  # traffic on green, blue kept for the termination wait
    answer = f["cd"].stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
    assert answer["status"] == "Succeeded"
    assert status(f, deployment_id) == "Stopped"
    assert registered(f) == sorted(f["blue"])
    groups = [g["AutoScalingGroupName"] for g in f["asg"].describe_auto_scaling_groups()["AutoScalingGroups"]]
    assert groups == ["web"]


def test_second_deployment_hits_the_deployment_limit(emulator, revisions):
    f = fleet(emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60})
    first = deploy(f, "app-good.zip")
    with pytest.raises(botocore.exceptions.ClientError) as error:
        deploy(f, "app-good.zip")
    assert error.value.response["Error"]["Code"] == "DeploymentLimitExceededException"
    assert first in error.value.response["Error"]["Message"]


def test_codedeploy_adds_its_launch_hook_so_a_scale_out_waits(emulator):
    """Seed 000, challenge 4: a scale-out with no deployment sits in Pending:Wait behind CodeDeploy's hook."""
    f = fleet(emulator)
    hooks = f["asg"].describe_lifecycle_hooks(AutoScalingGroupName="web")["LifecycleHooks"]
    assert [
        h["LifecycleHookName"].startswith("CodeDeploy-managed-automatic-launch-deployment-hook-") for h in hooks
    ] == [True]
    f["asg"].set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    instances = f["asg"].describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0][
        "Instances"
    ]
    assert sorted(i["LifecycleState"] for i in instances) == ["InService", "InService", "Pending:Wait"]


def test_built_in_deployment_configs_and_unknown_config(emulator):
    cd = emulator.client("codedeploy")
    assert set(cd.list_deployment_configs()["deploymentConfigsList"]) >= {
        "CodeDeployDefault.OneAtATime",
        "CodeDeployDefault.HalfAtATime",
        "CodeDeployDefault.AllAtOnce",
    }
    info = cd.get_deployment_config(deploymentConfigName="CodeDeployDefault.HalfAtATime")["deploymentConfigInfo"]
    assert info["minimumHealthyHosts"] == {"type": "FLEET_PERCENT", "value": 50}
    with pytest.raises(cd.exceptions.DeploymentConfigDoesNotExistException):
        cd.get_deployment_config(deploymentConfigName="CodeDeployDefault.Canary10Percent5Minutes")


def test_update_and_delete_deployment_group_move_codedeploys_hook(emulator):
    f = fleet(emulator)
    asg, cd = f["asg"], f["cd"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web2",
        LaunchTemplate={"LaunchTemplateName": "web-lt", "Version": "$Latest"},
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        AvailabilityZones=[f"{emulator.region}a"],
    )
    answer = cd.update_deployment_group(
        applicationName="web",
        currentDeploymentGroupName="web-dg",
        autoScalingGroups=["web2"],
        deploymentConfigName="CodeDeployDefault.OneAtATime",
    )
    assert answer["hooksNotCleanedUp"] == []
    group = cd.get_deployment_group(applicationName="web", deploymentGroupName="web-dg")["deploymentGroupInfo"]
    assert [g["name"] for g in group["autoScalingGroups"]] == ["web2"]
    assert group["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"
    assert asg.describe_lifecycle_hooks(AutoScalingGroupName="web")["LifecycleHooks"] == []
    assert len(asg.describe_lifecycle_hooks(AutoScalingGroupName="web2")["LifecycleHooks"]) == 1
    with pytest.raises(cd.exceptions.DeploymentConfigDoesNotExistException):
        cd.update_deployment_group(
            applicationName="web", currentDeploymentGroupName="web-dg", deploymentConfigName="Nope"
        )
    cd.delete_deployment_group(applicationName="web", deploymentGroupName="web-dg")
    assert asg.describe_lifecycle_hooks(AutoScalingGroupName="web2")["LifecycleHooks"] == []
    assert cd.list_deployment_groups(applicationName="web")["deploymentGroups"] == []
    cd.delete_application(applicationName="web")
    assert cd.list_applications()["applications"] == []


def test_a_failing_after_install_script_fails_with_its_diagnostics(emulator, revisions):
    f = fleet(emulator)
    deployment_id = deploy(f, "app-bad-install.zip")
    assert wait_status(f, deployment_id, ("Succeeded", "Failed", "Stopped"))[-1] == "Failed"
    target_id = f["cd"].list_deployment_targets(deploymentId=deployment_id)["targetIds"][0]
    target = f["cd"].get_deployment_target(deploymentId=deployment_id, targetId=target_id)["deploymentTarget"]
    events = {e["lifecycleEventName"]: e for e in target["instanceTarget"]["lifecycleEvents"]}
    assert events["AfterInstall"]["status"] == "Failed"
    assert events["AfterInstall"]["diagnostics"]["scriptName"] == "scripts/after_install.sh"
    assert events["ApplicationStart"]["status"] == "Pending"  # nothing ran after the failure
    assert registered(f) == sorted(f["blue"])


def test_list_deployments_filters_by_the_real_statuses(emulator, revisions):
    f = fleet(emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60})
    first = deploy(f, "app-broken.zip")
    wait_status(f, first, ("Failed",))
    second = deploy(f, "app-good.zip")
    wait_status(f, second, ("Ready",))

    def listed(*statuses):
        return f["cd"].list_deployments(
            applicationName="web", deploymentGroupName="web-dg", includeOnlyStatuses=list(statuses)
        )["deployments"]

    assert listed("Ready", "InProgress", "Queued", "Created") == [second]
    assert listed("Failed") == [first]
    assert sorted(listed()) == sorted([first, second])
