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

    def admin(self, path, method="GET", data=None, timeout=10):
        request = urllib.request.Request(
            self.url + "/_bgemu/" + path,
            method=method,
            data=None if data is None else json.dumps(data).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
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
    running = set()
    try:
        url, unused_seconds = start_emulator(procs, EMULATOR_TIME_SCALE)
        handle = EmulatorHandle(url)
        yield handle
        running = {m["netns"] for m in handle.admin("instances").values()}
    finally:
        procs.stop_all()
    # its shutdown removed every instance's namespaces (and so the processes in them)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True, timeout=30).stdout
    leaked = running & {line.split()[0] for line in listed.splitlines() if line.strip()}
    assert not leaked, f"network namespaces left behind by the emulator: {sorted(leaked)}"


@pytest.fixture
def emulator(emulator_server):
    """The emulator, reset before each test (time scale EMULATOR_TIME_SCALE)."""
    emulator_server.reset()
    return emulator_server


@pytest.fixture(scope="session")
def bundles():
    """Real CodeDeploy bundles, rendered by the appspec role and zipped by codedeploy_bundle (cached in .build/bundles
    until the role changes): {S3 key: zip path} for cdfleet.BUNDLES ("app-good.zip", "app-v2.zip",
    "app-broken.zip", "app-degrading.zip")."""
    from cdfleet import build_bundles

    return build_bundles()


@pytest.fixture
def revisions(emulator, bundles):
    """The bundles uploaded to the emulated S3 bucket "releases"; yields {key: zip path}.

    A deployment of one runs its real hook scripts on every green instance (the emulator's agent and stand-in
    engine); ``cdfleet.fleet(emulator, blue_revision="app-good.zip")`` installs one on the blue instances so they
    answer. An instance with no app is unhealthy, as one nobody answers for on AWS."""
    from cdfleet import upload

    upload(emulator, bundles)
    return bundles
