"""From an empty account to a released service and back: playbooks/site.yml -i inventories/emulator (strategy
codedeploy), playbooks/provision.yml --check, a second site.yml run, then playbooks/teardown.yml, on the emulator.

The emulator is started here with moto's AWS managed policies loaded (MOTO_IAM_LOAD_MANAGED_POLICIES), so the
CodeDeploy service role can attach AWSCodeDeployRole as on AWS.
"""

import contextlib
import json
import os
import sys
import urllib.parse
import urllib.request

import boto3
import pytest
from conftest import CREDENTIALS
from conftest import ansible_playbook
from dataplane import Processes
from dataplane import free_port
from dataplane import get
from dataplane import wait_http

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(ROOT, "inventories", "emulator")
PLAYBOOKS = os.path.join(ROOT, "playbooks")
NAME = "web-emulator"  # bluegreen_app-bluegreen_env of inventories/emulator
KEY = "web/emulator/v1.zip"  # aws_infra_artifact_prefix + release_version + .zip
# Actions AWS does not scope to a resource: the only ones allowed on "Resource": "*" (the README says why).
UNSCOPED = {
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "ec2:DescribeTags",
    "ec2:DescribeVolumes",
    "ec2:RunInstances",
    "ec2:CreateTags",
}
WRITE_VERBS = (
    "Create",
    "Put",
    "Update",
    "Modify",
    "Attach",
    "Detach",
    "Delete",
    "Set",
    "Register",
    "Deregister",
    "Tag",
    "Untag",
    "Associate",
    "Authorize",
    "Revoke",
    "Enable",
    "Disable",
    "Add",
    "Remove",
    "Replace",
    "Subscribe",
    "Publish",
)


class Account:
    """The emulator's API and admin calls (like the session fixture's handle, for this module's own emulator)."""

    def __init__(self, url):
        self.url = url

    def admin(self, path, method="GET", data=None, timeout=10):
        request = urllib.request.Request(
            f"{self.url}/_bgemu/{path}",
            method=method,
            data=None if data is None else json.dumps(data).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)

    def calls(self):
        return self.admin("calls")

    def client(self, service):
        return boto3.client(service, endpoint_url=self.url, **CREDENTIALS)


@pytest.fixture(scope="module")
def account():
    """An emulator of its own with the AWS managed policies loaded: an empty account."""
    procs = Processes()
    port = free_port()
    env = dict(
        os.environ,
        MOTO_IAM_LOAD_MANAGED_POLICIES="true",
        PYTHONPATH=os.path.join(ROOT, "tests", "emulator") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    procs.start([sys.executable, "-m", "bgemu", "--port", str(port), "--time-scale", "0.01"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/_bgemu/status", timeout=120)  # loading the managed policies takes a while on a busy machine
        emulator = Account(url)
        emulator.admin("time-scale", "POST", {"scale": 0.01})
        yield emulator
    finally:
        procs.stop_all()


def run(playbook, account, *args, check=False, timeout=900, tmpdir=None):
    env = {"BGEMU_ENDPOINT": account.url, "ANSIBLE_PIPELINING": "true"}
    if tmpdir is not None:  # the controller's temporary files (the run's bundle build) go there
        os.makedirs(tmpdir, exist_ok=True)
        env["TMPDIR"] = str(tmpdir)
    return ansible_playbook(
        os.path.join(PLAYBOOKS, playbook), *args, check=check, inventory=INVENTORY, env=env, timeout=timeout
    )


PACK = "Pack the bundle (byte-identical for the same inputs)"


def assert_private_build(results, tmpdir):
    """The run packed its bundle in a directory of its own, under its TMPDIR, and removed it at the end: runs side by
    side (these tests run beside others with the same app, env and version) never pack each other's files."""
    dest = results[PACK]["dest"]
    assert dest.startswith(f"{tmpdir}/bluegreen-"), dest
    assert not os.path.exists(dest) and not list(tmpdir.glob("bluegreen-*")), dest


@contextlib.contextmanager
def soft(problems, section):
    try:
        yield
    except Exception as e:  # noqa: BLE001 - every failing section is reported, not only the first
        problems.append(f"{section}: {type(e).__name__}: {e}")


def failures(results):
    return {name: result.get("msg") for name, result in results.items() if result.get("failed")}


def changed(report, prefix=""):
    return sorted(
        t["task"]["name"]
        for play in report["plays"]
        for t in play["tasks"]
        if t["hosts"].get("localhost", {}).get("changed") and t["task"]["name"].startswith(prefix)
    )


def infra_changed(report):
    """Changed tasks of aws_infra and the roles it includes."""
    roles = ("bluegreen.aws.aws_infra :", "bluegreen.aws.codedeploy_fleet :", "bluegreen.aws.ec2_userdata :")
    return [name for name in changed(report) if name.startswith(roles)]


def writes(calls):
    return {op: n for op, n in calls.items() if op.split(".", 1)[1].startswith(WRITE_VERBS)}


def tags(pairs, key="Key", value="Value"):
    return {t[key]: t[value] for t in pairs}


def statements(iam, role):
    found = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        found += document["Statement"]
    return found


def listify(value):
    return value if isinstance(value, list) else [value]


def assert_least_privilege(found):
    for statement in found:
        actions, resources = listify(statement["Action"]), listify(statement["Resource"])
        assert not any(a == "*" or a.endswith(":*") for a in actions), statement
        if "*" in resources:
            assert set(actions) <= UNSCOPED, f"'*' resource for {actions}"
    scoped = [s for s in found if any(a.split(":")[0] in ("s3", "ecr", "ssm", "iam") for a in listify(s["Action"]))]
    for statement in scoped:
        for action in listify(statement["Action"]):
            if action != "ecr:GetAuthorizationToken":
                assert "*" not in listify(statement["Resource"]), statement


def test_inputs_are_refused_before_any_write(account, tmp_path):
    account.admin("calls", "DELETE")
    cases = [
        (["-e", "bluegreen_strategy=blue"], "bluegreen_strategy: 'blue' is not a strategy"),
        (["-e", "aws_infra_image_id="], "aws_infra_image_id: '' is not an AMI id"),
        (["-e", "aws_infra_health_check_path=health"], "aws_infra_health_check_path: 'health' must start with '/'"),
        (
            ["-e", "aws_infra_health_check_grace_period=30"],
            "aws_infra_health_check_grace_period: 30 s is shorter than aws_infra_app_warmup_seconds",
        ),
        (["-e", "ec2_userdata_imds_hop_limit=2"], "ec2_userdata_imds_hop_limit is 2: above 1 a container"),
    ]
    for args, message in cases:
        rc, unused_results, report = run("site.yml", account, *args)
        assert rc != 0
        failures = [
            t["hosts"]["localhost"].get("msg", "")
            for play in report["plays"]
            for t in play["tasks"]
            if t["hosts"].get("localhost", {}).get("failed")
        ]
        assert any(message in " ".join(str(f).split()) for f in failures), (message, failures)
    rc, unused_results, report = run("teardown.yml", account, "-e", "bluegreen_env=prod")
    assert rc != 0 and "-e teardown_confirm=web-prod" in json.dumps(report)
    assert not writes(account.calls()), writes(account.calls())


def test_check_mode_fails_on_a_denied_lookup_rather_than_plan_from_empty(account, tmp_path):
    # a permission error on the load balancer's lookup must not read as "not provisioned yet"
    account.admin("calls", "DELETE")
    fault = {"operation": "DescribeLoadBalancers", "code": "AccessDenied", "status": 403}
    account.admin("faults", "POST", {**fault, "message": "not authorized to perform DescribeLoadBalancers"})
    try:
        rc, results, unused_report = run("site.yml", account, check=True, tmpdir=tmp_path / "denied")
    finally:
        account.admin("faults", "DELETE")
    assert rc != 0
    assert "AccessDenied" in json.dumps(results["Look for its load balancer (check mode)"]), failures(results)
    assert "Say what a real run creates (check mode cannot plan past resources without ids)" not in results
    assert not writes(account.calls()), writes(account.calls())


def test_from_an_empty_account_to_a_release_and_back(account, tmp_path):
    ec2, elb, iam, s3, ecr, asg, cd, cw = (
        account.client(s) for s in ("ec2", "elbv2", "iam", "s3", "ecr", "autoscaling", "codedeploy", "cloudwatch")
    )
    assert not ec2.describe_launch_templates()["LaunchTemplates"]
    problems = []  # every section is checked, the failures reported together at the end

    # 0. site.yml --check from an empty account: one change naming what a real run creates, nothing written, and
    # nothing planned past the resources that have no id yet (the release included)
    account.admin("calls", "DELETE")
    rc, results, report = run("site.yml", account, check=True, tmpdir=tmp_path / "run0")
    assert_private_build(results, tmp_path / "run0")  # check mode builds the bundle too, and removes it
    said = results.get("Say what a real run creates (check mode cannot plan past resources without ids)", {})
    assert rc == 0 and said.get("changed"), failures(results)
    assert "not found, so web-emulator is not (fully) provisioned" in said["msg"], said["msg"]
    assert (
        "Deploy with CodeDeploy blue/green, ready gates on green, bake gates during the termination wait" not in results
    )
    assert not writes(account.calls()), writes(account.calls())

    # 1. site.yml from an empty account: provision, bundle, upload, gated deployment, adoption
    rc, results, report = run("site.yml", account, tmpdir=tmp_path / "run1")
    deployment = results.get(
        "Deploy with CodeDeploy blue/green, ready gates on green, bake gates during the termination wait"
    )
    assert rc == 0, (deployment, failures(results))
    assert deployment["status"] == "Succeeded", deployment
    green = next(e["instances"] for e in deployment["timeline"] if e["status"] == "GreenInstances")
    # the emulator's agent ran the bundle's hook scripts on each green instance: the release answers at its own address,
    # which is what the ready gates (http://{private_ip}:8080/health) judged
    addresses = [
        i["PrivateIpAddress"] for r in ec2.describe_instances(InstanceIds=green)["Reservations"] for i in r["Instances"]
    ]
    assert len(addresses) == len(green) == 2, addresses
    for address in addresses:
        status, body = get(f"http://{address}:8080/version")
        assert status == 200 and json.loads(body)["version"] == "v1", (address, status, body)
    ready = [g for e in deployment["timeline"] if e["status"] == "gates:ready" for g in e["gates"]]
    assert ready and ready[-1]["verdict"] == "pass", ready  # the ready gates ran, on those green instances
    assert_private_build(results, tmp_path / "run1")

    # the deployment group points at CodeDeploy's replacement group, adopted with the app/env tags
    with soft(problems, "deployment group and adopted fleet"):
        group = cd.get_deployment_group(applicationName=NAME, deploymentGroupName=NAME)["deploymentGroupInfo"]
        (current,) = [g["name"] for g in group["autoScalingGroups"]]
        assert current.startswith(f"CodeDeploy_{NAME}_d-")
        (fleet,) = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
        assert fleet["AutoScalingGroupName"] == current
        assert (fleet["HealthCheckType"], fleet["HealthCheckGracePeriod"]) == ("EC2", 120)
        assert {"app": "web", "env": "emulator"}.items() <= tags(fleet["Tags"]).items()

    # the deployment group: blue/green, one target group, alarms and rollback on them
    with soft(problems, "deployment group settings"):
        assert group["deploymentStyle"] == {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
        assert [t["name"] for t in group["loadBalancerInfo"]["targetGroupInfoList"]] == [NAME]
        assert sorted(a["name"] for a in group["alarmConfiguration"]["alarms"]) == sorted(
            [f"{NAME}-5xx", f"{NAME}-unhealthy-hosts", f"{NAME}-response-time"]
        )
        assert "DEPLOYMENT_STOP_ON_ALARM" in group["autoRollbackConfiguration"]["events"]

    # launch template: IMDSv2 required, hop limit 1, encrypted root volume, user-data, instance profile
    with soft(problems, "launch template"):
        (template,) = ec2.describe_launch_templates(LaunchTemplateNames=[NAME])["LaunchTemplates"]
        data = ec2.describe_launch_template_versions(
            LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Latest"]
        )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
        (root,) = data["BlockDeviceMappings"]
        assert root["Ebs"]["Encrypted"] is True
        assert data["IamInstanceProfile"]["Arn"].endswith(f":instance-profile/{NAME}-instance")
        assert data["UserData"]
        # DescribeTags, not DescribeLaunchTemplates: moto 5.2.5 lists only the tags given at creation there
        found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [template["LaunchTemplateId"]]}])["Tags"]
        assert {"app": "web", "env": "emulator"}.items() <= tags(found).items()

    # artifact bucket: versioned, encrypted, public access blocked, old revisions expire; the bundle is in it
    with soft(problems, "artifact bucket"):
        bucket = f"{NAME}-artifacts-123456789012"
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4
        (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        assert lifecycle["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
        assert s3.head_object(Bucket=bucket, Key=KEY)["ContentLength"] > 0
        assert tags(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == {"app": "web", "env": "emulator"}

    # image repository: version tags immutable, <env>-current movable, scanned on push, lifecycle policy, tagged
    with soft(problems, "image repository"):
        (repository,) = ecr.describe_repositories(repositoryNames=[NAME])["repositories"]
        assert repository["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
        assert repository["imageTagMutabilityExclusionFilters"] == [{"filter": "*-current", "filterType": "WILDCARD"}]
        found = ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]
        assert {"app": "web", "env": "emulator"}.items() <= tags(found).items()
        assert repository["imageScanningConfiguration"]["scanOnPush"] is True
        assert json.loads(ecr.get_lifecycle_policy(repositoryName=NAME)["lifecyclePolicyText"])["rules"]

    # load balancer, listener, target group with the app's health check, security groups
    with soft(problems, "load balancer"):
        (lb,) = elb.describe_load_balancers(Names=[NAME])["LoadBalancers"]
        (listener,) = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        assert (listener["Protocol"], listener["Port"]) == ("HTTP", 80)
        (tg,) = elb.describe_target_groups(Names=[NAME])["TargetGroups"]
        assert (tg["HealthCheckPath"], tg["HealthCheckIntervalSeconds"], tg["Matcher"]["HttpCode"]) == (
            "/health",
            10,
            "200",
        )
        assert (tg["HealthyThresholdCount"], tg["UnhealthyThresholdCount"], tg["Port"]) == (3, 2, 8080)
        attributes = {
            a["Key"]: a["Value"]
            for a in elb.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]
        }
        assert attributes["deregistration_delay.timeout_seconds"] == "60"
        groups = {g["GroupName"]: g for g in ec2.describe_security_groups()["SecurityGroups"]}
        lb_sg, app_sg = groups[f"{NAME}-lb"], groups[f"{NAME}-app"]
        (app_rule,) = app_sg["IpPermissions"]
        assert (app_rule["FromPort"], app_rule["ToPort"], app_rule["IpRanges"]) == (8080, 8080, [])
        assert [p["GroupId"] for p in app_rule["UserIdGroupPairs"]] == [lb_sg["GroupId"]]
        assert lb["SecurityGroups"] == [lb_sg["GroupId"]]
        assert [r["FromPort"] for r in lb_sg["IpPermissions"]] == [80]

    # network: two public and two private subnets in two zones
    with soft(problems, "network"):
        (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [NAME]}])["Vpcs"]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
        assert sorted(tags(s["Tags"])["tier"] for s in subnets) == ["private", "private", "public", "public"]
        assert len({s["AvailabilityZone"] for s in subnets}) == 2

    # IAM: least privilege, scoped to the bucket prefix, the repository, the secret parameter and the instance role
    with soft(problems, "IAM"):
        instance = statements(iam, f"{NAME}-instance")
        codedeploy = statements(iam, f"{NAME}-codedeploy")
        assert_least_privilege(instance)
        assert_least_privilege(codedeploy)
        by_sid = {s.get("Sid"): s for s in instance + codedeploy}
        assert listify(by_sid["ReadRevisions"]["Resource"]) == [f"arn:aws:s3:::{bucket}/web/emulator/*"]
        assert listify(by_sid["EcrPull"]["Resource"]) == [f"arn:aws:ecr:eu-west-1:123456789012:repository/{NAME}"]
        # the emulator's release has no app secrets (its instances cannot reach AWS APIs): no SSM read is granted
        # (the secret statements' scoping is test_appspec's)
        assert not [sid for sid in by_sid if sid and "Ssm" in sid], sorted(by_sid)
        assert listify(by_sid["PassInstanceRole"]["Resource"]) == [f"arn:aws:iam::123456789012:role/{NAME}-instance"]
        attached = iam.list_attached_role_policies(RoleName=f"{NAME}-codedeploy")["AttachedPolicies"]
        assert [p["PolicyArn"] for p in attached] == ["arn:aws:iam::aws:policy/service-role/AWSCodeDeployRole"]
        assert {"app": "web", "env": "emulator"}.items() <= tags(
            iam.get_role(RoleName=f"{NAME}-instance")["Role"]["Tags"]
        ).items()

    # alarms notify the topic
    with soft(problems, "alarms"):
        alarms = cw.describe_alarms(AlarmNamePrefix=NAME)["MetricAlarms"]
        assert len(alarms) == 3 and all(a["AlarmActions"] == [alarms[0]["AlarmActions"][0]] for a in alarms)
        assert alarms[0]["AlarmActions"][0].endswith(f":{NAME}-alarms")

    # 2. provisioning again in check mode: nothing would change, nothing is written
    with soft(problems, "check mode"):
        account.admin("calls", "DELETE")
        rc, results, report = run("provision.yml", account, check=True)
        # amazon.aws.autoscaling_group does not compare in check mode: it answers "Would have modified
        # AutoScalingGroup if required" for any existing group. Nothing else may say it would change.
        assert rc == 0, failures(results)
        assert infra_changed(report) == [
            "bluegreen.aws.codedeploy_fleet : Create or update the Auto Scaling group"
        ], infra_changed(report)
        assert not writes(account.calls()), writes(account.calls())

    # 3. site.yml again: aws_infra changes nothing; the same revision is not deployed again
    with soft(problems, "second run"):
        account.admin("calls", "DELETE")
        rc, results, report = run("site.yml", account, tmpdir=tmp_path / "run3")
        again = results.get(
            "Deploy with CodeDeploy blue/green, ready gates on green, bake gates during the termination wait", {}
        )
        # a failure says which revision was compared with which, and what the hooks printed
        assert rc == 0, (failures(results), again.get("revision"), deployment.get("revision"), again.get("diagnostics"))
        assert infra_changed(report) == [], infra_changed(report)
        assert_private_build(results, tmp_path / "run3")
        assert (
            results["Deploy with CodeDeploy blue/green, ready gates on green, bake gates during the termination wait"][
                "changed"
            ]
            is False
        )
        # the release's own state (lock, history, notification) is all it writes; amazon.aws.autoscaling_group sends
        # UpdateAutoScalingGroup and DisableMetricsCollection on every run and reports changed only when they changed it
        release_writes = {"s3.PutObject", "s3.DeleteObject", "sns.Publish"}
        quirks = {"autoscaling.UpdateAutoScalingGroup", "autoscaling.DisableMetricsCollection"}
        assert set(writes(account.calls())) <= release_writes | quirks, writes(account.calls())

    # 4. teardown: nothing is left
    rc, results, report = run("teardown.yml", account)
    assert rc == 0, failures(results)
    leftovers = {
        "auto scaling groups": asg.describe_auto_scaling_groups()["AutoScalingGroups"],
        "launch templates": ec2.describe_launch_templates()["LaunchTemplates"],
        "load balancers": elb.describe_load_balancers()["LoadBalancers"],
        "target groups": elb.describe_target_groups()["TargetGroups"],
        "codedeploy applications": cd.list_applications()["applications"],
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(NAME)],
        "instance profiles": iam.list_instance_profiles()["InstanceProfiles"],
        "buckets": [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(NAME)],
        "repositories": ecr.describe_repositories()["repositories"],
        "alarms": cw.describe_alarms(AlarmNamePrefix=NAME)["MetricAlarms"],
        "topics": [t for t in account.client("sns").list_topics()["Topics"] if NAME in t["TopicArn"]],
        "vpcs": ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [NAME]}])["Vpcs"],
        "security groups": [
            g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"].startswith(NAME)
        ],
    }
    problems += [f"teardown left {kind}: {found}" for kind, found in leftovers.items() if found]
    assert not problems, "\n".join(problems)
