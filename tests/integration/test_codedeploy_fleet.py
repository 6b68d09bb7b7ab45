"""Replacement-ASG adoption (seed 000, challenge 5) through real ansible-playbook runs on the emulator.

Provisioning (application, the codedeploy_fleet role, deployment group) runs, a blue/green deployment replaces the
Auto Scaling group with CodeDeploy's copy, and the same provisioning then applies its settings to the copy and
converges: the original group is not created again and a further run changes nothing.
"""

import json
import textwrap

import pytest
from cdfleet import APP_PORT
from conftest import run_playbook

# Not UpdateAutoScalingGroup: amazon.aws.autoscaling_group sends it on every run, then reports changed only when
# the group's settings differ afterwards.
WRITES = (
    "autoscaling.CreateAutoScalingGroup",
    "autoscaling.CreateOrUpdateTags",
    "autoscaling.DeleteTags",
    "autoscaling.PutScalingPolicy",
    "codedeploy.CreateDeploymentGroup",
    "codedeploy.UpdateDeploymentGroup",
)


@pytest.fixture
def prerequisites(emulator):
    ec2, elb, iam = (emulator.client(s) for s in ("ec2", "elbv2", "iam"))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{emulator.region}a")["Subnet"]
    # the port the revisions' app answers on: CodeDeploy's AllowTraffic waits for green to pass its health checks
    elb.create_target_group(Name="web-tg", Protocol="HTTP", Port=APP_PORT, VpcId=vpc)
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName="web-lt",
        LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro", "MetadataOptions": {"HttpTokens": "required"}},
    )
    iam.create_role(
        RoleName="CodeDeployServiceRole",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    return subnet["SubnetId"]


def provisioning(subnet, **fleet):
    role_vars = {
        "codedeploy_fleet_application": "web",
        "codedeploy_fleet_deployment_group": "web-dg",
        "codedeploy_fleet_name": "web",
        "codedeploy_fleet_launch_template": {"launch_template_name": "web-lt"},
        "codedeploy_fleet_subnets": [subnet],
        "codedeploy_fleet_min_size": 2,
        "codedeploy_fleet_max_size": 4,
        "codedeploy_fleet_desired_capacity": 2,
        "codedeploy_fleet_tags": {"team": "web", "env": "prod"},
        "codedeploy_fleet_scaling_policies": [
            {
                "name": "cpu-50",
                "policy_type": "TargetTrackingScaling",
                "target_tracking_config": {
                    "predefined_metric_spec": {"predefined_metric_type": "ASGAverageCPUUtilization"},
                    "target_value": 50,
                },
            }
        ],
        **fleet,
    }
    return textwrap.dedent(f"""\
        - name: application
          bluegreen.aws.codedeploy_application:
            name: web
        - name: fleet
          ansible.builtin.include_role:
            name: bluegreen.aws.codedeploy_fleet
          vars: {json.dumps(role_vars)}
        - name: group
          bluegreen.aws.codedeploy_deployment_group:
            application: web
            name: web-dg
            service_role: CodeDeployServiceRole
            auto_scaling_groups: [web]
            target_groups: [web-tg]
            termination_wait_minutes: 0
        - name: current
          ansible.builtin.debug:
            var: codedeploy_fleet_auto_scaling_group
        """)


DEPLOY = textwrap.dedent("""\
    - name: deploy
      bluegreen.aws.codedeploy_deployment:
        application: web
        deployment_group: web-dg
        revision: {bucket: releases, key: app-good.zip}
        poll_interval: 0.1
    """)


def groups(emulator):
    found = emulator.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    return {g["AutoScalingGroupName"]: g for g in found}


def policies(emulator, name):
    found = emulator.client("autoscaling").describe_policies(AutoScalingGroupName=name)["ScalingPolicies"]
    return [p["PolicyName"] for p in found]


def changed_tasks(report):
    return sorted(
        t["task"]["name"] for play in report["plays"] for t in play["tasks"] if t["hosts"]["localhost"].get("changed")
    )


def test_provisioning_adopts_the_replacement_group_and_converges(emulator, revisions, prerequisites, tmp_path):
    rc, results, unused_report = run_playbook(provisioning(prerequisites), emulator.endpoint, tmp_path)
    assert rc == 0, results
    assert results["current"]["codedeploy_fleet_auto_scaling_group"] == "web"
    original = groups(emulator)["web"]
    assert (original["HealthCheckType"], original["HealthCheckGracePeriod"]) == ("EC2", 300)
    assert policies(emulator, "web") == ["cpu-50"]

    rc, results, unused_report = run_playbook(DEPLOY, emulator.endpoint, tmp_path)
    assert rc == 0 and results["deploy"]["status"] == "Succeeded", results["deploy"]
    (replacement,) = groups(emulator)
    assert replacement.startswith("CodeDeploy_web-dg_d-")  # the original is gone (seed 000, challenge 5)
    assert policies(emulator, replacement) == []  # what the emulator's copy leaves behind for the adoption to fix

    # the same provisioning again: the copy gets the settings, the original is not created again
    emulator.admin("calls", "DELETE")
    rc, results, report = run_playbook(provisioning(prerequisites), emulator.endpoint, tmp_path)
    assert rc == 0, results
    assert results["current"]["codedeploy_fleet_auto_scaling_group"] == replacement
    assert list(groups(emulator)) == [replacement]
    adopted = groups(emulator)[replacement]
    assert {t["Key"]: t["Value"] for t in adopted["Tags"]} == {"team": "web", "env": "prod"}
    assert all(t["PropagateAtLaunch"] for t in adopted["Tags"])
    assert policies(emulator, replacement) == ["cpu-50"]
    assert results["group"]["changed"] is False
    assert results["group"]["adopted_auto_scaling_group"] == {"requested": "web", "current": replacement}
    assert changed_tasks(report) == [
        "bluegreen.aws.codedeploy_fleet : Apply the scaling policies",
        "bluegreen.aws.codedeploy_fleet : Create or update the Auto Scaling group",
    ]

    # and once more: nothing to do, no write call
    emulator.admin("calls", "DELETE")
    rc, results, report = run_playbook(provisioning(prerequisites), emulator.endpoint, tmp_path)
    assert rc == 0 and changed_tasks(report) == [], changed_tasks(report)
    assert not {k: v for k, v in emulator.calls().items() if k in WRITES}


def test_a_changed_setting_is_applied_to_the_replacement(emulator, revisions, prerequisites, tmp_path):
    rc, unused_results, unused_report = run_playbook(provisioning(prerequisites), emulator.endpoint, tmp_path)
    assert rc == 0
    rc, results, unused_report = run_playbook(DEPLOY, emulator.endpoint, tmp_path)
    assert rc == 0, results["deploy"]
    rc, results, unused_report = run_playbook(
        provisioning(prerequisites, codedeploy_fleet_max_size=6, codedeploy_fleet_health_check_grace_period=420),
        emulator.endpoint,
        tmp_path,
        check=True,
    )
    assert rc == 0
    (name,) = groups(emulator)
    assert (groups(emulator)[name]["MaxSize"], groups(emulator)[name]["HealthCheckGracePeriod"]) == (4, 300)
    rc, results, unused_report = run_playbook(
        provisioning(prerequisites, codedeploy_fleet_max_size=6, codedeploy_fleet_health_check_grace_period=420),
        emulator.endpoint,
        tmp_path,
    )
    assert rc == 0, results
    assert (groups(emulator)[name]["MaxSize"], groups(emulator)[name]["HealthCheckGracePeriod"]) == (6, 420)


def test_the_original_group_created_again_beside_the_replacement_is_warned_about(
    emulator, revisions, prerequisites, tmp_path
):
    rc, unused_results, unused_report = run_playbook(provisioning(prerequisites), emulator.endpoint, tmp_path)
    assert rc == 0
    rc, results, unused_report = run_playbook(DEPLOY, emulator.endpoint, tmp_path)
    assert rc == 0, results["deploy"]
    # what hand-written provisioning does: amazon.aws.autoscaling_group with the original name
    recreate = textwrap.dedent("""\
        - name: original
          amazon.aws.autoscaling_group:
            name: web
            launch_template: {launch_template_name: web-lt}
            availability_zones: [eu-west-1a]
            min_size: 0
            max_size: 1
            desired_capacity: 0
            wait_for_instances: false
        """)
    group_task = provisioning(prerequisites).split("- name: group\n")[1].split("- name: current")[0]
    rc, results, unused_report = run_playbook(recreate + "- name: group\n" + group_task, emulator.endpoint, tmp_path)
    assert rc == 0, results
    assert results["group"]["changed"] is False
    assert results["group"]["adopted_auto_scaling_group"]["requested"] == "web"
    assert any("exists again beside" in w for w in results["group"]["warnings"])
