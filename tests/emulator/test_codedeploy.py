"""CodeDeploy blue/green (COPY_AUTO_SCALING_GROUP) on the emulator, proved with plain boto3 calls."""

import time

import botocore.exceptions
import pytest
from cdfleet import alarm
from cdfleet import deploy
from cdfleet import fleet
from cdfleet import health
from cdfleet import registered
from cdfleet import status
from cdfleet import targets
from cdfleet import wait_status

FINISHED = ("Succeeded", "Failed", "Stopped")
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
    f = fleet(emulator, blue_revision="app-good.zip")  # the rollback's AllowTraffic waits for blue to be healthy
    deployment_id = deploy(f, "app-broken.zip")
    assert wait_status(f, deployment_id, ("Succeeded", "Failed", "Stopped"))[-1] == "Failed"
    info = f["cd"].get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert "ValidateService failed" in info["errorInformation"]["message"]
    # DEPLOYMENT_FAILURE rolls back through a new deployment that takes its own time
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    assert wait_status(f, rollback_id, FINISHED)[-1] == "Succeeded"
    rollback = f["cd"].get_deployment(deploymentId=rollback_id)["deploymentInfo"]
    # six events, 5 AWS seconds apart: 0.3 s at time scale 0.01
    assert (rollback["completeTime"] - rollback["startTime"]).total_seconds() >= 0.25
    assert registered(f) == sorted(f["blue"])  # traffic never left blue
    groups = [g["AutoScalingGroupName"] for g in f["asg"].describe_auto_scaling_groups()["AutoScalingGroups"]]
    assert groups == ["web"]  # green removed by the rollback
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
    f = fleet(
        emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 1}, blue_revision="app-good.zip"
    )
    deployment_id = deploy(f, "app-good.zip")
    assert wait_status(f, deployment_id, ("Succeeded", "Failed", "Stopped"))[-1] == "Stopped"
    info = f["cd"].get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["errorInformation"]["code"] == "TIMEOUT"
    assert wait_status(f, info["rollbackInfo"]["rollbackDeploymentId"], FINISHED)[-1] == "Succeeded"
    assert registered(f) == sorted(f["blue"])


def test_stop_during_termination_wait_returns_traffic_to_blue(emulator, revisions):
    f = fleet(emulator, termination_minutes=60, blue_revision="app-good.zip")
    deployment_id = deploy(f, "app-good.zip")
    deadline = time.monotonic() + 90
    while registered(f) == sorted(f["blue"]):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert status(f, deployment_id) == "InProgress"  # traffic on green, blue kept for the termination wait
    green = [t for t, target in targets(f, deployment_id).items() if target["instanceLabel"] == "Green"]
    answer = f["cd"].stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
    assert answer["status"] == "Pending"
    assert wait_status(f, deployment_id, FINISHED)[-1] == "Stopped"
    rollback_id = f["cd"].get_deployment(deploymentId=deployment_id)["deploymentInfo"]["rollbackInfo"][
        "rollbackDeploymentId"
    ]
    assert wait_status(f, rollback_id, FINISHED)[-1] == "Succeeded"
    assert registered(f) == sorted(f["blue"])  # traffic back on blue...
    # ...and green drained: the rollback's BlockTraffic lasted the deregistration delay (60 s: 0.6 s), then removed
    assert not set(green) & set(health(f))
    rollback_targets = targets(f, rollback_id)
    for instance_id in green:
        block = next(
            e for e in rollback_targets[instance_id]["lifecycleEvents"] if e["lifecycleEventName"] == "BlockTraffic"
        )
        assert (block["endTime"] - block["startTime"]).total_seconds() >= 60 * 0.01
    groups = [g["AutoScalingGroupName"] for g in f["asg"].describe_auto_scaling_groups()["AutoScalingGroups"]]
    assert groups == ["web"]


def test_allow_traffic_waits_for_green_to_pass_health_checks_and_fails_after_the_hour(emulator, revisions):
    """AllowTraffic registers green and waits for it to pass the target group's health checks; green that passed
    ValidateService but never passes them (here forced unhealthy: a health check that disagrees with the app, the
    cause AWS's troubleshooting guide names) fails AllowTraffic after CodeDeploy's one-hour lifecycle event timeout,
    with nothing in the logs, and the deployment fails and rolls back to blue, which kept the traffic."""
    f = fleet(emulator, blue_revision="app-good.zip")
    emulator.admin("time-scale", "POST", {"scale": 0.001})  # the hour lasts 3.6 s (hook scripts run in real time)
    deployment_id = deploy(f, "app-v2.zip")
    deadline = time.monotonic() + 90
    green = []
    while not green:
        assert time.monotonic() < deadline
        green = sorted(i for i, t in targets(f, deployment_id).items() if t["instanceLabel"] == "Green")
    for instance_id in green:
        emulator.admin("health", "POST", {"instance_id": instance_id, "healthy": False})
    while not set(green) <= set(registered(f)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    registered_at = time.monotonic()
    while {health(f)[i] for i in green} != {"unhealthy"}:
        assert time.monotonic() < deadline, health(f)
        time.sleep(0.01)
    allow = [
        next(e for e in targets(f, deployment_id)[i]["lifecycleEvents"] if e["lifecycleEventName"] == "AllowTraffic")
        for i in green
    ]
    assert {e["status"] for e in allow} == {"InProgress"} and status(f, deployment_id) == "InProgress"
    assert wait_status(f, deployment_id, FINISHED)[-1] == "Failed"
    assert time.monotonic() - registered_at > 0.9 * 3600 * 0.001
    info = f["cd"].get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    assert "AllowTraffic failed" in info["errorInformation"]["message"]
    for instance_id in green:
        target = targets(f, deployment_id)[instance_id]
        event = next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == "AllowTraffic")
        assert target["status"] == "Failed" and event["status"] == "Failed"
        assert event["diagnostics"]["errorCode"] == "UnknownError" and event["diagnostics"]["logTail"] == ""
        assert "3600 seconds" in event["diagnostics"]["message"]
    assert wait_status(f, info["rollbackInfo"]["rollbackDeploymentId"], FINISHED)[-1] == "Succeeded"
    assert registered(f) == sorted(f["blue"]) and {health(f)[i] for i in f["blue"]} == {"healthy"}


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
    """A hook fault (admin call): the agent runs a failing command in place of the revision's AfterInstall script."""
    f = fleet(emulator)
    emulator.admin("hook-faults", "POST", {"event": "AfterInstall", "key": "app-good.zip", "message": "disk full"})
    deployment_id = deploy(f, "app-good.zip")
    assert wait_status(f, deployment_id, ("Succeeded", "Failed", "Stopped"))[-1] == "Failed"
    target_id = f["cd"].list_deployment_targets(deploymentId=deployment_id)["targetIds"][0]
    target = f["cd"].get_deployment_target(deploymentId=deployment_id, targetId=target_id)["deploymentTarget"]
    events = {e["lifecycleEventName"]: e for e in target["instanceTarget"]["lifecycleEvents"]}
    assert events["AfterInstall"]["status"] == "Failed"
    assert events["AfterInstall"]["diagnostics"]["scriptName"] == "scripts/after_install.sh"
    assert events["AfterInstall"]["diagnostics"]["errorCode"] == "ScriptFailed"
    assert events["AfterInstall"]["diagnostics"]["logTail"].endswith("[stderr]disk full\n")
    assert events["BeforeInstall"]["status"] == "Succeeded"  # the real script ran before it
    assert events["ApplicationStart"]["status"] == "Pending"  # nothing ran after the failure
    assert registered(f) == sorted(f["blue"])


def test_list_deployments_filters_by_the_real_statuses(emulator, revisions):
    f = fleet(
        emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60}, blue_revision="app-good.zip"
    )
    first = deploy(f, "app-broken.zip")
    wait_status(f, first, ("Failed",))
    rollback = f["cd"].get_deployment(deploymentId=first)["deploymentInfo"]["rollbackInfo"]["rollbackDeploymentId"]
    wait_status(f, rollback, ("Succeeded",))
    second = deploy(f, "app-good.zip")
    wait_status(f, second, ("Ready",))

    def listed(*statuses):
        return f["cd"].list_deployments(
            applicationName="web", deploymentGroupName="web-dg", includeOnlyStatuses=list(statuses)
        )["deployments"]

    assert listed("Ready", "InProgress", "Queued", "Created") == [second]
    assert listed("Failed") == [first]
    assert listed("Succeeded") == [rollback]  # the rollback is a deployment of the group too
    assert sorted(listed()) == sorted([first, rollback, second])


def stop_at_ready(emulator, **stop):
    """A deployment held at Ready, then StopDeployment: (fleet, deployment id, StopDeployment's answer).

    From Ready on, time runs at 0.05 (an event lasts 0.25 s), so a busy host still sees the rollback run.  Blue
    answers (a rollback's AllowTraffic waits for it to pass the health checks)."""
    f = fleet(
        emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60}, blue_revision="app-good.zip"
    )
    deployment_id = deploy(f, "app-good.zip")
    wait_status(f, deployment_id, ("Ready",))
    emulator.admin("time-scale", "POST", {"scale": 0.05})
    return f, deployment_id, f["cd"].stop_deployment(deploymentId=deployment_id, **stop)


def limit_error(f):
    with pytest.raises(f["cd"].exceptions.DeploymentLimitExceededException) as error:
        deploy(f, "app-good.zip")
    return error.value.response["Error"]["Message"]


def test_stop_is_pending_and_the_deployment_stops_later(emulator, revisions):
    f = fleet(emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60})
    deployment_id = deploy(f, "app-good.zip")
    wait_status(f, deployment_id, ("Ready",))
    emulator.admin("time-scale", "POST", {"scale": 0.1})  # the stop's 30 AWS seconds last 3 s, even on a busy host
    answer = f["cd"].stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
    emulator.admin("time-scale", "POST", {"scale": 0.01})
    started = time.monotonic()
    assert answer["status"] == "Pending" and deployment_id in answer["statusMessage"]
    assert status(f, deployment_id) == "Ready"  # not Stopped yet: the stop is asynchronous
    assert deployment_id in limit_error(f)  # still the group's active deployment
    seen = wait_status(f, deployment_id, FINISHED)
    assert seen[-1] == "Stopped" and time.monotonic() - started > 1.5
    info = f["cd"].get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["errorInformation"]["code"] == "MANUAL_STOP"


def test_rollback_after_a_stop_is_a_new_deployment_that_takes_time(emulator, revisions):
    f, deployment_id, unused_answer = stop_at_ready(emulator, autoRollbackEnabled=True)
    green = f"CodeDeploy_web-dg_{deployment_id}"
    wait_status(f, deployment_id, ("Stopped",))
    info = f["cd"].get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    assert rollback_id != deployment_id and rollback_id.startswith("d-") and info["rollbackInfo"]["rollbackMessage"]
    rollback = f["cd"].get_deployment(deploymentId=rollback_id)["deploymentInfo"]
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == deployment_id
    assert deployment_id in rollback["rollbackInfo"]["rollbackMessage"]
    listed = f["cd"].list_deployments(applicationName="web", deploymentGroupName="web-dg")["deployments"]
    assert sorted(listed) == sorted([deployment_id, rollback_id])
    assert rollback_id in limit_error(f)  # the rollback is the group's active deployment while it runs
    seen = wait_status(f, rollback_id, FINISHED)
    assert "InProgress" in seen and seen[-1] == "Succeeded"  # it took time: seen running
    by_id = targets(f, rollback_id)
    blue = {i: t for i, t in by_id.items() if i in f["blue"]}
    assert sorted(blue) == sorted(f["blue"])
    for target in by_id.values():  # the roles swap: traffic allowed on blue, blocked on green
        events = [e["lifecycleEventName"] for e in target["lifecycleEvents"]]
        expected = ALLOW if target["targetId"] in blue else BLOCK
        assert events == expected and {e["status"] for e in target["lifecycleEvents"]} == {"Succeeded"}
        assert target["status"] == "Succeeded"
    assert len(by_id) == 2 * len(f["blue"])
    groups = [g["AutoScalingGroupName"] for g in f["asg"].describe_auto_scaling_groups()["AutoScalingGroups"]]
    assert groups == ["web"] and green not in groups
    assert registered(f) == sorted(f["blue"])
    info = f["cd"].get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert "succeeded" in info["rollbackInfo"]["rollbackMessage"]
    deploy(f, "app-good.zip")  # the group is free again


ALLOW = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
BLOCK = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]


def test_stop_without_rollback_starts_no_rollback_deployment(emulator, revisions):
    f, deployment_id, answer = stop_at_ready(emulator, autoRollbackEnabled=False)
    assert answer["status"] == "Pending"
    wait_status(f, deployment_id, ("Stopped",))
    info = f["cd"].get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert "rollbackDeploymentId" not in info.get("rollbackInfo", {})
    assert f["cd"].list_deployments(applicationName="web", deploymentGroupName="web-dg")["deployments"] == [
        deployment_id
    ]


def test_stop_and_continue_on_a_finished_deployment_raise_already_completed(emulator, revisions):
    f = fleet(emulator, termination_minutes=0)
    deployment_id = deploy(f, "app-good.zip")
    wait_status(f, deployment_id, FINISHED)
    with pytest.raises(f["cd"].exceptions.DeploymentAlreadyCompletedException):
        f["cd"].stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
    for wait_type in ("READY_WAIT", "TERMINATION_WAIT"):
        with pytest.raises(f["cd"].exceptions.DeploymentAlreadyCompletedException):
            f["cd"].continue_deployment(deploymentId=deployment_id, deploymentWaitType=wait_type)


def test_continue_outside_its_wait_raises_not_in_ready_state(emulator, revisions):
    f = fleet(emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60})
    deployment_id = deploy(f, "app-good.zip")
    with pytest.raises(f["cd"].exceptions.DeploymentIsNotInReadyStateException):
        f["cd"].continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")  # not Ready yet
    wait_status(f, deployment_id, ("Ready",))
    with pytest.raises(f["cd"].exceptions.DeploymentIsNotInReadyStateException):
        f["cd"].continue_deployment(deploymentId=deployment_id, deploymentWaitType="TERMINATION_WAIT")
    f["cd"].stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
    with pytest.raises(f["cd"].exceptions.DeploymentIsNotInReadyStateException):  # Ready, but being stopped
        f["cd"].continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
    assert status(f, deployment_id) == "Ready"


def test_an_alarm_stops_the_deployment_and_rolls_back(emulator, revisions):
    f = fleet(
        emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60}, blue_revision="app-good.zip"
    )
    f["cd"].update_deployment_group(
        applicationName="web",
        currentDeploymentGroupName="web-dg",
        alarmConfiguration={"enabled": True, "alarms": [{"name": "web-5xx"}]},
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]},
    )
    cloudwatch = emulator.client("cloudwatch")
    alarm(cloudwatch, "web-5xx", "OK")
    deployment_id = deploy(f, "app-good.zip")
    wait_status(f, deployment_id, ("Ready",))
    cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="5xx")
    assert wait_status(f, deployment_id, FINISHED)[-1] == "Stopped"
    info = f["cd"].get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["errorInformation"] == {"code": "ALARM_ACTIVE", "message": "Alarm activated: web-5xx"}
    assert wait_status(f, info["rollbackInfo"]["rollbackDeploymentId"], FINISHED)[-1] == "Succeeded"
    assert registered(f) == sorted(f["blue"])


def test_the_green_group_gets_codedeploys_launch_hook(emulator, revisions):
    f = fleet(emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60})
    deployment_id = deploy(f, "app-good.zip")
    wait_status(f, deployment_id, ("Ready",))
    green = f"CodeDeploy_web-dg_{deployment_id}"
    (hook,) = f["asg"].describe_lifecycle_hooks(AutoScalingGroupName=green)["LifecycleHooks"]
    (original,) = f["asg"].describe_lifecycle_hooks(AutoScalingGroupName="web")["LifecycleHooks"]
    assert hook["LifecycleHookName"] == original["LifecycleHookName"]
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    f["asg"].set_desired_capacity(AutoScalingGroupName=green, DesiredCapacity=3)  # a scale-out of green waits
    instances = f["asg"].describe_auto_scaling_groups(AutoScalingGroupNames=[green])["AutoScalingGroups"][0][
        "Instances"
    ]
    assert sorted(i["LifecycleState"] for i in instances) == ["InService", "InService", "Pending:Wait"]


def test_target_health_through_a_deployment_comes_from_real_checks(emulator, revisions):
    """Blue runs the good revision (installed by the agent) and is healthy; after AllowTraffic green is checked at its
    own address, and after BlockTraffic blue is draining in the whole-group answer, for the deregistration delay
    (300 s: 3 s)."""
    f = fleet(emulator, termination_minutes=60, blue_revision="app-good.zip", deregistration_delay=300)
    deadline = time.monotonic() + 90
    while set(health(f).values()) != {"healthy"}:
        assert time.monotonic() < deadline, health(f)
        time.sleep(0.02)
    deployment_id = deploy(f, "app-good.zip")
    while registered(f) == sorted(f["blue"]):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    green = [i for i in targets(f, deployment_id) if i not in f["blue"]]
    while {health(f).get(i) for i in f["blue"]} != {"draining"}:
        assert time.monotonic() < deadline, health(f)
        time.sleep(0.02)
    while {health(f).get(i) for i in green} != {"healthy"}:
        assert time.monotonic() < deadline, health(f)
        time.sleep(0.02)
    assert status(f, deployment_id) == "InProgress"  # the termination wait
