"""An ALB canary with bluegreen.aws.traffic_switch, measured through the emulator's ALB data plane (real HAProxy).

Each target group holds a healthy demo app and one that fails its health checks (and answers 500): the share of
requests green answers must follow each weight step, no request may reach the unhealthy targets, and a keep-alive
client sending requests the whole time must see no failure.
"""

import time

import pytest
from conftest import run_playbook
from dataplane import KeepAliveLoad
from dataplane import Poller
from dataplane import Processes
from dataplane import free_port
from dataplane import served

STEPS = (10, 50, 90)
PAUSE = 8  # seconds per step: enough for >= 1,000 requests on a loaded 2-core machine
MIN_REQUESTS = 1000
CLIENTS = 4
CLIENT_LIMIT = 240  # the load stops after this many seconds whatever happens


@pytest.fixture
def canary(emulator):
    procs = Processes()
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
    groups, expected = {}, {}
    try:
        for pool, version in (("blue", "v1"), ("green", "v2")):
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
            for name, extra in ((version, []), (f"{version}-unhealthy", ["--fail"])):
                port = free_port()
                procs.app(port, name, *extra)  # "--fail": /health answers 503, /version 500
                tags = [{"ResourceType": "instance", "Tags": [{"Key": "bgemu:endpoint", "Value": f"127.0.0.1:{port}"}]}]
                iid = ec2.run_instances(
                    ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnets[0], TagSpecifications=tags
                )["Instances"][0]["InstanceId"]
                elb.register_targets(TargetGroupArn=groups[pool], Targets=[{"Id": iid}])
                expected[iid] = "unhealthy" if extra else "healthy"
        listener = elb.create_listener(
            LoadBalancerArn=lb,
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["blue"]}],
        )["Listeners"][0]["ListenerArn"]

        def states():
            found = {}
            for arn in groups.values():
                for t in elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]:
                    found[t["Target"]["Id"]] = t["TargetHealth"]["State"]
            return found

        deadline = time.monotonic() + 30
        while states() != expected:
            assert time.monotonic() < deadline, f"targets never reached {expected}: {states()}"
            time.sleep(0.05)
        yield {"listener": listener, "groups": groups, "port": served(emulator, listener)["local_port"]}
    finally:
        procs.stop_all()


class Watcher(Poller):
    """Polls GET /_bgemu/listeners every 50 ms: the green weight in the data plane."""

    def __init__(self, emulator, listener, green):
        super().__init__(limit=CLIENT_LIMIT)
        self.emulator, self.listener, self.green = emulator, listener, green

    def sample(self):
        forward = {f["target_group"]: f["weight"] for f in served(self.emulator, self.listener)["forwards"]["default"]}
        return round(100 * forward.get(self.green, 0) / sum(forward.values()))

    def window(self, weight):
        """(from, to): green had ``weight`` in HAProxy for the whole of it."""
        seen = [(asked, answered) for asked, answered, unused_wall, w in self.samples if w == weight]
        assert seen, f"the data plane never had green at {weight}%"
        return seen[0][1], seen[-1][0]


def task(listener):
    steps = ", ".join(f"{{weight: {w}}}, {{pause: {PAUSE}}}" for w in STEPS)
    return f"""\
- name: switch
  bluegreen.aws.traffic_switch:
    router: alb
    alb: {{listener_arn: "{listener}"}}
    stable: blue
    canary: green
    steps: [{steps}, {{weight: 100}}]
    gates:
      - type: target_health
        target_group: green
        min_healthy: 1
        min_healthy_percent: 50
        failure_threshold: 2
    pre_switch_timeout: 10
    gate_interval: 0.5
"""


def test_canary_shares_follow_the_weights_with_no_failed_request(emulator, canary, tmp_path):
    load = KeepAliveLoad(canary["port"], clients=CLIENTS, limit=CLIENT_LIMIT)
    with load, Watcher(emulator, canary["listener"], canary["groups"]["green"]) as watcher:
        rc, results, unused_report = run_playbook(task(canary["listener"]), emulator.endpoint, tmp_path)
        load.wait_for(200, time.monotonic())  # a little traffic after the end: all of it on green
    assert rc == 0 and results["switch"]["status"] == "promoted", results["switch"]
    records = [(started, status, version) for started, unused_ended, status, version in load.records]
    failed = [r for r in records if r[1] != 200]
    print(f"{len(failed)} failed of {len(records)} requests across the canary")
    assert len(records) > 3 * MIN_REQUESTS
    assert failed == [], f"{len(failed)} of {len(records)} requests failed, first: {failed[:5]}"
    unhealthy = [r for r in records if str(r[2]).endswith("-unhealthy")]
    assert unhealthy == [], "requests reached unhealthy targets while their group had a healthy one"
    shares = {}
    for weight in STEPS:
        start, stop = watcher.window(weight)
        answered = [r[2] for r in records if start <= r[0] <= stop]
        assert len(answered) >= MIN_REQUESTS, f"only {len(answered)} requests at {weight}%"
        shares[weight] = 100.0 * answered.count("v2") / len(answered)
        print(f"green at {weight}%: {shares[weight]:.1f}% of {len(answered)} requests answered by green")
        assert set(answered) <= {"v1", "v2"}
    assert all(abs(share - weight) <= 5 for weight, share in shares.items()), shares
    after = [r[2] for r in records if r[0] > watcher.window(100)[0]]
    assert after and set(after) == {"v2"}
