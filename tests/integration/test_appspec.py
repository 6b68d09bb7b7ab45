"""The appspec role: rendered by real ansible-playbook runs, its hook scripts run for real, in CodeDeploy's order,
against podman serving the demo app image (built offline by tests/tools/build-demo-image.sh)."""

import hashlib
import json
import os
import subprocess

import pytest
import yaml
from conftest import run_tasks
from dataplane import fake_imds
from dataplane import free_port
from dataplane import get

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "localhost/bluegreen-demo:1.0.0"
ORDER = ["ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]
SCRIPT = {
    "ApplicationStop": "application_stop.sh",
    "BeforeInstall": "before_install.sh",
    "AfterInstall": "after_install.sh",
    "ApplicationStart": "application_start.sh",
    "ValidateService": "validate_service.sh",
}


@pytest.fixture(scope="module")
def demo_image():
    subprocess.run([os.path.join(ROOT, "tests", "tools", "build-demo-image.sh"), IMAGE], check=True)
    return IMAGE


def render(tmp_path, bundle, **role_vars):
    role_vars.setdefault("appspec_bundle_dir", str(bundle))
    role_vars.setdefault("appspec_repository", "localhost/bluegreen-demo")
    role_vars.setdefault("appspec_image_tag", "1.0.0")
    tasks = (
        "- name: appspec\n  ansible.builtin.include_role:\n    name: bluegreen.aws.appspec\n"
        f"  vars: {json.dumps(role_vars)}\n"
        "- name: bundle\n  ansible.builtin.debug:\n    var: appspec_bundle\n"
    )
    return run_tasks(tasks, tmp_path)


def changed(report):
    return [t["task"]["name"] for p in report["plays"] for t in p["tasks"] if t["hosts"]["localhost"].get("changed")]


def test_the_bundle_is_valid_idempotent_and_byte_identical(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    env = {"GREETING": "hello", "DB_PASSWORD": "s3cret"}
    rc, results, report = render(tmp_path, first, appspec_archive=str(tmp_path / "a.zip"), appspec_env=env)
    assert rc == 0, results
    appspec = yaml.safe_load((first / "appspec.yml").read_text())
    assert list(appspec["hooks"]) == ORDER
    assert all(h[0]["timeout"] <= 3600 and h[0]["runas"] == "root" for h in appspec["hooks"].values())
    assert oct((first / "scripts" / "validate_service.sh").stat().st_mode & 0o777) == "0o755"
    assert oct((first / "scripts" / "app.env").stat().st_mode & 0o777) == "0o600"
    assert "s3cret" not in json.dumps(report)  # the env file is rendered with no_log

    rc, results, report = render(tmp_path, first, appspec_archive=str(tmp_path / "a.zip"), appspec_env=env)
    assert rc == 0 and changed(report) == [], changed(report)

    rc, results, unused_report = render(tmp_path, second, appspec_archive=str(tmp_path / "b.zip"), appspec_env=env)
    assert rc == 0
    a, b = (tmp_path / "a.zip").read_bytes(), (tmp_path / "b.zip").read_bytes()
    assert a == b
    assert results["bundle"]["appspec_bundle"]["md5"] == hashlib.md5(b).hexdigest()

    rc, results, unused_report = render(
        tmp_path, second, appspec_archive=str(tmp_path / "b.zip"), appspec_image_tag="1.0.1"
    )
    assert rc == 0 and (tmp_path / "b.zip").read_bytes() != a  # another release, another ETag


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"appspec_hooks": {"Install": 60}}, "Install\ncannot run scripts"),
        ({"appspec_hooks": {"ApplicationStart": 4000}}, "every timeout is 1 to 3600 seconds"),
        ({"appspec_hooks": {"BeforeInstal": 60}}, "Unknown hook(s) BeforeInstal"),
        ({"appspec_image_tag": "latest"}, "appspec_image_tag (an immutable tag"),
        ({"appspec_image_digest": "sha256:abc"}, "appspec_image_digest (sha256:<64 hex>)"),
        ({"appspec_runas": "Root User"}, "appspec_runas a user name"),
        ({"appspec_ports": ["http"]}, "appspec_ports as"),
    ],
)
def test_bad_input_fails_naming_the_variable(tmp_path, overrides, message):
    rc, results, unused_report = render(tmp_path, tmp_path / "bundle", **overrides)
    assert rc != 0
    failure = next(r for r in results.values() if r.get("failed"))
    assert message.replace("\n", " ") in failure["msg"].replace("\n", " "), failure["msg"]
    assert not (tmp_path / "bundle").exists()  # refused before anything was written


class Instance:
    """The bundle as CodeDeploy leaves it on an instance, and its hooks run as the agent runs them."""

    def __init__(self, tmp_path, bundle):
        self.bundle = bundle
        self.name = "bg-appspec-" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]
        self.port = free_port()

    def settings(self, version, *args, **extra):
        settings = dict(
            appspec_registry="",
            appspec_engine="podman",
            appspec_container_name=self.name,
            appspec_ports=[f"127.0.0.1:{self.port}:8080"],
            appspec_health_port=self.port,
            appspec_health_interval=1,
            appspec_health_timeout=1,
            appspec_hooks={
                "ApplicationStop": 60,
                "BeforeInstall": 60,
                "AfterInstall": 60,
                "ApplicationStart": 60,
                "ValidateService": 16,
            },
            appspec_env={"GREETING": "hello"},
            appspec_env_file=str(self.bundle.parent / "etc" / "app.env"),
            appspec_log_dir=str(self.bundle.parent / "log"),
            appspec_run_options=["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"],
            appspec_command=["--version", version, *args],
        )
        settings.update(extra)
        return settings

    def hook(self, event):
        env = dict(os.environ, LIFECYCLE_EVENT=event, DEPLOYMENT_ID="d-TEST00001", APPLICATION_NAME="web")
        return subprocess.run(
            ["bash", str(self.bundle / "scripts" / SCRIPT[event])],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    def deploy(self):
        done = []
        for event in ORDER:
            proc = self.hook(event)
            done.append((event, proc.returncode))
            if proc.returncode:
                return done, proc.stderr
        return done, ""

    def container_id(self):
        return subprocess.run(
            ["podman", "container", "inspect", "--format", "{{.Id}}", self.name],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    def remove(self):
        subprocess.run(["podman", "rm", "--force", "--time", "0", self.name], capture_output=True, check=False)


@pytest.fixture
def instance(tmp_path, demo_image):
    inst = Instance(tmp_path, tmp_path / "bundle")
    yield inst
    inst.remove()


def test_hooks_run_in_order_and_the_app_answers(tmp_path, instance):
    rc, results, unused_report = render(tmp_path, instance.bundle, **instance.settings("1.0.0"))
    assert rc == 0, results
    done, stderr = instance.deploy()
    assert done == [(e, 0) for e in ORDER], stderr
    status, body = get(f"http://127.0.0.1:{instance.port}/health")
    assert status == 200 and json.loads(body)["version"] == "1.0.0"
    assert (tmp_path / "etc" / "app.env").read_text() == "GREETING=hello\n"
    assert oct((tmp_path / "etc" / "app.env").stat().st_mode & 0o777) == "0o600"

    # every hook again, in any order: the same result, the running container is kept
    running = instance.container_id()
    for event in ["ApplicationStart", "AfterInstall", "BeforeInstall", "ValidateService", "ApplicationStart"]:
        proc = instance.hook(event)
        assert proc.returncode == 0, (event, proc.stderr)
    assert instance.container_id() == running
    assert "already runs" in instance.hook("ApplicationStart").stderr


def test_validate_service_fails_a_broken_version_and_a_rerun_after_the_failure_succeeds(tmp_path, instance):
    rc, unused_results, unused_report = render(tmp_path, instance.bundle, **instance.settings("2.0.0", "--fail"))
    assert rc == 0
    done, stderr = instance.deploy()
    assert done[-1] == ("ValidateService", 1) and done[:-1] == [(e, 0) for e in ORDER[:-1]]
    assert "still failing after 3 attempts" in stderr  # (16 s - 10 s) // (1 s + 1 s): the budget fits the timeout

    # the failed hook and the ones before it run again without error; a good release then deploys over it
    assert instance.hook("ApplicationStop").returncode == 0
    assert instance.hook("ApplicationStop").returncode == 0  # nothing left to stop
    rc, unused_results, unused_report = render(tmp_path, instance.bundle, **instance.settings("2.0.1"))
    assert rc == 0
    done, stderr = instance.deploy()
    assert done == [(e, 0) for e in ORDER], stderr
    assert json.loads(get(f"http://127.0.0.1:{instance.port}/version")[1])["version"] == "2.0.1"


def test_region_and_account_come_from_imdsv2_when_not_given(tmp_path):
    with fake_imds() as endpoint:
        bundle = tmp_path / "bundle"
        rc, unused_results, unused_report = render(
            tmp_path, bundle, appspec_repository="web", appspec_imds_endpoint=endpoint
        )
        assert rc == 0
        proc = subprocess.run(
            ["bash", "-c", f". {bundle}/scripts/lib.sh && image_ref"], capture_output=True, text=True, check=False
        )
        assert proc.stdout.strip() == "210987654321.dkr.ecr.ap-northeast-2.amazonaws.com/web:1.0.0", proc.stderr


def test_after_install_logs_in_to_ecr_and_pulls_by_digest(tmp_path):
    """No ECR here: a recording engine and `aws` stand in, to show the commands AfterInstall composes."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(f'#!/bin/sh\necho "aws $*" >> {calls}\necho ecr-password\n')
    engine = bin_dir / "engine"
    engine.write_text(
        f'#!/bin/sh\necho "engine $*" >> {calls}\n'
        f'if [ "$1" = login ]; then echo "stdin $(cat)" >> {calls}; fi\n'
        'if [ "$1 $2" = "image inspect" ]; then exit 1; fi\n'  # not present yet: pull
    )
    for tool in ("aws", "engine"):
        (bin_dir / tool).chmod(0o755)
    digest = "sha256:" + "ab" * 32
    with fake_imds() as endpoint:
        rc, unused_results, unused_report = render(
            tmp_path,
            tmp_path / "bundle",
            appspec_repository="web",
            appspec_image_tag="",
            appspec_image_digest=digest,
            appspec_ecr_login=True,
            appspec_engine=str(engine),
            appspec_imds_endpoint=endpoint,
            appspec_env_file=str(tmp_path / "etc" / "app.env"),
        )
        assert rc == 0
        (tmp_path / "etc").mkdir()
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
        proc = subprocess.run(
            ["bash", str(tmp_path / "bundle" / "scripts" / "after_install.sh")],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    registry = "210987654321.dkr.ecr.ap-northeast-2.amazonaws.com"
    assert sorted(calls.read_text().splitlines()) == sorted(
        [  # the two sides of the login pipe run at once
            "aws ecr get-login-password --region ap-northeast-2",
            f"engine login --username AWS --password-stdin {registry}",
            "stdin ecr-password",
            f"engine image inspect {registry}/web@{digest}",
            f"engine pull --quiet {registry}/web@{digest}",
        ]
    )
    assert calls.read_text().index("image inspect") > calls.read_text().index("stdin ecr-password")
