"""The appspec role: rendered by real ansible-playbook runs, its hook scripts run for real, in CodeDeploy's order,
against podman serving the demo app image (built offline by tests/tools/build-demo-image.sh)."""

import hashlib
import json
import os
import subprocess
import zipfile

import boto3
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


def render(tmp_path, bundle, env=None, **role_vars):
    role_vars.setdefault("appspec_bundle_dir", str(bundle))
    role_vars.setdefault("appspec_repository", "localhost/bluegreen-demo")
    role_vars.setdefault("appspec_image_tag", "1.0.0")
    tasks = (
        "- name: appspec\n  ansible.builtin.include_role:\n    name: bluegreen.aws.appspec\n"
        f"  vars: {json.dumps(role_vars)}\n"
        "- name: bundle\n  ansible.builtin.debug:\n    var: appspec_bundle\n"
        "- name: iam\n  ansible.builtin.debug:\n    var: appspec_secrets_iam_statements\n"
    )
    return run_tasks(tasks, tmp_path, env=env)


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
        (
            {"appspec_env": {"DB_PASSWORD": "x"}, "appspec_secrets": [{"name": "DB_PASSWORD", "ssm_parameter": "/db"}]},
            "appspec_secrets: DB_PASSWORD is also in appspec_env (DB_PASSWORD)",
        ),
        ({"appspec_secrets": [{"name": "DB_PASSWORD"}]}, "exactly one of ssm_parameter"),
        (
            {"appspec_secrets": [{"name": "DB_PASSWORD", "ssm_parameter": "/db", "secrets_manager_secret": "db"}]},
            "exactly one of ssm_parameter",
        ),
        (
            {"appspec_secrets": [{"name": "DB-PASSWORD", "ssm_parameter": "/db"}]},
            'appspec_secrets: {"name": "DB-PASSWORD"',
        ),
        ({"appspec_secrets": [{"name": "PATH", "ssm_parameter": "/db"}]}, "not one the container engine reads"),
        ({"appspec_secrets": [{"name": "DOCKER_HOST", "ssm_parameter": "/db"}]}, "not one the container engine reads"),
        (
            {"appspec_secrets": [{"name": "A", "ssm_parameter": "/a"}, {"name": "A", "secrets_manager_secret": "a"}]},
            "used once",
        ),
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

    def hook(self, event, env=None):
        """Run one hook's script; ``env`` adds to the agent's environment (on EC2 the AWS CLI's come from IMDS)."""
        env = dict(
            os.environ, **(env or {}), LIFECYCLE_EVENT=event, DEPLOYMENT_ID="d-TEST00001", APPLICATION_NAME="web"
        )
        return subprocess.run(
            ["bash", str(self.bundle / "scripts" / SCRIPT[event])],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    def deploy(self, env=None):
        done = []
        for event in ORDER:
            proc = self.hook(event, env)
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


# -- secrets: names in the bundle, values read on the instance ----------------------------------------------------

IMDS_REGION = "ap-northeast-2"  # what tests/tools/fake_imds.py answers
# Distinctive values with what a shell or an env file would mangle: quotes, $, a command substitution, a newline.
DB_PASSWORD = "pw-Zq8'\"$HOME $(id) `x` ;|&"
API_TOKEN = '{"token": "tok-4VbN7wq",\n "scope": "prod"}'
SECRETS = [
    {"name": "DB_PASSWORD", "ssm_parameter": "/web/prod/db-password"},
    {"name": "API_TOKEN", "secrets_manager_secret": "web/prod/api"},
]
SECRET_VALUES = [DB_PASSWORD, API_TOKEN, "pw-Zq8", "tok-4VbN7wq"]


def test_secrets_are_names_in_the_bundle_and_the_iam_statements_cover_exactly_them(tmp_path):
    bundle = tmp_path / "bundle"
    secrets = SECRETS + [
        {"name": "LEGACY", "ssm_parameter": "legacy-key:3"},
        {"name": "SHARED", "secrets_manager_secret": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:s-AbCdEf"},
    ]
    rc, results, unused_report = render(
        tmp_path,
        bundle,
        appspec_secrets=secrets,
        appspec_iam_region="eu-west-1",
        appspec_iam_account_id="123456789012",
        appspec_secrets_kms_key_arns=["arn:aws:kms:eu-west-1:123456789012:key/k-1"],
    )
    assert rc == 0, results
    arn = "arn:aws:{}:eu-west-1:123456789012:"
    assert results["iam"]["appspec_secrets_iam_statements"] == [
        {
            "Sid": "AppspecReadSsmParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameters"],
            "Resource": [
                arn.format("ssm") + "parameter/web/prod/db-password",
                arn.format("ssm") + "parameter/legacy-key",
            ],
        },
        {
            "Sid": "AppspecReadSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [
                arn.format("secretsmanager") + "secret:web/prod/api-??????",
                "arn:aws:secretsmanager:eu-west-1:111122223333:secret:s-AbCdEf",
            ],
        },
        {
            "Sid": "AppspecDecryptSecrets",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": ["arn:aws:kms:eu-west-1:123456789012:key/k-1"],
            "Condition": {
                "StringLike": {
                    "kms:ViaService": ["ssm.eu-west-1.amazonaws.com", "secretsmanager.eu-west-1.amazonaws.com"]
                }
            },
        },
    ]
    release = (bundle / "scripts" / "release.env").read_text()
    assert "APP_SECRET_NAMES=(DB_PASSWORD API_TOKEN LEGACY SHARED)" in release
    assert "APP_SECRET_SOURCES=(ssm secretsmanager ssm secretsmanager)" in release
    assert "APP_SECRET_IDS=(/web/prod/db-password web/prod/api legacy-key:3 arn:aws:secretsmanager:" in release


def test_the_iam_statements_hard_code_no_region_or_account(tmp_path):
    rc, results, unused_report = render(
        tmp_path, tmp_path / "bundle", appspec_secrets=SECRETS, appspec_iam_partition="aws-cn"
    )
    assert rc == 0, results
    assert [s["Resource"] for s in results["iam"]["appspec_secrets_iam_statements"]] == [
        ["arn:aws-cn:ssm:*:*:parameter/web/prod/db-password"],
        ["arn:aws-cn:secretsmanager:*:*:secret:web/prod/api-??????"],
    ]
    rc, results, unused_report = render(tmp_path, tmp_path / "plain")
    assert rc == 0 and results["iam"]["appspec_secrets_iam_statements"] == []


def files_holding(directory, values):
    """Every file under ``directory`` whose bytes contain one of ``values``."""
    found = []
    for root, _dirs, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            if os.path.isfile(path) and not os.path.islink(path):
                data = open(path, "rb").read()
                found += [(path, v) for v in values if v.encode() in data]
    return found


@pytest.fixture
def secret_store(emulator):
    """The two secrets in the emulator (moto's SSM and Secrets Manager), in the region IMDSv2 answers."""
    session = dict(endpoint_url=emulator.url, region_name=IMDS_REGION)
    session.update(aws_access_key_id="testing", aws_secret_access_key="testing")
    boto3.client("ssm", **session).put_parameter(Name="/web/prod/db-password", Value=DB_PASSWORD, Type="SecureString")
    boto3.client("secretsmanager", **session).create_secret(Name="web/prod/api", SecretString=API_TOKEN)
    # what the instance role gives the AWS CLI on EC2; AWS_ENDPOINT_URL points it (and any controller-side
    # lookup a regression might add) at the emulator
    return dict(AWS_ENDPOINT_URL=emulator.url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")


def recording_engine(tmp_path):
    """podman behind a wrapper that records each command line it is given (what `ps` would show)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "engine"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {tmp_path / "argv.log"}\nexec podman "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def test_a_bundle_with_secrets_holds_none_of_their_values_and_the_instance_reads_them_at_start(
    tmp_path, instance, secret_store, emulator
):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with fake_imds() as endpoint:
        settings = instance.settings(
            "1.0.0", appspec_secrets=SECRETS, appspec_imds_endpoint=endpoint, appspec_engine=recording_engine(tmp_path)
        )
        archive = tmp_path / "web.zip"
        rc, results, report = render(
            tmp_path, instance.bundle, env=secret_store, appspec_archive=str(archive), **settings
        )
        assert rc == 0, results

        # the bundle: not in the zip's bytes, not in any entry once inflated, not in the play's output
        data = archive.read_bytes()
        with zipfile.ZipFile(archive) as bundle_zip:
            entries = {name: bundle_zip.read(name) for name in bundle_zip.namelist()}
        assert "scripts/release.env" in entries and "scripts/application_start.sh" in entries
        for value in SECRET_VALUES:
            assert value.encode() not in data
            assert [n for n, content in entries.items() if value.encode() in content] == []
            assert value not in json.dumps(report)
        release = entries["scripts/release.env"].decode()
        assert "APP_SECRET_NAMES=(DB_PASSWORD API_TOKEN)" in release
        assert "APP_SECRET_IDS=(/web/prod/db-password web/prod/api)" in release
        assert entries["scripts/app.env"] == b"GREETING=hello\n"  # plain env stays in the bundle

        # the instance: the hooks in CodeDeploy's order with the AWS CLI, region from IMDSv2
        done, stderr = instance.deploy(dict(secret_store, TMPDIR=str(tmp)))
    assert done == [(e, 0) for e in ORDER], stderr
    calls = emulator.calls()
    assert calls.get("ssm.GetParameters") == 1 and calls.get("secretsmanager.GetSecretValue") == 1, calls

    inspect = subprocess.run(
        ["podman", "container", "inspect", "--format", "{{json .Config.Env}}", instance.name],
        capture_output=True,
        text=True,
        check=True,
    )
    env = json.loads(inspect.stdout)
    assert f"DB_PASSWORD={DB_PASSWORD}" in env and f"API_TOKEN={API_TOKEN}" in env and "GREETING=hello" in env
    status, body = get(f"http://127.0.0.1:{instance.port}/health")
    assert status == 200

    # nothing on disk holds them (bundle, env file, logs, TMPDIR, the recorded command lines), nor the hooks' output
    argv = (tmp_path / "argv.log").read_text()
    assert "run --detach" in argv and "--env DB_PASSWORD --env API_TOKEN" in argv
    assert files_holding(tmp_path, SECRET_VALUES) == []
    assert not any(v in stderr for v in SECRET_VALUES)


@pytest.mark.parametrize(
    "fault, message",
    [
        ({}, "cannot read secret MISSING from ssm /web/prod/missing in ap-northeast-2"),
        (
            {"operation": "GetSecretValue", "code": "AccessDeniedException", "status": 400},
            "cannot read secret API_TOKEN from secretsmanager web/prod/api in ap-northeast-2",
        ),
    ],
)
def test_a_secret_that_cannot_be_read_fails_application_start_and_keeps_the_running_container(
    tmp_path, instance, secret_store, emulator, fault, message
):
    with fake_imds() as endpoint:
        settings = instance.settings("1.0.0", appspec_imds_endpoint=endpoint)
        rc, unused_results, unused_report = render(tmp_path, instance.bundle, **settings)
        assert rc == 0
        done, stderr = instance.deploy()
        assert done == [(e, 0) for e in ORDER], stderr
        running = instance.container_id()

        subprocess.run(["podman", "tag", IMAGE, "localhost/bluegreen-demo:1.0.1"], check=True)
        secrets = SECRETS + ([] if fault else [{"name": "MISSING", "ssm_parameter": "/web/prod/missing"}])
        settings.update(appspec_image_tag="1.0.1", appspec_secrets=secrets)
        rc, unused_results, unused_report = render(tmp_path, instance.bundle, **settings)
        assert rc == 0
        if fault:
            emulator.fault(**fault)
        proc = instance.hook("ApplicationStart", secret_store)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert instance.container_id() == running  # the old release still serves
    assert get(f"http://127.0.0.1:{instance.port}/health")[0] == 200


def test_hostile_values_reach_the_scripts_as_literal_words_and_the_bundle_is_shellcheck_clean(tmp_path):
    pwned = tmp_path / "pwned"
    hostile = f"a b'\"$(touch {pwned})`touch {pwned}`;touch {pwned}"
    bundle = tmp_path / "bundle"
    secrets = [{"name": "TOKEN", "secrets_manager_secret": hostile}]
    rc, results, unused_report = render(
        tmp_path, bundle, appspec_health_path=hostile, appspec_run_options=[hostile, "--x"], appspec_secrets=secrets
    )
    assert rc == 0, results
    shown = 'printf "%s|" "$APP_HEALTH_PATH" "${APP_RUN_OPTIONS[@]}" "${APP_SECRET_IDS[@]}"'
    proc = subprocess.run(
        ["bash", "-c", f". {bundle}/scripts/lib.sh && {shown}"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{hostile}|{hostile}|--x|{hostile}|"
    assert not pwned.exists()
    # the hook scripts as rendered (release.env holds only assignments, checked above by what bash makes of them)
    scripts = sorted(str(p) for p in (bundle / "scripts").iterdir() if p.suffix == ".sh")
    proc = subprocess.run(["shellcheck", "-x", "-s", "bash", *scripts], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and len(scripts) == 6, proc.stdout
    assert all("set -euo pipefail\n" in open(p).read() for p in scripts)


def test_a_secret_named_by_its_deployment_group_is_read_in_that_group_only(tmp_path, instance, secret_store):
    """{deployment_group} keeps the bundle the same in every environment (promote.yml needs the same sha256); the
    instance reads the secret of the group deploying it, and the instance role may read that group's only."""
    secrets = [{"name": "DB_PASSWORD", "ssm_parameter": "/web/{deployment_group}/db-password"}]
    with fake_imds() as endpoint:
        settings = instance.settings("1.0.0", appspec_imds_endpoint=endpoint, appspec_secrets=secrets)
        rc, results, unused_report = render(
            tmp_path,
            instance.bundle,
            appspec_deployment_group="prod",
            appspec_iam_region="eu-west-1",
            appspec_iam_account_id="123456789012",
            **settings,
        )
        assert rc == 0, results
        (statement,) = results["iam"]["appspec_secrets_iam_statements"]
        assert statement["Resource"] == ["arn:aws:ssm:eu-west-1:123456789012:parameter/web/prod/db-password"]
        release = (instance.bundle / "scripts" / "release.env").read_text()
        assert "APP_SECRET_IDS=('/web/{deployment_group}/db-password')" in release, release

        # no deployment group: refused, naming the placeholder; the deployment group prod: its secret is read
        refused = instance.hook("ApplicationStart", secret_store)
        assert refused.returncode != 0 and "names {deployment_group}" in refused.stderr, refused.stderr
        done, stderr = instance.deploy(dict(secret_store, DEPLOYMENT_GROUP_NAME="prod"))
    assert done == [(e, 0) for e in ORDER], stderr
    inspect = subprocess.run(
        ["podman", "container", "inspect", "--format", "{{json .Config.Env}}", instance.name],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"DB_PASSWORD={DB_PASSWORD}" in json.loads(inspect.stdout)
