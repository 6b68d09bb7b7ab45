"""An ALB canary end to end on the emulator: real apps behind the target groups, health from real HTTP checks."""

import subprocess
import sys
import threading

import pytest
from conftest import run_playbook
from dataplane import DEMO_APP
from dataplane import free_port
from dataplane import wait_http


@pytest.fixture
def fleet(emulator, tmp_path):
    """blue (v1) and green (v2) target groups, one instance each, each instance a real demo app."""
    procs = []
    ec2, elb = emulator.client("ec2"), emulator.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{emulator.region}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    lb = elb.create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    groups, flags = {}, {}
    for pool, version in (("blue", "v1"), ("green", "v2")):
        port = free_port()
        state_dir = tmp_path / pool
        state_dir.mkdir()
        procs.append(
            subprocess.Popen(
                [sys.executable, DEMO_APP, "--port", str(port), "--version", version, "--state-dir", str(state_dir)]
            )
        )
        wait_http(f"http://127.0.0.1:{port}/health")
        flags[pool] = state_dir / "fail"
        groups[pool] = elb.create_target_group(
            Name=pool,
            Protocol="HTTP",
            Port=80,
            VpcId=vpc,
            HealthCheckPath="/health/deep",
            HealthCheckIntervalSeconds=5,
            HealthyThresholdCount=2,
            UnhealthyThresholdCount=2,
        )["TargetGroups"][0]["TargetGroupArn"]
        tags = [{"ResourceType": "instance", "Tags": [{"Key": "bgemu:endpoint", "Value": f"127.0.0.1:{port}"}]}]
        iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnets[0], TagSpecifications=tags)[
            "Instances"
        ][0]["InstanceId"]
        elb.register_targets(TargetGroupArn=groups[pool], Targets=[{"Id": iid}])
    listener = elb.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["blue"]}],
    )["Listeners"][0]["ListenerArn"]
    yield {"listener": listener, "flags": flags, "elb": elb, "groups": groups}
    for proc in procs:
        proc.terminate()
        proc.wait(5)


def task(listener):
    return f"""\
- name: switch
  bluegreen.aws.traffic_switch:
    router: alb
    alb: {{listener_arn: "{listener}"}}
    stable: blue
    canary: green
    steps: [{{weight: 10}}, {{pause: 3}}, {{weight: 50}}, {{pause: 3}}, {{weight: 100}}]
    gates:
      - type: target_health
        target_group: green
        failure_threshold: 1
    pre_switch_timeout: 10
    gate_interval: 0.2
"""


def weights(fleet):
    listener = fleet["elb"].describe_listeners(ListenerArns=[fleet["listener"]])["Listeners"][0]
    groups = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    return sorted(g["Weight"] for g in groups)


def test_healthy_green_is_promoted(emulator, fleet, tmp_path):
    rc, results, unused_report = run_playbook(task(fleet["listener"]), emulator.endpoint, tmp_path)
    assert rc == 0, results["switch"]
    assert results["switch"]["live"] == "green"
    # the pre-switch gate waited for the target to leave "initial"
    first = next(e for e in results["switch"]["timeline"] if e["event"] == "gates_passed")
    assert first["gates"][0]["details"]["states"] == {"healthy": 1}


def break_green_once_it_has_traffic(fleet, stop):
    """v2 breaks during the canary: as soon as the listener gives green a weight (not at a fixed time)."""
    elb = fleet["elb"]
    while not stop.is_set():
        listener = elb.describe_listeners(ListenerArns=[fleet["listener"]])["Listeners"][0]
        forward = listener["DefaultActions"][0].get("ForwardConfig", {}).get("TargetGroups", [])
        if any(g["TargetGroupArn"] == fleet["groups"]["green"] and g["Weight"] > 0 for g in forward):
            fleet["flags"]["green"].touch()
            return
        stop.wait(0.1)


def test_green_failing_mid_canary_is_rolled_back(emulator, fleet, tmp_path):
    stop = threading.Event()
    breaker = threading.Thread(target=break_green_once_it_has_traffic, args=(fleet, stop), daemon=True)
    breaker.start()
    try:
        rc, results, unused_report = run_playbook(task(fleet["listener"]), emulator.endpoint, tmp_path)
    finally:
        stop.set()
        breaker.join(5)
    switch = results["switch"]
    assert rc != 0 and switch["status"] == "rolled_back", switch
    failed = next(e for e in switch["timeline"] if e["event"] == "gate_failed")
    assert failed["gates"][0]["details"]["states"] == {"unhealthy": 1}
    assert 0 < failed["weights"]["green"] < 100
    assert weights(fleet) == [0, 100] and switch["weights"] == {"blue": 100, "green": 0}
