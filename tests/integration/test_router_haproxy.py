"""The HAProxy router and the rollout engine against real HAProxy and demo app processes."""

import http.server
import itertools
import json
import os
import socket
import threading
import time

import pytest
from cdfleet import alarm
from conftest import run_tasks
from dataplane import Processes
from dataplane import free_port
from dataplane import get
from dataplane import haproxy_binary
from dataplane import start_haproxy
from dataplane import wait_http

from ansible_collections.bluegreen.aws.plugins.module_utils.gates import HttpGate
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import Rollout
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import parse_steps
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import RouterError
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.haproxy import HaproxyRouter


@pytest.fixture
def procs():
    p = Processes()
    yield p
    p.stop_all()


@pytest.fixture
def stack(procs, tmp_path):
    """Bring up v1 (blue) and v2 (green, with ``green_args``) behind HAProxy; returns (hap, router, ports)."""
    ports = {"blue": free_port(), "green": free_port()}

    def bring_up(*green_args):
        procs.app(ports["blue"], "v1")
        procs.app(ports["green"], "v2", *green_args)
        hap = start_haproxy(procs, str(tmp_path), ports["blue"], ports["green"])
        return hap, HaproxyRouter(hap["socket"], "app", "blue", "green", config_path=hap["config"]), ports

    bring_up.procs, bring_up.tmp = procs, tmp_path
    return bring_up


def versions(url, n=40):
    seen = {}
    for status, body in [get(url + "/version") for request in range(n)]:
        key = json.loads(body).get("version") if status == 200 else f"HTTP {status}"
        seen[key] = seen.get(key, 0) + 1
    return seen


def green_requests(router):
    """Requests HAProxy sent to the green server (health checks are not counted)."""
    return int(router.stats()["green"]["stot"])


def test_weights_written_read_back_and_kept_across_restart(stack):
    hap, router, ports = stack()
    assert router.read() == {"blue": 100, "green": 0}
    router.write({"blue": 30, "green": 70})
    assert router.read() == {"blue": 30, "green": 70}
    assert f"server green 127.0.0.1:{ports['green']} weight 70 check" in open(hap["config"]).read()
    # restart HAProxy from the persisted config: the weights survive
    hap["proc"].terminate()
    hap["proc"].wait(5)
    os.unlink(hap["socket"])
    proc = stack.procs.start([haproxy_binary(), "-db", "-f", hap["config"]])
    deadline = time.monotonic() + 10
    while not os.path.exists(hap["socket"]):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    assert router.read() == {"blue": 30, "green": 70}


def test_healthy_canary_is_promoted(stack):
    hap, router, ports = stack()
    gate = HttpGate([f"http://127.0.0.1:{ports['green']}/health"], success_threshold=2, name="green-health")
    steps = parse_steps([{"weight": 10}, {"pause": 0.6}, {"weight": 50}, {"pause": 0.6}, {"weight": 100}])
    outcome = Rollout(router, steps, gates=[gate], pre_gates=[gate], gate_interval=0.2).run()
    assert outcome.status == "promoted", outcome.timeline
    assert router.read() == {"blue": 0, "green": 100}
    assert versions(hap["url"]) == {"v2": 40}


def test_unhealthy_canary_never_receives_a_request(stack):
    hap, router, ports = stack("--fail")
    gate = HttpGate([f"http://127.0.0.1:{ports['green']}/health"], failure_threshold=2, name="green-health")
    steps = parse_steps([{"weight": 10}, {"pause": 1}, {"weight": 100}])
    outcome = Rollout(router, steps, gates=[gate], pre_gates=[gate], gate_interval=0.2).run()
    assert outcome.status == "rolled_back"
    assert versions(hap["url"]) == {"v1": 40}
    assert green_requests(router) == 0
    assert router.read() == {"blue": 100, "green": 0}


def test_canary_failing_mid_step_is_rolled_back_within_one_gate_interval(stack):
    hap, router, ports = stack("--fail-after", "1.5")
    gate = HttpGate([f"http://127.0.0.1:{ports['green']}/health"], failure_threshold=1, name="green-health")
    steps = parse_steps([{"weight": 20}, {"pause": 30}, {"weight": 100}])
    interval = 0.25
    started = time.monotonic()
    outcome = Rollout(router, steps, gates=[gate], gate_interval=interval).run()
    elapsed = time.monotonic() - started
    assert outcome.status == "rolled_back", outcome.timeline
    events = {e["event"]: e for e in outcome.timeline}
    # the app turned bad ~1.5 s after it started; the gate saw it within one interval (+ probe time)
    assert events["gate_failed"]["weights"] == {"blue": 80, "green": 20}
    assert elapsed < 1.5 + interval + 1.0
    assert router.read() == {"blue": 100, "green": 0}
    assert versions(hap["url"]) == {"v1": 40}


def test_missing_socket_and_unknown_server_are_clear_errors(stack):
    tmp = stack.tmp
    with pytest.raises(RouterError, match=r"haproxy.socket: .* does not exist"):
        HaproxyRouter(str(tmp / "nope.sock"), "app", "blue", "green")
    hap, unused_router, unused_ports = stack()
    with pytest.raises(RouterError, match="no server app/yellow"):
        HaproxyRouter(hap["socket"], "app", "blue", "yellow").read()
    with pytest.raises(RouterError, match="haproxy.config"):
        HaproxyRouter(hap["socket"], "app", "blue", "green", config_path=str(tmp / "missing.cfg"))
    wait_http(hap["url"] + "/version")


def test_unreachable_proxy_is_a_clear_error(tmp_path):
    stale = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(stale)  # the file stays, nobody listens: HAProxy died without cleaning up
    router = HaproxyRouter(stale, "app", "blue", "green")
    with pytest.raises(RouterError, match=r"haproxy.socket: cannot talk to HAProxy at .*stale.sock"):
        router.read()


@pytest.mark.parametrize(
    "options, message",
    [
        ("steps: [{weight: 150}]", r"steps[0].weight must be an integer percentage from 0 to 100, got 150"),
        ("steps: [{weight: 10}, {pause: 1}]", "steps end at weight 10%, not 100%"),
        ("gates: [{urls: []}]", "gates[0].urls is required for a http gate"),
    ],
)
def test_module_bad_input_is_refused_without_a_write(stack, options, message):
    hap, router, ports = stack()
    before = open(hap["config"]).read()
    task = f"""\
- name: switch
  bluegreen.aws.traffic_switch:
    haproxy: {{socket: "{hap['socket']}", backend: app, config: "{hap['config']}"}}
    stable: blue
    canary: green
    {options}
"""
    rc, results, unused_report = run_tasks(task, stack.tmp)
    assert rc != 0
    assert message in results["switch"]["msg"]
    router = HaproxyRouter(hap["socket"], "app", "blue", "green")
    assert router.read() == {"blue": 100, "green": 0}
    assert open(hap["config"]).read() == before


def test_module_missing_socket_names_the_parameter(tmp_path):
    task = f"""\
- name: switch
  bluegreen.aws.traffic_switch:
    haproxy: {{socket: "{tmp_path}/none.sock", backend: app}}
    stable: blue
    canary: green
"""
    rc, results, unused_report = run_tasks(task, tmp_path)
    assert rc != 0 and "haproxy.socket: " in results["switch"]["msg"] and "does not exist" in results["switch"]["msg"]


# -- issue 11: an undecided gate never promotes; a gate whose source errors rolls back ---------------------------------
class Flapping(http.server.BaseHTTPRequestHandler):
    """A health endpoint that alternates 200 and 503, so no threshold is ever reached."""

    answers = itertools.count()

    def do_GET(self):
        status = 200 if next(type(self).answers) % 2 == 0 else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def flapping_health():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flapping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()


def switch_task(hap, gates, extra=""):
    return f"""\
- name: switch
  bluegreen.aws.traffic_switch:
    haproxy: {{socket: "{hap['socket']}", backend: app, config: "{hap['config']}"}}
    stable: blue
    canary: green
    steps: [{{weight: 10}}, {{pause: 3}}, {{weight: 50}}, {{pause: 3}}, {{weight: 100}}]
    pre_switch_check: false
    gate_interval: 0.25
    gates: {json.dumps(gates)}
{extra}"""


def canary_weights(result):
    return [e["weights"]["green"] for e in result["timeline"]]


def test_flapping_canary_never_exceeds_its_first_step_and_ends_on_stable(stack, flapping_health):
    hap, router, ports = stack()
    gate = {"name": "green-health", "urls": [flapping_health], "success_threshold": 2, "failure_threshold": 3}
    rc, results, unused = run_tasks(switch_task(hap, [gate]), stack.tmp)
    switch = results["switch"]
    assert rc != 0 and switch["status"] == "rolled_back", switch
    assert max(canary_weights(switch)) == 10  # the first step, never 50
    assert "gates undecided after 3s" in switch["reason"] and "green-health" in switch["reason"]
    assert switch["weights"] == {"blue": 100, "green": 0} and router.read() == {"blue": 100, "green": 0}
    assert versions(hap["url"]) == {"v1": 40}


def test_flapping_canary_with_on_undecided_hold_stays_at_its_first_step(stack, flapping_health):
    hap, router, ports = stack()
    gate = {"name": "green-health", "urls": [flapping_health], "success_threshold": 2, "failure_threshold": 3}
    rc, results, unused = run_tasks(switch_task(hap, [gate], "    on_undecided: hold\n"), stack.tmp)
    switch = results["switch"]
    assert rc != 0 and switch["status"] == "held", switch
    assert "traffic switch held" in switch["msg"] and "on_undecided=hold" in switch["msg"]
    assert switch["weights"] == {"blue": 90, "green": 10} and router.read() == {"blue": 90, "green": 10}


def test_gate_whose_aws_call_errors_mid_canary_ends_on_stable(stack, emulator):
    """The alarm gate passes, the canary gets 10%; then DescribeAlarms answers AccessDenied: all back to blue."""
    hap, router, ports = stack()
    alarm(emulator.client("cloudwatch"), "green-5xx", "OK")
    gate = {"type": "cloudwatch_alarm", "name": "green-alarms", "alarm_names": ["green-5xx"]}
    header = (
        f"module_defaults:\n  group/bluegreen.aws.aws:\n    endpoint_url: {emulator.url}\n"
        f"    region: {emulator.region}\n    access_key: testing\n    secret_key: testing\n"
    )

    def deny_when_the_canary_has_traffic():
        deadline = time.monotonic() + 60
        while router.read()["green"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        emulator.fault(operation="DescribeAlarms", code="AccessDenied", status=403, message="not authorized")

    injector = threading.Thread(target=deny_when_the_canary_has_traffic, daemon=True)
    injector.start()
    rc, results, unused = run_tasks(switch_task(hap, [gate]), stack.tmp, header=header)
    injector.join(5)
    switch = results["switch"]
    assert rc != 0 and switch["status"] == "rolled_back", switch
    assert "green-alarms: gate error" in switch["reason"] and "AccessDenied" in switch["reason"]
    assert max(canary_weights(switch)) == 10
    assert router.read() == {"blue": 100, "green": 0}
    assert versions(hap["url"]) == {"v1": 40}
