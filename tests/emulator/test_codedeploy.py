"""CodeDeploy blue/green (COPY_AUTO_SCALING_GROUP) on the emulator, proved with plain boto3 calls."""

import time

import botocore.exceptions
import pytest
from cdfleet import deploy
from cdfleet import fleet
from cdfleet import registered
from cdfleet import status
from cdfleet import targets
from cdfleet import wait_status

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
