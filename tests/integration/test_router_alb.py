"""The ALB router: weights written and verified, idempotence, rule mode, preservation (on a moto server), and
gates on target health (on the emulator, where health comes from real HTTP checks and can fail)."""

import subprocess
import sys

import pytest
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from cdfleet import alarm
from conftest import REGION
from conftest import run_playbook
from dataplane import DEMO_APP
from dataplane import free_port
from dataplane import wait_http

from ansible_collections.bluegreen.aws.plugins.module_utils.gates import GateResult
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import Rollout
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import parse_steps
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.alb import AlbRouter
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import RouterError

STICKY = {"Enabled": True, "DurationSeconds": 300}


def network(aws, cidr="10.0.0.0/16"):
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    base = cidr.split(".")[:2]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base[0]}.{base[1]}.{i}.0/24", AvailabilityZone=f"{REGION}{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    return vpc, subnets


HEALTH_CHECK = dict(
    HealthCheckPath="/health", HealthCheckIntervalSeconds=5, HealthyThresholdCount=2, UnhealthyThresholdCount=2
)


@pytest.fixture
def alb(aws):
    return make_alb(aws)


def make_alb(aws):
    elb = aws("elbv2")
    vpc, subnets = network(aws)
    lb = elb.create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    groups = {
        name: elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc, **HEALTH_CHECK)["TargetGroups"][
            0
        ]["TargetGroupArn"]
        for name in ("blue", "green", "extra")
    }
    listener = elb.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["blue"]}],
    )["Listeners"][0]["ListenerArn"]
    calls = []
    elb.meta.events.register("before-call.elastic-load-balancing-v2.*", lambda model, **kw: calls.append(model.name))
    client = RetryingBotoClientWrapper(elb, AWSRetry.jittered_backoff(retries=3, delay=0))
    return {"client": client, "raw": elb, "lb": lb, "groups": groups, "listener": listener, "vpc": vpc, "calls": calls}


def forward_of(actions):
    return next(a for a in actions if a["Type"] == "forward")


def test_plain_forward_is_read_and_rewritten_as_weights(alb):
    router = AlbRouter(alb["client"], alb["listener"], "blue", "green")
    assert router.read() == {"blue": 100, "green": 0}
    assert router.write({"blue": 90, "green": 10}) is True
    assert router.read() == {"blue": 90, "green": 10}
    listener = alb["raw"].describe_listeners(ListenerArns=[alb["listener"]])["Listeners"][0]
    groups = forward_of(listener["DefaultActions"])["ForwardConfig"]["TargetGroups"]
    assert {(g["TargetGroupArn"], g["Weight"]) for g in groups} == {
        (alb["groups"]["blue"], 90),
        (alb["groups"]["green"], 10),
    }


def test_same_weights_are_not_written_again(alb):
    router = AlbRouter(alb["client"], alb["listener"], "blue", "green")
    router.write({"blue": 50, "green": 50})
    alb["calls"].clear()
    assert router.write({"blue": 50, "green": 50}) is False
    assert "DescribeListeners" in alb["calls"]  # the counter sees the calls the router makes...
    assert "ModifyListener" not in alb["calls"]  # ...and no write among them


def test_stickiness_and_other_target_groups_are_preserved_in_rule_mode(alb):
    raw, groups = alb["raw"], alb["groups"]
    forward = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": groups["blue"], "Weight": 100},
                {"TargetGroupArn": groups["extra"], "Weight": 7},
            ],
            "TargetGroupStickinessConfig": STICKY,
        },
    }
    rule = raw.create_rule(
        ListenerArn=alb["listener"],
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
        Actions=[forward],
    )["Rules"][0]["RuleArn"]
    router = AlbRouter(alb["client"], alb["listener"], "blue", "green", rule_arn=rule)
    outcome = Rollout(router, parse_steps([{"weight": 30}, {"weight": 100}]), gate_interval=0.1).run()
    assert outcome.status == "promoted"
    actions = raw.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"]
    config = forward_of(actions)["ForwardConfig"]
    assert config["TargetGroupStickinessConfig"] == STICKY
    weights = {g["TargetGroupArn"]: g["Weight"] for g in config["TargetGroups"]}
    assert weights == {groups["blue"]: 0, groups["green"]: 100, groups["extra"]: 7}
    # the default action was not touched
    listener = raw.describe_listeners(ListenerArns=[alb["listener"]])["Listeners"][0]
    assert forward_of(listener["DefaultActions"]).get("TargetGroupArn") == groups["blue"]


def test_failed_gate_returns_all_traffic_to_stable(alb):
    router = AlbRouter(alb["client"], alb["listener"], "blue", "green")

    class Failing:
        name = "alarm"

        def evaluate(self):
            return GateResult("alarm", "fail", "HTTPCode_Target_5XX_Count in ALARM")

    outcome = Rollout(
        router,
        parse_steps([{"weight": 10}, {"pause": 5}, {"weight": 100}]),
        gates=[Failing()],
        pre_gates=[],
        gate_interval=0.1,
    ).run()
    assert outcome.status == "rolled_back"
    assert router.read() == {"blue": 100, "green": 0}


def test_unknown_target_group_and_other_vpc_are_refused_before_any_write(alb, aws):
    with pytest.raises(RouterError, match="canary: target group nope not found"):
        AlbRouter(alb["client"], alb["listener"], "blue", "nope")
    elb = alb["raw"]
    other_vpc, unused_subnets = network(aws, "10.9.0.0/16")
    elb.create_target_group(Name="elsewhere", Protocol="HTTP", Port=80, VpcId=other_vpc)
    alb["calls"].clear()
    with pytest.raises(RouterError, match="canary: target group elsewhere belongs to another load balancer or VPC"):
        AlbRouter(alb["client"], alb["listener"], "blue", "elsewhere")
    assert "DescribeTargetGroups" in alb["calls"]
    assert not [c for c in alb["calls"] if c.startswith(("Modify", "Create", "Delete"))]
    with pytest.raises(RouterError, match="alb.listener_arn: listener .* not found"):
        AlbRouter(alb["client"], alb["listener"].replace("listener/app", "listener/app-x"), "blue", "green")


def test_traffic_switch_module_on_alb_is_idempotent(alb, aws, tmp_path):
    task = f"""\
- name: switch
  bluegreen.aws.traffic_switch:
    router: alb
    alb:
      listener_arn: {alb['listener']}
    stable: blue
    canary: green
    steps: [{{weight: 20}}, {{pause: 0.2}}, {{weight: 100}}]
    gate_interval: 0.1
"""
    rc, results, unused_report = run_playbook(task, aws.endpoint, tmp_path, check=True)
    assert rc == 0 and results["switch"]["changed"] is True and results["switch"]["status"] == "planned"
    assert AlbRouter(alb["client"], alb["listener"], "blue", "green").read() == {"blue": 100, "green": 0}
    rc, results, unused_report = run_playbook(task, aws.endpoint, tmp_path)
    assert rc == 0, results
    assert results["switch"]["changed"] is True and results["switch"]["live"] == "green"
    assert [e["weights"]["green"] for e in results["switch"]["timeline"] if e["event"] == "weight"] == [20, 100]
    rc, results, unused_report = run_playbook(task, aws.endpoint, tmp_path)
    assert rc == 0 and results["switch"]["changed"] is False
    info_task = f"""\
- name: info
  bluegreen.aws.traffic_info:
    router: alb
    alb: {{listener_arn: "{alb['listener']}"}}
    stable: blue
    canary: green
"""
    rc, results, unused_report = run_playbook(info_task, aws.endpoint, tmp_path)
    assert rc == 0 and results["info"]["live"] == "green" and results["info"]["weights"] == {"blue": 0, "green": 100}


@pytest.fixture
def emulated(emulator):
    """The same load balancer on the emulator: target health there is a real HTTP check of each instance."""

    def client(service):
        return emulator.client(service)

    client.endpoint = emulator.endpoint
    return make_alb(client), client


@pytest.fixture
def apps():
    """Start demo apps on loopback: apps(*extra) -> "127.0.0.1:PORT" (extra: e.g. "--fail")."""
    procs = []

    def start(*extra):
        port = free_port()
        procs.append(subprocess.Popen([sys.executable, DEMO_APP, "--port", str(port), "--version", "v2", *extra]))
        wait_http(f"http://127.0.0.1:{port}/version")
        return f"127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(5)


def green_instances(alb, aws, endpoint, count=2):
    """``count`` instances answering at ``endpoint`` (tag bgemu:endpoint), registered in the green group."""
    ec2 = aws("ec2")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [alb["vpc"]]}])["Subnets"][0]["SubnetId"]
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "bgemu:endpoint", "Value": endpoint}]}]
    ids = [
        i["InstanceId"]
        for i in ec2.run_instances(
            ImageId=ami, MinCount=count, MaxCount=count, SubnetId=subnet, TagSpecifications=tags
        )["Instances"]
    ]
    alb["raw"].register_targets(TargetGroupArn=alb["groups"]["green"], Targets=[{"Id": i, "Port": 80} for i in ids])
    return ids


def gated_task(alb):
    return f"""\
- name: switch
  bluegreen.aws.traffic_switch:
    router: alb
    alb: {{listener_arn: "{alb['listener']}"}}
    stable: blue
    canary: green
    steps: [{{weight: 10}}, {{pause: 0.3}}, {{weight: 100}}]
    gates:
      - type: target_health
        target_group: green
        min_healthy: 2
      - type: cloudwatch_alarm
        alarm_names: [green-5xx]
    pre_switch_timeout: 30
    gate_interval: 0.1
"""


def test_alb_canary_gated_on_target_health_and_alarm(emulated, apps, tmp_path):
    alb, aws = emulated
    green_instances(alb, aws, apps())
    cloudwatch = aws("cloudwatch")
    alarm(cloudwatch, "green-5xx", "OK")
    rc, results, unused_report = run_playbook(gated_task(alb), aws.endpoint, tmp_path)
    assert rc == 0, results
    gates = results["switch"]["timeline"][1]["gates"]
    assert [g["verdict"] for g in gates] == ["pass", "pass"]
    assert gates[0]["details"]["states"] == {"healthy": 2}

    # back to blue, then the same release with the alarm firing: stopped before the canary gets traffic
    AlbRouter(alb["client"], alb["listener"], "blue", "green").write({"blue": 100, "green": 0})
    cloudwatch.set_alarm_state(AlarmName="green-5xx", StateValue="ALARM", StateReason="5xx")
    rc, results, unused_report = run_playbook(gated_task(alb), aws.endpoint, tmp_path)
    assert rc != 0
    assert results["switch"]["status"] == "rolled_back"
    assert "in ALARM: green-5xx" in results["switch"]["msg"]
    assert AlbRouter(alb["client"], alb["listener"], "blue", "green").read() == {"blue": 100, "green": 0}


@pytest.mark.parametrize("broken", ["failing", "nobody"])
def test_target_health_gate_fails_when_green_does_not_answer_healthy(emulated, apps, tmp_path, broken):
    """The gate can fail: green's health check answers 503 (failing) or nothing listens at all (nobody)."""
    alb, aws = emulated
    green_instances(alb, aws, apps("--fail") if broken == "failing" else f"127.0.0.1:{free_port()}")
    alarm(aws("cloudwatch"), "green-5xx", "OK")
    rc, results, unused_report = run_playbook(gated_task(alb), aws.endpoint, tmp_path)
    switch = results["switch"]
    assert rc != 0 and switch["status"] == "rolled_back", switch
    failed = next(e for e in switch["timeline"] if e["event"] == "gate_failed")
    assert failed["gates"][0]["verdict"] == "fail" and failed["gates"][0]["details"]["states"] == {"unhealthy": 2}
    assert AlbRouter(alb["client"], alb["listener"], "blue", "green").read() == {"blue": 100, "green": 0}


def test_gate_without_its_required_option_is_a_clear_error(alb, aws, tmp_path):
    task = f"""\
- name: switch
  bluegreen.aws.traffic_switch:
    router: alb
    alb: {{listener_arn: "{alb['listener']}"}}
    stable: blue
    canary: green
    gates: [{{type: target_health}}]
"""
    rc, results, unused_report = run_playbook(task, aws.endpoint, tmp_path)
    assert rc != 0 and "gates[0].target_group is required for a target_health gate" in results["switch"]["msg"]
