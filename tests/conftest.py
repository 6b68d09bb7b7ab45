"""Make this checkout importable as ``ansible_collections.bluegreen.aws`` for pytest and ansible-playbook."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if ROOT.endswith(os.path.join("ansible_collections", "bluegreen", "aws")):
    COLLECTIONS = os.path.dirname(os.path.dirname(os.path.dirname(ROOT)))
else:
    # A plain checkout: lay it out as ansible_collections/bluegreen/aws with a symlink.
    COLLECTIONS = os.path.join(ROOT, ".build", "collections")
    link = os.path.join(COLLECTIONS, "ansible_collections", "bluegreen", "aws")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.islink(link):
        os.symlink(ROOT, link)

sys.path.insert(0, COLLECTIONS)
os.environ["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS


# -- the AWS emulator (tests/emulator/bgemu) ------------------------------------------------------------
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import boto3  # noqa: E402
import pytest  # noqa: E402

EMULATOR_PATH = os.path.join(ROOT, "tests", "emulator")
# bgemu, the shared fleet helpers (cdfleet) and the data-plane helpers (dataplane)
sys.path[:0] = [EMULATOR_PATH, os.path.join(ROOT, "tests", "integration")]
EMULATOR_REGION = "eu-west-1"
EMULATOR_TIME_SCALE = 0.01  # 100 AWS seconds pass in 1 real second


class EmulatorHandle:
    def __init__(self, url):
        self.url = url
        self.endpoint = url
        self.region = EMULATOR_REGION

    def admin(self, path, method="GET", data=None):
        request = urllib.request.Request(
            self.url + "/_bgemu/" + path,
            method=method,
            data=None if data is None else json.dumps(data).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def client(self, service, **kwargs):
        return boto3.client(
            service,
            endpoint_url=self.url,
            **kwargs,
            region_name=EMULATOR_REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def calls(self):
        return self.admin("calls")

    def fault(self, **fault):
        return self.admin("faults", "POST", fault)

    def reset(self, time_scale=EMULATOR_TIME_SCALE):
        self.admin("reset", "POST", {})
        self.admin("time-scale", "POST", {"scale": time_scale})


@pytest.fixture(scope="session")
def emulator_server():
    from dataplane import Processes
    from dataplane import start_emulator

    procs = Processes()
    try:
        url, unused_seconds = start_emulator(procs, EMULATOR_TIME_SCALE)
        yield EmulatorHandle(url)
    finally:
        procs.stop_all()


@pytest.fixture
def emulator(emulator_server):
    """The emulator, reset before each test (time scale EMULATOR_TIME_SCALE)."""
    emulator_server.reset()
    return emulator_server


@pytest.fixture
def revisions(emulator):
    """Map S3 keys to real demo apps: "app-good.zip" healthy, "app-broken.zip" failing its health check.

    Yields {key: "127.0.0.1:PORT"}: give instances one of these (cdfleet.fleet(blue_endpoint=...)) so their
    target health is real; an instance with no endpoint is unhealthy, as one nobody answers for on AWS."""
    from dataplane import DEMO_APP
    from dataplane import free_port

    procs, endpoints = [], {}
    for key, extra in (("app-good.zip", []), ("app-broken.zip", ["--fail"])):
        port = free_port()
        procs.append(subprocess.Popen([sys.executable, DEMO_APP, "--port", str(port), "--version", key, *extra]))
        endpoints[key] = f"127.0.0.1:{port}"
        emulator.admin("revisions", "POST", {"key": key, "endpoint": endpoints[key]})
        if key == "app-good.zip":  # same healthy app, but its AfterInstall script fails
            emulator.admin(
                "revisions",
                "POST",
                {"key": "app-bad-install.zip", "endpoint": f"127.0.0.1:{port}", "fail_hook": "AfterInstall"},
            )
    # the bundles themselves, so a deployment can pin them (codedeploy_deployment reads their ETag)
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="releases", CreateBucketConfiguration={"LocationConstraint": EMULATOR_REGION})
    for key in ("app-good.zip", "app-broken.zip", "app-bad-install.zip"):
        s3.put_object(Bucket="releases", Key=key, Body=f"bundle {key}".encode())
    time.sleep(0.5)
    yield endpoints
    for proc in procs:
        proc.terminate()
        proc.wait(5)
