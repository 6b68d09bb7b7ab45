"""bluegreen.aws.codedeploy_deployment_group through real ansible-playbook runs on the emulator."""

import json

import pytest
from conftest import run_playbook

WRITES = ("codedeploy.CreateDeploymentGroup", "codedeploy.UpdateDeploymentGroup", "codedeploy.DeleteDeploymentGroup")


@pytest.fixture
def world(emulator):
    ec2, asg, elb, iam, cd = (emulator.client(s) for s in ("ec2", "autoscaling", "elbv2", "iam", "codedeploy"))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    for name in ("web-tg", "other-tg"):
        elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc)
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro"}
    )
    for name, check in (("web", "EC2"), ("web-elb", "ELB")):
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": "web-lt", "Version": "$Latest"},
            MinSize=0,
            MaxSize=2,
            DesiredCapacity=0,
            AvailabilityZones=[f"{emulator.region}a"],
            HealthCheckType=check,
            HealthCheckGracePeriod=60,
        )
    iam.create_role(
        RoleName="CodeDeployServiceRole",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    cd.create_application(applicationName="web", computePlatform="Server")
    return cd


def task(**overrides):
    options = {
        "application": "web",
        "name": "web-dg",
        "service_role": "CodeDeployServiceRole",
        "auto_scaling_groups": ["web"],
        "target_groups": ["web-tg"],
        "ready_action": "stop",
        "ready_wait_minutes": 30,
        "termination_wait_minutes": 60,
        "alarms": ["web-5xx"],
    }
    options.update(overrides)
    body = "\n".join(f"    {k}: {json.dumps(v)}" for k, v in options.items())
    return f"- name: group\n  bluegreen.aws.codedeploy_deployment_group:\n{body}\n"


def writes(emulator):
    return {k: v for k, v in emulator.calls().items() if k in WRITES}


def test_create_check_mode_idempotence_and_update(emulator, world, tmp_path):
    rc, results, unused_report = run_playbook(task(), emulator.endpoint, tmp_path, check=True)
    assert rc == 0 and results["group"]["changed"] is True
    assert world.list_deployment_groups(applicationName="web")["deploymentGroups"] == []
    rc, results, unused_report = run_playbook(task(), emulator.endpoint, tmp_path)
    assert rc == 0, results["group"]
    info = world.get_deployment_group(applicationName="web", deploymentGroupName="web-dg")["deploymentGroupInfo"]
    config = info["blueGreenDeploymentConfiguration"]
    assert config["deploymentReadyOption"] == {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 30}
    assert config["greenFleetProvisioningOption"] == {"action": "COPY_AUTO_SCALING_GROUP"}
    assert info["loadBalancerInfo"]["targetGroupInfoList"] == [{"name": "web-tg"}]
    assert info["serviceRoleArn"].endswith(":role/CodeDeployServiceRole")

    emulator.admin("calls", "DELETE")
    rc, results, unused_report = run_playbook(task(), emulator.endpoint, tmp_path)
    assert rc == 0 and results["group"]["changed"] is False and writes(emulator) == {}

    rc, results, unused_report = run_playbook(task(termination_wait_minutes=120), emulator.endpoint, tmp_path)
    assert rc == 0 and results["group"]["changed"] is True
    before = results["group"]["diff"]["before"]["blueGreenDeploymentConfiguration"]
    after = results["group"]["diff"]["after"]["blueGreenDeploymentConfiguration"]
    assert before["terminateBlueInstancesOnDeploymentSuccess"]["terminationWaitTimeInMinutes"] == 60
    assert after["terminateBlueInstancesOnDeploymentSuccess"]["terminationWaitTimeInMinutes"] == 120
    assert writes(emulator) == {"codedeploy.UpdateDeploymentGroup": 1}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"target_groups": ["web-tg", "other-tg"]},
            "target_groups: EC2 blue/green needs exactly one target group, got 2",
        ),
        ({"auto_scaling_groups": []}, "auto_scaling_groups: green_fleet=copy_auto_scaling_group copies exactly one"),
        ({"auto_scaling_groups": ["web", "web-elb"]}, "copies exactly one Auto Scaling group, got 2"),
        ({"alarms": [f"a{i}" for i in range(11)]}, "alarms: CodeDeploy takes at most 10 alarms, got 11"),
        (
            {"deployment_config": "CodeDeployDefault.Canary10Percent5Minutes"},
            "deployment_config: CodeDeployDefault.Canary",
        ),
        ({"service_role": "NoSuchRole"}, "service_role: IAM role NoSuchRole does not exist"),
        ({"auto_scaling_groups": ["nope"]}, "auto_scaling_groups: ['nope'] not found"),
        ({"termination_wait_minutes": 3000}, "termination_wait_minutes must be between 0 and 2880"),
    ],
)
def test_bad_input_is_refused_without_a_write(emulator, world, tmp_path, overrides, message):
    emulator.admin("calls", "DELETE")
    rc, results, unused_report = run_playbook(task(**overrides), emulator.endpoint, tmp_path)
    assert rc != 0
    assert message in results["group"]["msg"]
    assert writes(emulator) == {}


def test_elb_health_check_and_short_grace_period_are_warned_about(emulator, world, tmp_path):
    rc, results, unused_report = run_playbook(
        task(auto_scaling_groups=["web-elb"], app_warmup_seconds=240), emulator.endpoint, tmp_path
    )
    assert rc == 0, results["group"]
    warnings = " ".join(results["group"].get("warnings", []))
    assert "uses health check type ELB" in warnings and "grace period of 60s" in warnings


def test_absent(emulator, world, tmp_path):
    run_playbook(task(), emulator.endpoint, tmp_path)
    rc, results, unused_report = run_playbook(task(state="absent"), emulator.endpoint, tmp_path)
    assert rc == 0 and results["group"]["changed"] is True
    assert world.list_deployment_groups(applicationName="web")["deploymentGroups"] == []
    rc, results, unused_report = run_playbook(task(state="absent"), emulator.endpoint, tmp_path)
    assert rc == 0 and results["group"]["changed"] is False
