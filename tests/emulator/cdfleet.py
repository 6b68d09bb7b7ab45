"""A CodeDeploy blue/green fleet on the emulator, with real demo apps as revisions (shared by tests)."""

import time


def fleet(emulator, ready=None, termination_minutes=1, blue_endpoint=None):
    """Blue group "web" (2 instances in target group web-tg) and deployment group web-dg with auto-rollback.

    The blue instances answer health checks only when ``blue_endpoint`` ("127.0.0.1:PORT", e.g. from the
    ``revisions`` fixture) is given: otherwise nothing answers for them and they turn ``unhealthy``, as on AWS.
    """
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
    for instance_id in blue if blue_endpoint else []:
        emulator.admin("endpoints", "POST", {"instance_id": instance_id, "endpoint": blue_endpoint})
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


def health(f):
    """{target id: state} from a whole-group DescribeTargetHealth (draining targets included)."""
    answer = f["elb"].describe_target_health(TargetGroupArn=f["tg"])["TargetHealthDescriptions"]
    return {t["Target"]["Id"]: t["TargetHealth"]["State"] for t in answer}


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


def alarm(cloudwatch, name, state):
    """A CloudWatch metric alarm named ``name``, set to ``state`` (OK, ALARM, INSUFFICIENT_DATA)."""
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"set to {state} by a test")
