"""The ec2_userdata role: rendered by real ansible-playbook runs, checked by shellcheck, and the script executed
twice in a podman container (Debian bookworm built offline) against a loopback IMDSv2, with the steps that need the
internet switched off by BG_USERDATA_ONLINE=0 and printed instead."""

import base64
import json
import os
import re
import subprocess

import pytest
from conftest import run_tasks
from dataplane import fake_imds

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "localhost/bluegreen-curl:bookworm"


def render(tmp_path, **role_vars):
    role_vars.setdefault("ec2_userdata_dest", str(tmp_path / "user-data.sh"))
    tasks = (
        "- name: userdata\n  ansible.builtin.include_role:\n    name: bluegreen.aws.ec2_userdata\n"
        f"  vars: {json.dumps(role_vars)}\n"
        "- name: out\n  ansible.builtin.debug:\n    msg:\n"
        '      text: "{{ ec2_userdata_text }}"\n'
        '      b64: "{{ ec2_userdata_base64 }}"\n'
        '      metadata: "{{ ec2_userdata_metadata_options }}"\n'
    )
    rc, results, unused_report = run_tasks(tasks, tmp_path)
    assert rc == 0, results
    return results["out"]["msg"]


def heredoc(script, marker):
    return json.loads(re.search(rf"<<'{marker}'.*?\n(.*?)\n{marker}\n", script, re.S).group(1))


@pytest.mark.parametrize("os_name", ["amazon", "debian", "ubuntu"])
def test_rendered_for_each_os_shellcheck_clean_and_ready_for_a_launch_template(tmp_path, os_name):
    out = render(tmp_path, ec2_userdata_os=os_name)
    assert base64.b64decode(out["b64"]).decode() == out["text"] == (tmp_path / "user-data.sh").read_text()
    # hop limit 1: IMDS answers the host only, containers on a bridge network cannot reach the role's credentials
    assert out["metadata"] == {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1}
    proc = subprocess.run(
        ["shellcheck", "-s", "bash", str(tmp_path / "user-data.sh")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout
    assert out["text"].startswith("#!/bin/bash\n")  # cloud-init runs it as a script
    assert ("dnf install" in out["text"]) == (os_name == "amazon")
    assert "X-aws-ec2-metadata-token" in out["text"] and "169.254.169.254" in out["text"]
    assert not re.search(r"\b\d{12}\b", out["text"])  # no account id
    assert not re.search(r"\b(us|eu|ap|sa|ca|me|af)-[a-z]+-\d\b", out["text"])  # no region: read from IMDSv2


def test_docker_settings_are_the_docker_runtime_roles(tmp_path):
    script = render(
        tmp_path,
        ec2_userdata_os="debian",
        docker_runtime_log_max_size="50m",
        docker_runtime_daemon_options={"metrics-addr": "127.0.0.1:9323"},
    )["text"]
    daemon = heredoc(script, "DAEMON_JSON")
    assert daemon["log-opts"] == {"max-size": "50m", "max-file": "5"}
    assert daemon["live-restore"] is True and daemon["metrics-addr"] == "127.0.0.1:9323"
    assert "packages=(docker.io amazon-ecr-credential-helper ruby-full wget)" in script
    amazon = render(tmp_path, ec2_userdata_os="amazon")["text"]
    assert "packages=(docker amazon-ecr-credential-helper ruby wget)" in amazon


@pytest.fixture(scope="module")
def image():
    subprocess.run(
        [os.path.join(ROOT, "tests", "tools", "build-image.sh"), IMAGE, "bookworm", "python3,curl,ca-certificates"],
        check=True,
    )
    return IMAGE


def in_container(tmp_path, image, imds_endpoint, command, timeout):
    """Run ``command`` in a throw-away container with the rendered user-data at /user-data.sh, internet steps off."""
    return subprocess.run(
        ["podman", "run", "--rm", "--network", "host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]
        + ["-e", "BG_USERDATA_ONLINE=0", "-e", f"BG_IMDS_ENDPOINT={imds_endpoint}"]
        + ["-v", f"{tmp_path / 'user-data.sh'}:/user-data.sh:ro", image, *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_runs_twice_in_a_container_with_the_internet_steps_printed(tmp_path, image):
    logs = [{"file_path": "/var/log/app/*.log", "log_group_name": "/app/web", "log_stream_name": "{instance_id}"}]
    render(tmp_path, ec2_userdata_os="debian", ec2_userdata_log_files=logs)
    with fake_imds() as endpoint:
        run = (
            "bash /user-data.sh > /tmp/first.log && bash /user-data.sh > /tmp/second.log && "
            # a client setting of root's, then a third run: the helper is kept and so is the setting
            'sed -i \'s/{/{\\n  "detachKeys": "ctrl-x",/\' /root/.docker/config.json && '
            "bash /user-data.sh > /tmp/third.log && "
            "cat /tmp/first.log && echo ===== && cat /tmp/second.log && echo ===== && "
            "cat /etc/docker/daemon.json && echo ===== && "
            "cat /opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json && echo ===== && "
            "cat /root/.docker/config.json"
        )
        proc = in_container(tmp_path, image, endpoint, ["bash", "-c", run], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first, second, daemon, cwa, client = proc.stdout.split("=====\n")
    assert "region ap-northeast-2 (IMDSv2)" in first
    assert "would run: install_packages docker.io amazon-ecr-credential-helper ruby-full wget" in first
    assert (
        "would run: install_codedeploy_agent "
        "https://aws-codedeploy-ap-northeast-2.s3.ap-northeast-2.amazonaws.com/latest/install"
    ) in first
    assert "would run: install_cloudwatch_agent https://amazoncloudwatch-agent-ap-northeast-2.s3" in first
    assert "/etc/docker/daemon.json written" in first and "/etc/docker/daemon.json unchanged" in second
    assert "amazon-cloudwatch-agent.json unchanged" in second and "written" not in second
    assert "no systemd" in first
    assert json.loads(daemon)["log-driver"] == "json-file"
    assert json.loads(cwa)["logs"]["logs_collected"]["files"]["collect_list"] == logs
    assert json.loads(client) == {"credsStore": "ecr-login", "detachKeys": "ctrl-x"}


def test_without_an_imds_token_the_script_stops(tmp_path, image):
    render(tmp_path, ec2_userdata_os="debian")
    proc = in_container(tmp_path, image, "http://127.0.0.1:9", ["bash", "/user-data.sh"], timeout=60)
    assert proc.returncode != 0 and "written" not in proc.stdout  # set -euo pipefail: nothing after a failed step


def test_a_client_config_that_is_not_json_is_left_alone(tmp_path, image):
    render(tmp_path, ec2_userdata_os="debian")
    run = (
        "mkdir -p /root/.docker && echo 'not json' > /root/.docker/config.json && "
        "bash /user-data.sh && echo ===== && cat /root/.docker/config.json"
    )
    with fake_imds() as endpoint:
        proc = in_container(tmp_path, image, endpoint, ["bash", "-c", run], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log, client = proc.stdout.split("=====\n")
    assert "config.json is not JSON: left alone" in log and "/etc/docker/daemon.json written" in log
    assert client == "not json\n"


def test_the_imds_hop_limit_is_1_unless_opted_in(tmp_path):
    assert render(tmp_path, ec2_userdata_imds_hop_limit=2)["metadata"]["http_put_response_hop_limit"] == 2
    for bad in (0, 65):
        rc, results, unused_report = run_tasks(
            "- name: userdata\n  ansible.builtin.include_role:\n    name: bluegreen.aws.ec2_userdata\n"
            f"  vars: {{ec2_userdata_imds_hop_limit: {bad}}}\n",
            tmp_path,
        )
        failure = next(r for r in results.values() if r.get("failed"))
        assert rc != 0 and f"ec2_userdata_imds_hop_limit is {bad}; EC2 takes 1 to 64" in failure["msg"], failure


# What a role value may be rendered as in a shell file: shell-quoted, a number, a list of quoted words, or JSON in a
# heredoc whose delimiter is quoted (so the shell expands nothing in it, and JSON cannot hold the delimiter line).
SAFE = re.compile(r"(\|\s*quote|\|\s*int|map\('quote'\)\s*\|\s*join\(' '\)|^\"#!\")$")
JSON_IN_HEREDOC = re.compile(r"\|\s*to_nice_json\(indent=2\)$")


@pytest.mark.parametrize(
    "template", ["roles/ec2_userdata/templates/user-data.sh.j2", "roles/appspec/templates/release.env.j2"]
)
def test_every_interpolation_in_the_shell_templates_is_quoted(template):
    lines = open(os.path.join(ROOT, template)).read().splitlines()
    unquoted = []
    for number, line in enumerate(lines):
        # a string literal ({{ '{{.Config.Image}}' }}: braces for docker's own template) renders as itself: no input
        line = re.sub(r"{{\s*'[^']*'\s*}}", "", line)
        for expression in re.findall(r"{{(.*?)}}", line, re.S):
            expression = " ".join(expression.split())
            if SAFE.search(expression):
                continue
            if JSON_IN_HEREDOC.search(expression) and re.search(r"<<'[A-Z_]+'$", lines[number - 1]):
                continue
            unquoted.append(f"{template}:{number + 1}: {{{{ {expression} }}}}")
    # a multi-line expression (the packages list) is checked as a whole
    for expression in re.findall(r"{{((?:(?!}}).)*\n(?:(?!}}).)*)}}", "\n".join(lines), re.S):
        if not SAFE.search(" ".join(expression.split())):
            unquoted.append(f"{template}: {{{{ {expression} }}}}")
    assert unquoted == []


HOSTILE = "http://127.0.0.1:9/a b'\"$(touch {pwned})`touch {pwned}`;touch {pwned}"


def test_a_hostile_value_stays_one_literal_word(tmp_path):
    pwned = tmp_path / "pwned"
    endpoint = HOSTILE.format(pwned=pwned)
    script = render(tmp_path, ec2_userdata_os="debian", ec2_userdata_imds_endpoint=endpoint)["text"]
    prelude = script[: script.index("log() {")]  # the settings, up to the first function
    proc = subprocess.run(
        ["bash", "-c", prelude + 'printf "%s" "$IMDS"'],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == endpoint
    assert not pwned.exists()


def test_the_app_container_ends_the_script_when_an_image_is_given(tmp_path):
    """The alb strategy's launch template version carries the release: the script runs the image last, once."""
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:v2"
    script = render(tmp_path, ec2_userdata_app_image=image, ec2_userdata_app_env={"GREETING": "it's $HOME"})["text"]
    proc = subprocess.run(
        ["shellcheck", "-s", "bash", str(tmp_path / "user-data.sh")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout
    app = script[script.index("APP_IMAGE=") :]
    assert f"APP_IMAGE={image}\nAPP_NAME=app\n" in app
    assert "--publish 8080:8080" in app and "--restart always" in app
    assert "--env 'GREETING=it'\"'\"'s $HOME'" in app  # quoted: no expansion, no injection
    assert "already runs $APP_IMAGE" in app  # a re-run leaves the running container alone
    assert "APP_IMAGE" not in render(tmp_path)["text"]  # no image: no container section
