"""The ALB data plane (bgemu.dataplane): real requests through the HAProxy that serves each emulated listener."""

import http.client
import json
import os
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest
from dataplane import Processes
from dataplane import free_port

HEALTH = dict(
    HealthCheckPath="/health", HealthCheckIntervalSeconds=5, HealthyThresholdCount=2, UnhealthyThresholdCount=2
)


def eventually(check, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.02)


class Site:
    """A load balancer in a VPC with helpers to add target groups of real apps and to send requests."""

    def __init__(self, emulator, procs):
        self.emulator, self.procs = emulator, procs
        self.ec2, self.elb = emulator.client("ec2"), emulator.client("elbv2")
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [
            self.ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"eu-west-1{az}")[
                "Subnet"
            ]["SubnetId"]
            for i, az in ((1, "a"), (2, "b"))
        ]
        self.lb = self.elb.create_load_balancer(Name="web", Subnets=self.subnets)["LoadBalancers"][0]["LoadBalancerArn"]
        self.ami = self.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def instance(self, endpoint=None):
        tags = []
        if endpoint:
            tags = [{"ResourceType": "instance", "Tags": [{"Key": "bgemu:endpoint", "Value": endpoint}]}]
        return self.ec2.run_instances(
            ImageId=self.ami, MinCount=1, MaxCount=1, SubnetId=self.subnets[0], TagSpecifications=tags
        )["Instances"][0]["InstanceId"]

    def app(self, version, *extra):
        port = free_port()
        self.procs.app(port, version, *extra)
        return self.instance(f"127.0.0.1:{port}")

    def group(self, name, instances, **attributes):
        arn = self.elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=self.vpc, **HEALTH)[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        if attributes:
            self.elb.modify_target_group_attributes(
                TargetGroupArn=arn, Attributes=[{"Key": k, "Value": str(v)} for k, v in attributes.items()]
            )
        if instances:
            self.elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": i} for i in instances])
        return arn

    def states(self, group):
        answer = self.elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
        return {t["Target"]["Id"]: t["TargetHealth"]["State"] for t in answer}

    def wait_states(self, group, wanted):
        eventually(lambda: self.states(group) == wanted, what=f"target states {wanted}")

    def listener(self, *groups):
        weights = [{"TargetGroupArn": g, "Weight": w} for g, w in groups]
        arn = self.elb.create_listener(
            LoadBalancerArn=self.lb,
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": weights}}],
        )["Listeners"][0]["ListenerArn"]
        return arn, self.served(arn)

    def served(self, listener):
        (found,) = [entry for entry in self.emulator.admin("listeners") if entry["listener_arn"] == listener]
        return found

    def weigh(self, listener, *groups):
        weights = [{"TargetGroupArn": g, "Weight": w} for g, w in groups]
        self.elb.modify_listener(
            ListenerArn=listener, DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": weights}}]
        )


def send(port, count, path="/version", host=None):
    """``count`` requests on one keep-alive connection: Counter of (status, version or None)."""
    seen = Counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _request in range(count):
            connection.request("GET", path, headers={"Host": host} if host else {})
            response = connection.getresponse()
            body = response.read()
            try:
                version = json.loads(body).get("version")
            except ValueError:
                version = None
            seen[(response.status, version)] += 1
            if response.getheader("connection", "").lower() == "close":
                connection.close()
    finally:
        connection.close()
    return seen


@pytest.fixture
def site(emulator):
    procs = Processes()
    try:
        yield Site(emulator, procs)
    finally:
        procs.stop_all()


def test_listener_is_served_and_forward_weights_follow_modify_listener(site):
    blue, green = site.group("blue", [site.app("v1")]), site.group("green", [site.app("v2")])
    site.wait_states(blue, {i: "healthy" for i in site.states(blue)})
    site.wait_states(green, {i: "healthy" for i in site.states(green)})
    listener, served = site.listener((blue, 1), (green, 0))
    assert served["dns_name"].startswith("web-") and served["port"] == 80
    port = served["local_port"]
    assert send(port, 50) == {(200, "v1"): 50}
    site.weigh(listener, (blue, 70), (green, 30))  # the call returns once HAProxy has the change
    seen = send(port, 400)
    assert set(seen) == {(200, "v1"), (200, "v2")}
    assert abs(seen[(200, "v2")] / 400 - 0.30) <= 0.05, seen
    site.weigh(listener, (blue, 0), (green, 100))
    assert send(port, 50) == {(200, "v2"): 50}


def test_rules_route_by_path_host_and_priority(site):
    blue, green = site.group("blue", [site.app("v1")]), site.group("green", [site.app("v2")])
    site.wait_states(blue, {i: "healthy" for i in site.states(blue)})
    site.wait_states(green, {i: "healthy" for i in site.states(green)})
    listener, served = site.listener((blue, 1))
    port = served["local_port"]
    forward_green = [{"Type": "forward", "TargetGroupArn": green}]
    by_path = site.elb.create_rule(
        ListenerArn=listener,
        Priority=20,
        Conditions=[{"Field": "path-pattern", "Values": ["/ver*"]}],
        Actions=forward_green,
    )["Rules"][0]["RuleArn"]
    assert send(port, 10, "/version") == {(200, "v2"): 10}
    assert send(port, 10, "/") == {(200, "v1"): 10}
    # a rule with a lower priority number wins: only for this host, back to blue
    site.elb.create_rule(
        ListenerArn=listener,
        Priority=10,
        Conditions=[
            {"Field": "host-header", "Values": ["*.Example.com"]},
            {"Field": "path-pattern", "Values": ["/version"]},
        ],
        Actions=[{"Type": "forward", "TargetGroupArn": blue}],
    )
    assert send(port, 10, "/version", host="shop.example.COM:80") == {(200, "v1"): 10}
    assert send(port, 10, "/version", host="example.org") == {(200, "v2"): 10}
    site.elb.delete_rule(RuleArn=by_path)
    assert send(port, 10, "/version", host="example.org") == {(200, "v1"): 10}


def test_only_healthy_targets_get_requests_while_one_is_healthy(site, emulator):
    good, bad = site.app("v2"), site.app("v2-bad")
    green = site.group("green", [good, bad])
    site.wait_states(green, {good: "healthy", bad: "healthy"})
    unused, served = site.listener((green, 1))
    assert set(send(served["local_port"], 20)) == {(200, "v2"), (200, "v2-bad")}
    emulator.admin("health", "POST", {"instance_id": bad, "healthy": False})
    site.wait_states(green, {good: "healthy", bad: "unhealthy"})
    assert send(served["local_port"], 200) == {(200, "v2"): 200}
    emulator.admin("health", "POST", {"instance_id": bad, "healthy": None})
    site.wait_states(green, {good: "healthy", bad: "healthy"})
    assert set(send(served["local_port"], 20)) == {(200, "v2"), (200, "v2-bad")}


def test_fail_open_all_unhealthy_targets_still_get_requests(site, emulator):
    first, second = site.app("v2-a"), site.app("v2-b")
    green = site.group("green", [first, second])
    site.wait_states(green, {first: "healthy", second: "healthy"})
    unused, served = site.listener((green, 1))
    for instance in (first, second):
        emulator.admin("health", "POST", {"instance_id": instance, "healthy": False})
    site.wait_states(green, {first: "unhealthy", second: "unhealthy"})
    # ALB fails open: a group with only unhealthy targets routes to all of them
    assert send(served["local_port"], 100) == {(200, "v2-a"): 50, (200, "v2-b"): 50}


def test_a_group_nobody_can_answer_keeps_its_share_and_fails(site):
    blue = site.group("blue", [site.app("v1")])
    site.wait_states(blue, {i: "healthy" for i in site.states(blue)})
    empty = site.group("empty", [])
    unused, served = site.listener((blue, 50), (empty, 50))
    seen = send(served["local_port"], 200)
    assert seen[(200, "v1")] == 100 and seen[(503, None)] == 100, seen
    # an instance with no endpoint: nothing answers, it stays unhealthy, fail-open sends requests to it: 503
    nobody = site.instance()
    site.elb.register_targets(TargetGroupArn=empty, Targets=[{"Id": nobody}])
    site.wait_states(empty, {nobody: "unhealthy"})
    seen = send(served["local_port"], 200)
    assert seen[(200, "v1")] == 100 and seen[(503, None)] == 100, seen


class SlowApp:
    """A target that records when each request started; ``/slow`` takes ``SLOW`` seconds to answer."""

    SLOW = 1.5

    def __init__(self, name):
        self.name, self.started = name, []
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self):
                app.started.append((time.monotonic(), self.path))
                if self.path == "/slow":
                    time.sleep(app.SLOW)
                body = json.dumps({"version": app.name}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # the load balancer closing its connection to a target is not an error here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.endpoint = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_draining_target_finishes_in_flight_requests_and_gets_no_new_ones(site):
    apps = {"a": SlowApp("a"), "b": SlowApp("b")}
    try:
        ids = {name: site.instance(app.endpoint) for name, app in apps.items()}
        # 1000 AWS seconds of deregistration delay: 10 s at the tests' time scale, longer than the slow request
        group = site.group("web", list(ids.values()), **{"deregistration_delay.timeout_seconds": 1000})
        site.wait_states(group, {ids["a"]: "healthy", ids["b"]: "healthy"})
        unused, served = site.listener((group, 1))
        port = served["local_port"]
        # a slow request in flight on "a" (round robin: one of two consecutive requests lands there)
        results = []

        def slow():
            results.append(send(port, 1, "/slow"))

        def slow_started():
            return sum(path == "/slow" for app in apps.values() for unused_t, path in app.started)

        slow_threads = []
        while not any(path == "/slow" for unused_t, path in apps["a"].started):
            thread = threading.Thread(target=slow)
            thread.start()
            slow_threads.append(thread)
            eventually(lambda: slow_started() >= len(slow_threads), 5, "the slow request to reach a target")
            assert len(slow_threads) <= 4
        site.elb.deregister_targets(TargetGroupArn=group, Targets=[{"Id": ids["a"]}])
        deregistered = time.monotonic()
        assert site.states(group)[ids["a"]] == "draining"
        seen = send(port, 100)
        assert seen == {(200, "b"): 100}
        after = [t for t, unused_path in apps["a"].started if t >= deregistered]
        assert after == [], "a draining target got a new request"
        assert site.states(group)[ids["a"]] == "draining"  # still within the delay
        for thread in slow_threads:
            thread.join(10)
        assert any(r == {(200, "a"): 1} for r in results), results  # the in-flight request on "a" finished
        assert all(set(r) <= {(200, "a"), (200, "b")} for r in results), results
        # once the delay is over the target leaves the data plane too
        eventually(lambda: ids["a"] not in site.states(group), what="the deregistration delay to end")
        targets = {s["target"] for s in site.served(served["listener_arn"])["backends"]["default"]}
        assert targets == {ids["b"]}
    finally:
        for app in apps.values():
            app.close()


def test_proxies_start_with_the_first_listener_and_stop_with_it_and_on_reset(site, emulator):
    assert emulator.admin("listeners") == []
    blue = site.group("blue", [site.app("v1")])
    first, served = site.listener((blue, 1))
    assert os.path.exists(f"/proc/{served['pid']}")
    site.elb.delete_listener(ListenerArn=first)
    assert emulator.admin("listeners") == []
    eventually(lambda: not os.path.exists(f"/proc/{served['pid']}"), 5, "haproxy to stop")
    unused, served = site.listener((blue, 1))
    emulator.reset()
    assert emulator.admin("listeners") == []
    eventually(lambda: not os.path.exists(f"/proc/{served['pid']}"), 5, "haproxy to stop on reset")
