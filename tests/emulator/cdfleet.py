"""A CodeDeploy blue/green fleet on the emulator, and real revisions: bundles rendered by the appspec role and packed
by codedeploy_bundle (shared by tests)."""

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP_PORT = 8080  # the bundles' published port: the app answers on <PrivateIpAddress>:8080
# S3 key -> the demo image tag its bundle runs (the stand-in engine: "-broken" fails its health checks from the start,
# "-fail-after-<N>" after N seconds)
BUNDLES = {
    "app-good.zip": "1.0.0",
    "app-v2.zip": "1.1.0",
    "app-broken.zip": "2.0.0-broken",
    "app-degrading.zip": "3.0.0-fail-after-8",
}
ROLE_VARS = {
    "appspec_app_name": "web",
    "appspec_registry": "",
    "appspec_repository": "localhost/bluegreen-demo",
    "appspec_ports": [f"{APP_PORT}:{APP_PORT}"],
    "appspec_health_port": APP_PORT,
    "appspec_health_interval": 1,
    "appspec_health_timeout": 1,
    "appspec_env": {"GREETING": "hello"},
    # ValidateService 16 s: (16 - 10) // (1 + 1) = 3 health attempts; AfterAllowTraffic runs the same check
    "appspec_hooks": {
        "ApplicationStop": 60,
        "BeforeInstall": 60,
        "AfterInstall": 60,
        "ApplicationStart": 60,
        "ValidateService": 16,
        "AfterAllowTraffic": 16,
    },
}


def image_manifest(version):
    """An OCI image manifest whose org.opencontainers.image.version annotation is ``version``: pushed to the emulated
    ECR (PutImage), its digest runs the demo app at ``version`` in the stand-in engine (docs/emulator.md)."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "1" * 64},
            "layers": [],
            "annotations": {"org.opencontainers.image.version": version},
        },
        sort_keys=True,
    )


def _inputs_digest():
    """What the bundles are made of: the appspec role, the zip code, the settings above."""
    digest = hashlib.sha256(json.dumps([BUNDLES, ROLE_VARS], sort_keys=True).encode())
    sources = [os.path.join(ROOT, "plugins", "module_utils", "bundle.py")]
    for root, dirs, names in os.walk(os.path.join(ROOT, "roles", "appspec")):
        dirs.sort()
        sources += [os.path.join(root, n) for n in sorted(names)]
    for path in sources:
        digest.update(path.encode())
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def build_bundles(directory=None):
    """One bundle per BUNDLES entry; returns {key: path of the zip}.

    The first is rendered by the appspec role and zipped by codedeploy_bundle (a real ansible-playbook run); the
    others are the same rendering with their own APP_IMAGE_TAG in scripts/release.env, zipped by the same code
    (plugins/module_utils/bundle.py), as the role would render them (test_appspec proves a tag changes only that).
    Kept in .build/bundles/<digest of the role and the settings>, so a session pays the ansible run only when the
    role changed; concurrent sessions wait for one another with a lock."""
    directory = directory or os.path.join(ROOT, ".build", "bundles", _inputs_digest())
    os.makedirs(directory, exist_ok=True)
    paths = {key: os.path.join(directory, key) for key in BUNDLES}
    with open(os.path.join(directory, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(os.path.exists(p) for p in paths.values()):
            _render(directory)
    return paths


def _render(directory):
    first, tag = next(iter(BUNDLES.items()))
    rendered = os.path.join(directory, "rendered")
    role_vars = dict(
        ROLE_VARS,
        appspec_bundle_dir=rendered,
        appspec_archive=os.path.join(directory, first + ".tmp"),
        appspec_image_tag=tag,
    )
    tasks = [{"name": "bundle", "ansible.builtin.include_role": {"name": "bluegreen.aws.appspec"}, "vars": role_vars}]
    playbook = os.path.join(directory, "bundle.yml")
    with open(playbook, "w") as f:
        json.dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], f)
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local"]
    env = dict(os.environ, ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING="false")
    proc = subprocess.run(command + [playbook], capture_output=True, text=True, timeout=600, check=False, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from ansible_collections.bluegreen.aws.plugins.module_utils.bundle import build_zip

    release = os.path.join(rendered, "scripts", "release.env")
    with open(release) as f:
        settings = f.read()
    assert f"APP_IMAGE_TAG={tag}\n" in settings, settings
    for key, other in BUNDLES.items():
        with open(release, "w") as f:
            f.write(settings.replace(f"APP_IMAGE_TAG={tag}\n", f"APP_IMAGE_TAG={other}\n"))
        data = build_zip(rendered)
        if key == first:  # the role's own archive: the same bytes
            with open(os.path.join(directory, first + ".tmp"), "rb") as f:
                assert f.read() == data
        with open(os.path.join(directory, key + ".tmp"), "wb") as f:
            f.write(data)
        os.replace(os.path.join(directory, key + ".tmp"), os.path.join(directory, key))


def upload(emulator, bundles, bucket="releases"):
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": emulator.region})
    for key, path in bundles.items():
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key=key, Body=f.read())


def install(emulator, instance_ids, key, bucket="releases"):
    """The agent installs revision ``key`` on each instance (in-place events, ApplicationStop … ValidateService),
    all at once; asserts every event succeeded."""
    answers = {}

    def one(instance_id):
        answers[instance_id] = emulator.admin(
            "install", "POST", {"instance_id": instance_id, "bucket": bucket, "key": key}, timeout=120
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in instance_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for instance_id in instance_ids:
        events = answers.get(instance_id)
        assert events and all(e["status"] in ("Succeeded", "Skipped") for e in events), (instance_id, events)
    return answers


def addresses(emulator, instance_ids):
    ec2 = emulator.client("ec2")
    found = ec2.describe_instances(InstanceIds=list(instance_ids))["Reservations"]
    return {i["InstanceId"]: i.get("PrivateIpAddress") for r in found for i in r["Instances"]}


def run_in(emulator, instance_id, *command, timeout=30):
    """Run ``command`` inside the instance (its network and file system): {"returncode", "stdout", "stderr"}."""
    data = {"instance_id": instance_id, "command": list(command), "timeout": timeout}
    return emulator.admin("exec", "POST", data, timeout=timeout + 10)


def fleet(emulator, ready=None, termination_minutes=1, blue_revision=None, deregistration_delay=60):
    """Blue group "web" (2 instances in target group web-tg, port 8080; AWS's default health check, a
    ``deregistration_delay`` of 60 s as in seed 000 rather than AWS's 300: BlockTraffic waits for it) and deployment
    group web-dg with auto-rollback.

    The blue instances run an app only when ``blue_revision`` (an S3 key of the ``revisions`` fixture) is given: the
    agent installs it on them before they are registered. Otherwise nothing answers for them and they turn
    ``unhealthy``, as on AWS.
    """
    ec2, elb, asg, cd = (emulator.client(s) for s in ("ec2", "elbv2", "autoscaling", "codedeploy"))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{emulator.region}a")["Subnet"][
        "SubnetId"
    ]
    tg = elb.create_target_group(Name="web-tg", Protocol="HTTP", Port=APP_PORT, VpcId=vpc)["TargetGroups"][0][
        "TargetGroupArn"
    ]
    elb.modify_target_group_attributes(
        TargetGroupArn=tg,
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(deregistration_delay)}],
    )
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
    if blue_revision:
        install(emulator, blue, blue_revision)
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
    return {"cd": cd, "asg": asg, "elb": elb, "tg": tg, "blue": blue, "vpc": vpc, "subnet": subnet}


def alb(emulator, f):
    """An ALB for the fleet: listener HTTP:80 forwarding to web-tg, served by the emulator's data plane (a real
    HAProxy).  Adds "listener" (its ARN) and "port" (the loopback port that serves it) to ``f``."""
    from dataplane import served

    second = emulator.client("ec2").create_subnet(
        VpcId=f["vpc"], CidrBlock="10.0.2.0/24", AvailabilityZone=f"{emulator.region}b"
    )["Subnet"]["SubnetId"]
    lb = f["elb"].create_load_balancer(Name="web", Subnets=[f["subnet"], second])["LoadBalancers"][0]
    listener = f["elb"].create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": f["tg"]}],
    )["Listeners"][0]["ListenerArn"]
    f.update(listener=listener, port=served(emulator, listener)["local_port"])
    return f


def deployment_task(key="app-good.zip", **options):
    """A play's task "deploy": bluegreen.aws.codedeploy_deployment of ``key`` (bucket "releases") to web-dg."""
    options = dict(
        application="web",
        deployment_group="web-dg",
        revision={"bucket": "releases", "key": key},
        poll_interval=0.1,
        gate_interval=0.1,
        **options,
    )
    body = "\n".join(f"    {k}: {json.dumps(v)}" for k, v in options.items())
    return f"- name: deploy\n  bluegreen.aws.codedeploy_deployment:\n{body}\n"


def deploy(f, key):
    return f["cd"].create_deployment(
        applicationName="web",
        deploymentGroupName="web-dg",
        revision={"revisionType": "S3", "s3Location": {"bucket": "releases", "key": key, "bundleType": "zip"}},
    )["deploymentId"]


def status(f, deployment_id):
    return f["cd"].get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"]


def wait_status(f, deployment_id, wanted, timeout=90.0):
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
