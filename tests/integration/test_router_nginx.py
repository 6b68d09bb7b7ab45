"""The nginx router against a real nginx and demo app processes."""

import json
import time

import pytest
from dataplane import Processes
from dataplane import free_port
from dataplane import get
from dataplane import start_nginx

from ansible_collections.bluegreen.aws.plugins.module_utils.gates import HttpGate
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import Rollout
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import parse_steps
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import RouterError
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.nginx import NginxRouter


@pytest.fixture
def stack(tmp_path):
    procs = Processes()
    ports = {"blue": free_port(), "green": free_port()}
    procs.app(ports["blue"], "v1")
    procs.app(ports["green"], "v2")
    servers = {pool: f"127.0.0.1:{port}" for pool, port in ports.items()}
    initial = f"upstream app {{\n    server {servers['blue']} weight=100;\n    server {servers['green']} down;\n}}\n"
    nginx = start_nginx(procs, str(tmp_path), initial)
    router = NginxRouter(nginx["upstream_file"], "app", servers, "blue", "green", conf=nginx["conf"])
    yield router, nginx, ports, procs
    procs.stop_all()


def versions(url, n=40):
    seen = {}
    for status, body in [get(url + "/version") for request in range(n)]:
        key = json.loads(body)["version"] if status == 200 else f"HTTP {status}"
        seen[key] = seen.get(key, 0) + 1
    return seen


def eventually(check, timeout=10.0):
    """nginx reloads asynchronously: old workers finish before the new ones own all traffic."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_read_write_render_and_reload(stack):
    router, nginx, unused_ports, unused_procs = stack
    assert router.read() == {"blue": 100, "green": 0}
    router.write({"blue": 0, "green": 100})
    assert router.read() == {"blue": 0, "green": 100}
    assert "down;" in open(nginx["upstream_file"]).read()
    eventually(lambda: versions(nginx["url"], 10) == {"v2": 10})


def test_rollout_through_nginx(stack):
    router, nginx, ports, unused_procs = stack
    gate = HttpGate([f"http://127.0.0.1:{ports['green']}/health"], success_threshold=2, name="green-health")
    steps = parse_steps([{"weight": 25}, {"pause": 0.5}, {"weight": 100}])
    outcome = Rollout(router, steps, gates=[gate], pre_gates=[gate], gate_interval=0.2).run()
    assert outcome.status == "promoted"
    eventually(lambda: versions(nginx["url"], 20) == {"v2": 20})


def test_failed_config_test_restores_the_previous_file_and_keeps_serving(stack):
    router, nginx, unused_ports, unused_procs = stack
    before = open(nginx["upstream_file"]).read()
    router.upstream = "app;"  # renders an upstream nginx -t rejects
    with pytest.raises(RouterError, match="nginx -t rejected the new upstream, previous file restored"):
        router.write({"blue": 50, "green": 50})
    assert open(nginx["upstream_file"]).read() == before
    assert versions(nginx["url"], 10) == {"v1": 10}


def test_bad_paths_are_clear_errors(stack, tmp_path):
    router, nginx, unused_ports, unused_procs = stack
    servers = router.servers
    with pytest.raises(RouterError, match="nginx.upstream_file: .* is not a file"):
        NginxRouter(str(tmp_path / "none.conf"), "app", servers, "blue", "green")
    with pytest.raises(RouterError, match="nginx.binary: /nope/nginx not found"):
        NginxRouter(nginx["upstream_file"], "app", servers, "blue", "green", binary="/nope/nginx")
    with pytest.raises(RouterError, match=r"nginx.servers must give an address for each pool; missing \['green'\]"):
        NginxRouter(nginx["upstream_file"], "app", {"blue": servers["blue"]}, "blue", "green")
    with pytest.raises(RouterError, match="refusing to mark every pool down"):
        router.write({"blue": 0, "green": 0})
