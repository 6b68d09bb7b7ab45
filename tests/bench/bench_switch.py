"""make bench: what a traffic switch costs keep-alive clients, per router, measured in one run.

For each router, wrk keeps 16 keep-alive connections busy against the proxy (loopback, bounded in
time) while the router moves all traffic between two demo app slots SWITCHES times. Failed requests
are wrk's socket errors plus non-2xx answers.  Then rollback latency: a canary at 50% turns unhealthy,
and the engine's timeline gives the time from the gate failure it observed to 100% on stable, verified.

    naive   seed 002's switch: rewrite the active upstream to one server, `nginx -s reload`
    nginx   bluegreen.aws nginx router: weighted upstream, `nginx -t`, reload
    haproxy bluegreen.aws haproxy router: runtime API `set weight`, no reload

Then ALB-router API calls, counted by the AWS emulator (tests/emulator), per gate poll and per weight
step, with 1, 10 and 50 targets in the canary target group (the emulator runs at most 64 instances at once: it is
reset between the three); and the emulator's start time.

Then, on the emulator's ALB data plane (a real HAProxy per listener, following the ELBv2 model): failed
requests of wrk's keep-alive load sent to the listener while AlbRouter runs a canary 10/50/90/100 to green
and back to blue, and while a CodeDeploy blue/green deployment (COPY_AUTO_SCALING_GROUP, real bundles whose hook
scripts the emulator's agent runs, deregistration delay 60 s) moves it from blue to green through AllowTraffic
(waits for green to be healthy) and BlockTraffic (waits for blue to drain).  The emulator's start time: process
start to its first answered API call (STS GetCallerIdentity), several runs, median.

And the API calls it takes to wait for one CodeDeploy blue/green deployment: the
collection's Tracker (plugins/module_utils/codedeploy.py, 5 s polls) and boto3's ``deployment_successful``
waiter (15 s polls) on the same deployment at the emulator's time scale, each counted on its own client
(the emulator's GET /_bgemu/calls counts the sum).
"""

import argparse
import json
import os
import pathlib
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [
    os.path.join(ROOT, "tests", "integration"),
    os.path.join(ROOT, "tests", "emulator"),
    os.path.join(ROOT, ".build", "collections"),
]

import boto3  # noqa: E402
import cdfleet  # noqa: E402
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry  # noqa: E402
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import EndpointConnectionError  # noqa: E402
from dataplane import Processes  # noqa: E402
from dataplane import emulator_process  # noqa: E402
from dataplane import free_port  # noqa: E402
from dataplane import nginx_binary  # noqa: E402
from dataplane import start_emulator  # noqa: E402
from dataplane import start_haproxy  # noqa: E402
from dataplane import start_nginx  # noqa: E402

from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import Tracker  # noqa: E402
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import retry  # noqa: E402
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import HttpGate  # noqa: E402
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import TargetHealthGate  # noqa: E402
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import Rollout  # noqa: E402
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import parse_steps  # noqa: E402
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.alb import AlbRouter  # noqa: E402
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import Router  # noqa: E402
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.haproxy import HaproxyRouter  # noqa: E402
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.nginx import NginxRouter  # noqa: E402


class NaiveRouter(Router):
    """Seed 002's switch: the upstream holds only the active slot; switching rewrites it and reloads."""

    kind = "naive"

    def __init__(self, upstream_file, conf, servers):
        super().__init__("blue", "green")
        self.upstream_file, self.conf, self.servers = upstream_file, conf, servers

    def read(self):
        text = open(self.upstream_file).read()
        live = next(pool for pool, address in self.servers.items() if address in text)
        return self.weights_for(100 if live == "green" else 0)

    def write(self, weights):
        live = "green" if weights["green"] == 100 else "blue"
        with open(self.upstream_file, "w") as f:
            f.write(f"upstream app {{\n    server {self.servers[live]};\n    keepalive 32;\n}}\n")
        subprocess.run([nginx_binary(), "-c", self.conf, "-s", "reload"], check=True, capture_output=True)


def wrk_argv(url, seconds, connections=16):
    return ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "3s", url]


def wrk(url, seconds, connections=16):
    proc = subprocess.run(wrk_argv(url, seconds, connections), capture_output=True, text=True, check=True)
    return wrk_counts(proc.stdout)


def wrk_counts(out):
    """(requests, failed) from wrk's report: socket errors plus non-2xx/3xx answers."""
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return requests, socket_errors + (int(non_2xx.group(1)) if non_2xx else 0)


def switch_under_load(router, url, seconds, switches):
    """Alternate all traffic between the slots ``switches`` times while wrk runs; returns (requests, failed, done)."""
    result = {}

    def run_load():
        result["requests"], result["failed"] = wrk(url, seconds)

    load = threading.Thread(target=run_load)
    load.start()
    time.sleep(1.0)
    interval = (seconds - 2.0) / switches
    done = 0
    for i in range(switches):
        router.write(router.weights_for(100 if i % 2 == 0 else 0))
        done += 1
        time.sleep(interval)
    load.join()
    return result["requests"], result["failed"], done


def rollback_latency(router, canary_state_dir, canary_port, repeats):
    """ms from the gate failure the engine observed to 100% on stable (verified), per run."""
    samples = []
    flag = os.path.join(canary_state_dir, "fail")
    for _run in range(repeats):
        router.write(router.weights_for(0))
        if os.path.exists(flag):
            os.unlink(flag)
        gate = HttpGate([f"http://127.0.0.1:{canary_port}/health"], failure_threshold=1, timeout=1, name="canary")
        engine = Rollout(
            router, parse_steps([{"weight": 50}, {"pause": 30}, {"weight": 100}]), gates=[gate], gate_interval=0.1
        )
        threading.Timer(0.5, pathlib.Path(flag).touch).start()  # the canary turns unhealthy mid-pause
        outcome = engine.run()
        assert outcome.status == "rolled_back", outcome.timeline
        events = {e["event"]: e["t"] for e in outcome.timeline}
        samples.append((events["rolled_back"] - events["gate_failed"]) * 1000.0)
    return samples


def emulator_calls(endpoint):
    with urllib.request.urlopen(endpoint + "/_bgemu/calls", timeout=10) as response:
        return sum(json.load(response).values())


class Counted:
    """Counts, on the emulator, the API calls made while a gate evaluates."""

    def __init__(self, gate, endpoint):
        self.gate, self.endpoint, self.name = gate, endpoint, gate.name
        self.polls = 0
        self.during = 0

    def evaluate(self):
        before = emulator_calls(self.endpoint)
        result = self.gate.evaluate()
        self.polls += 1
        self.during += emulator_calls(self.endpoint) - before
        return result


def alb_calls(endpoint, targets):
    """(calls per gate poll, calls per weight step) for an ALB canary with ``targets`` canary targets."""
    region = "eu-west-1"
    session = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="bench", aws_secret_access_key="bench")
    ec2, elb = boto3.client("ec2", **session), boto3.client("elbv2", **session)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    suffix = str(targets)
    lb = elb.create_load_balancer(Name=f"bench{suffix}", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tg = {
        pool: elb.create_target_group(Name=f"{pool}{suffix}", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0][
            "TargetGroupArn"
        ]
        for pool in ("blue", "green")
    }
    listener = elb.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["blue"]}]
    )["Listeners"][0]["ListenerArn"]
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ids = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId=ami, MinCount=targets, MaxCount=targets, SubnetId=subnets[0])["Instances"]
    ]
    elb.register_targets(TargetGroupArn=tg["green"], Targets=[{"Id": i, "Port": 80} for i in ids])

    client = RetryingBotoClientWrapper(elb, AWSRetry.jittered_backoff())
    router = AlbRouter(client, listener, f"blue{suffix}", f"green{suffix}")
    # The targets have no endpoint: nothing answers their health checks, so they are never healthy (as on AWS).
    # What is measured is the calls one evaluation makes, so the gate is told to pass whatever the states.
    gate = Counted(TargetHealthGate(client, tg["green"], min_healthy=0, min_healthy_percent=0), endpoint)
    start = emulator_calls(endpoint)
    engine = Rollout(
        router,
        parse_steps([{"weight": 10}, {"pause": 1.0}, {"weight": 100}]),
        gates=[gate],
        pre_gates=[],
        gate_interval=0.1,
    )
    outcome = engine.run()
    assert outcome.status == "promoted", outcome.timeline
    router_calls = emulator_calls(endpoint) - start - gate.during
    weight_steps = sum(1 for e in outcome.timeline if e["event"] == "weight")
    return gate.during / gate.polls, (router_calls) / weight_steps


# Time scale for the deployment wait: 0.1 (10x faster than AWS) keeps a poll interval (0.5 s and 1.5 s) well above
# an API call's latency on a loaded 2-core machine; at 0.01 the latency, not the poll interval, sets the count.
WAIT_SCALE = 0.1


class Emulator:
    """What tests/emulator/cdfleet.py needs of the emulator (tests/conftest.py has the pytest version)."""

    region = "eu-west-1"

    def __init__(self, url):
        self.url = url

    def client(self, service, **kwargs):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            **kwargs,
        )

    def admin(self, path, method="GET", data=None, timeout=30):
        request = urllib.request.Request(
            f"{self.url}/_bgemu/{path}",
            method=method,
            data=None if data is None else json.dumps(data).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def alb_dataplane_canary(emulator, procs, seconds):
    """(requests, failed, weight steps) of wrk's keep-alive load through the emulated ALB during two canaries."""
    ec2, elb = emulator.client("ec2"), emulator.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"{emulator.region}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    lb = elb.create_load_balancer(Name="canary", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    groups = {}
    for pool, version in (("cblue", "v1"), ("cgreen", "v2")):
        port = free_port()
        procs.app(port, version)
        groups[pool] = elb.create_target_group(
            Name=pool, Protocol="HTTP", Port=80, VpcId=vpc, HealthCheckPath="/health", HealthCheckIntervalSeconds=5
        )["TargetGroups"][0]["TargetGroupArn"]
        tags = [{"ResourceType": "instance", "Tags": [{"Key": "bgemu:endpoint", "Value": f"127.0.0.1:{port}"}]}]
        iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnets[0], TagSpecifications=tags)[
            "Instances"
        ][0]["InstanceId"]
        elb.register_targets(TargetGroupArn=groups[pool], Targets=[{"Id": iid}])
    for arn in groups.values():
        wait_for(
            lambda arn=arn: all(
                t["TargetHealth"]["State"] == "healthy"
                for t in elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            ),
            30,
            "the canary's targets to be healthy",
        )
    listener = elb.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["cblue"]}],
    )["Listeners"][0]["ListenerArn"]
    (served,) = [e for e in emulator.admin("listeners") if e["listener_arn"] == listener]
    client = RetryingBotoClientWrapper(elb, AWSRetry.jittered_backoff())
    result = {}

    def run_load():
        result["requests"], result["failed"] = wrk(f"{served['url']}/version", seconds)

    load = threading.Thread(target=run_load)
    load.start()
    time.sleep(1.0)
    pause = max(0.5, (seconds - 3.0) / 8)  # two canaries of four pauses each
    steps = parse_steps(
        [{"weight": 10}, {"pause": pause}, {"weight": 50}, {"pause": pause}, {"weight": 90}, {"pause": pause}]
        + [{"weight": 100}, {"pause": pause}]
    )
    moves = 0
    for stable, canary in (("cblue", "cgreen"), ("cgreen", "cblue")):
        outcome = Rollout(AlbRouter(client, listener, stable, canary), steps, gate_interval=0.1).run()
        assert outcome.status == "promoted", outcome.timeline
        moves += sum(1 for e in outcome.timeline if e["event"] == "weight")
    load.join()
    return result["requests"], result["failed"], moves


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def emulator_start_times(runs):
    """[(wall seconds, CPU seconds)] from starting the emulator's process to its first answered API call, one per run.

    The CPU seconds do not grow with other work on the machine: on an idle one the wall time is about the same."""
    samples = []
    for _run in range(runs):
        procs = Processes()
        port = free_port()
        argv, env = emulator_process(port)
        sts = boto3.client(
            "sts",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="eu-west-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=30),
        )
        try:
            started = time.monotonic()
            proc = procs.start(argv, env=env)
            while True:
                try:
                    sts.get_caller_identity()
                    break
                except EndpointConnectionError:
                    if time.monotonic() - started > 90:
                        raise
                    time.sleep(0.01)
            samples.append((time.monotonic() - started, cpu_seconds(proc.pid)))
        finally:
            procs.stop_all()
    return samples


def codedeploy_through_alb(emulator, limit=240):
    """(requests, failed, seconds the deployment took) of wrk's keep-alive load through the emulated ALB while a
    CodeDeploy blue/green deployment of a real bundle (cdfleet: 2 blue instances, the agent running the hook scripts)
    moves the listener's target group from blue to green; AllowTraffic waits for green's health checks, BlockTraffic
    for blue's 60 s deregistration delay, then blue is terminated (termination wait 0)."""
    scale = 0.01
    emulator.admin("time-scale", "POST", {"scale": scale})
    cdfleet.upload(emulator, cdfleet.build_bundles())
    fleet = cdfleet.fleet(emulator, blue_revision="app-good.zip", termination_minutes=0, deregistration_delay=60)
    cdfleet.alb(emulator, fleet)
    wait_for(lambda: set(cdfleet.health(fleet).values()) == {"healthy"}, 60, "blue to be healthy")
    load = subprocess.Popen(
        wrk_argv(f"http://127.0.0.1:{fleet['port']}/version", limit), stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1.0)
        started = time.monotonic()
        deployment = cdfleet.deploy(fleet, "app-v2.zip")
        seen = cdfleet.wait_status(fleet, deployment, ("Succeeded", "Failed", "Stopped"), timeout=limit - 10)
        took = time.monotonic() - started
        assert seen[-1] == "Succeeded", seen
        time.sleep(1.0)
    finally:
        load.send_signal(signal.SIGINT)  # wrk stops and reports what it did so far
        out = load.communicate(timeout=30)[0]
    requests, failed = wrk_counts(out)
    return requests, failed, took  # real seconds: the hook scripts run in real time


def deployment_wait_calls(emulator, scale):
    """API calls to wait for one CodeDeploy blue/green deployment: {"tracker": n, "waiter": n, ...}.

    Both follow the same deployment at the same time, each on its own client (counted with botocore's
    before-call event); the emulator's call count over the same time is the sum."""
    emulator.admin("time-scale", "POST", {"scale": scale})
    cdfleet.upload(emulator, cdfleet.build_bundles())
    fleet = cdfleet.fleet(emulator, blue_revision="app-good.zip")
    counts = {"tracker": 0, "waiter": 0}
    clients = {}
    for who in counts:
        clients[who] = emulator.client("codedeploy")
        clients[who].meta.events.register(
            "before-call.codedeploy.*", lambda who=who, **kw: counts.__setitem__(who, counts[who] + 1)
        )
    before = sum(emulator.admin("calls").values())
    started = time.monotonic()
    deployment = cdfleet.deploy(fleet, "app-v2.zip")
    ended, errors = {}, []

    def tracker():
        try:
            client = RetryingBotoClientWrapper(clients["tracker"], retry())
            info = Tracker(client, deployment, poll=5 * scale, gate_interval=5 * scale, timeout=3600).run()
            ended["tracker"] = (time.monotonic() - started, info["status"])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def waiter():
        try:
            clients["waiter"].get_waiter("deployment_successful").wait(
                deploymentId=deployment, WaiterConfig={"Delay": 15 * scale, "MaxAttempts": 120}
            )
            ended["waiter"] = (time.monotonic() - started, "Succeeded")
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=tracker), threading.Thread(target=waiter)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    if errors:
        raise errors[0]
    aws_minutes = {who: t / scale / 60.0 for who, (t, unused_status) in ended.items()}
    total = sum(emulator.admin("calls").values()) - before - 1  # CreateDeployment
    return {
        "calls": counts,
        "aws_minutes": aws_minutes,
        "status": {who: status for who, (unused_t, status) in ended.items()},
        "emulator_calls": total,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=25, help="load duration per router")
    parser.add_argument("--switches", type=int, default=20)
    parser.add_argument("--rollbacks", type=int, default=5)
    parser.add_argument("--starts", type=int, default=5, help="emulator starts to time")
    args = parser.parse_args()

    procs = Processes()
    work = tempfile.mkdtemp(prefix="bluegreen-bench-")
    try:
        ports = {"blue": free_port(), "green": free_port()}
        state = {pool: os.path.join(work, f"slot-{pool}") for pool in ports}
        for pool, port in ports.items():
            os.makedirs(state[pool])
            procs.app(port, "v1" if pool == "blue" else "v2", "--state-dir", state[pool])
        servers = {pool: f"127.0.0.1:{port}" for pool, port in ports.items()}

        os.makedirs(os.path.join(work, "haproxy"))
        hap = start_haproxy(procs, os.path.join(work, "haproxy"), ports["blue"], ports["green"])
        haproxy = HaproxyRouter(hap["socket"], "app", "blue", "green", config_path=hap["config"])

        os.makedirs(os.path.join(work, "nginx"))
        weighted = (
            f"upstream app {{\n    server {servers['blue']} weight=100;\n    server {servers['green']} down;\n}}\n"
        )
        ngx = start_nginx(procs, os.path.join(work, "nginx"), weighted)
        nginx = NginxRouter(ngx["upstream_file"], "app", servers, "blue", "green", conf=ngx["conf"])

        os.makedirs(os.path.join(work, "naive"))
        single = f"upstream app {{\n    server {servers['blue']};\n    keepalive 32;\n}}\n"
        nai = start_nginx(procs, os.path.join(work, "naive"), single)
        naive = NaiveRouter(nai["upstream_file"], nai["conf"], servers)

        rows = []
        for name, router, url in (
            ("haproxy", haproxy, hap["url"]),
            ("nginx", nginx, ngx["url"]),
            ("naive", naive, nai["url"]),
        ):
            requests, failed, switches = switch_under_load(router, url + "/version", args.seconds, args.switches)
            rows.append((name, requests, failed, switches))
            print(f"  {name}: {requests} requests, {failed} failed, {switches} switches", flush=True)

        starts = emulator_start_times(args.starts)
        listed = ", ".join(f"{wall:.2f} s ({cpu:.2f} s CPU)" for wall, cpu in starts)
        print(f"  emulator start to first API call: {listed}", flush=True)
        emulator, unused_seconds = start_emulator(procs)
        per_targets = {}
        for targets in (1, 10, 50):  # every target is an instance with its own namespace: 64 at most at once
            urllib.request.urlopen(urllib.request.Request(emulator + "/_bgemu/reset", method="POST"), timeout=60)
            per_targets[targets] = alb_calls(emulator, targets)

        handle = Emulator(emulator)
        handle.admin("reset", "POST", {})
        handle.admin("time-scale", "POST", {"scale": 0.01})
        canary = alb_dataplane_canary(handle, procs, args.seconds)
        print(f"  emulated ALB canary: {canary[0]} requests, {canary[1]} failed, {canary[2]} weight steps", flush=True)
        handle.admin("reset", "POST", {})
        codedeploy = codedeploy_through_alb(handle)
        print(f"  CodeDeploy blue/green through the ALB: {codedeploy[0]} requests, {codedeploy[1]} failed", flush=True)
        handle.admin("reset", "POST", {})
        waits = deployment_wait_calls(handle, WAIT_SCALE)

        latencies = {}
        for name, router in (("haproxy", haproxy), ("nginx", nginx)):
            latencies[name] = rollback_latency(router, state["green"], ports["green"], args.rollbacks)

        print()
        print(f"Keep-alive load: wrk -t2 -c16, {args.seconds}s per router, loopback")
        print(f"{'router':<10}{'requests':>12}{'failed':>10}{'failed %':>10}{'switches':>10}")
        for name, requests, failed, switches in rows:
            print(f"{name:<10}{requests:>12}{failed:>10}{100.0 * failed / max(requests, 1):>9.3f}%{switches:>10}")
        print()
        print(f"Rollback latency, gate failure observed -> 100% on stable, verified ({args.rollbacks} runs)")
        print(f"{'router':<10}{'median ms':>12}{'max ms':>10}")
        for name, samples in latencies.items():
            print(f"{name:<10}{statistics.median(samples):>12.1f}{max(samples):>10.1f}")
        print()
        start = statistics.median(wall for wall, unused_cpu in starts)
        start_cpu = statistics.median(cpu for unused_wall, cpu in starts)
        print(
            f"AWS emulator start, process start -> first answered API call ({len(starts)} runs): "
            f"median {start:.2f} s (max {max(wall for wall, unused_cpu in starts):.2f} s), "
            f"median {start_cpu:.2f} CPU s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        print("ALB router API calls (counted by the emulator), target_health gate on the canary group")
        print(f"{'targets':<10}{'per poll':>10}{'per weight step':>17}")
        for targets, (per_poll, per_step) in per_targets.items():
            print(f"{targets:<10}{per_poll:>10.1f}{per_step:>17.1f}")
        print()
        print("Emulated ALB (HAProxy per listener), wrk -t2 -c16 keep-alive load on the listener")
        print(f"{'while':<58}{'requests':>10}{'failed':>10}{'failed %':>10}")
        for label, (requests, failed) in (
            (f"AlbRouter canary 10/50/90/100 and back ({canary[2]} steps)", canary[:2]),
            (f"CodeDeploy blue/green, dereg. delay 60 s ({codedeploy[2]:.0f} s)", codedeploy[:2]),
        ):
            print(f"{label:<58}{requests:>10}{failed:>10}{100.0 * failed / max(requests, 1):>9.3f}%")
        print()
        print(f"Waiting for one CodeDeploy blue/green deployment (same deployment, emulator time scale {WAIT_SCALE})")
        print(f"{'who':<34}{'API calls':>10}{'AWS minutes':>13}{'calls/AWS min':>15}")
        for who, label in (("tracker", "bluegreen.aws Tracker (5 s polls)"), ("waiter", "boto3 waiter (15 s polls)")):
            calls, minutes = waits["calls"][who], waits["aws_minutes"][who]
            print(f"{label:<34}{calls:>10}{minutes:>13.1f}{calls / minutes:>15.1f}")
        print(f"(emulator counted {waits['emulator_calls']} calls for both; final status {waits['status']})")
        haproxy_row = rows[0]
        if haproxy_row[2] != 0 or haproxy_row[1] < 100000 or haproxy_row[3] < 20:
            print("TARGET MISSED: haproxy router must serve >= 100,000 requests over >= 20 switches with 0 failed")
            return 1
        if start >= 3.0:
            print("TARGET MISSED: the emulator must answer its first API call in under 3 s (median)")
            return 1
        if (
            canary[1] != 0
            or codedeploy[1] != 0
            or waits["calls"]["tracker"] + waits["calls"]["waiter"] != waits["emulator_calls"]
        ):
            print("TARGET MISSED: no failed request through the emulated ALB, and every wait call counted")
            return 1
        return 0
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
