"""Fixtures for integration tests: a moto server on loopback and real ansible-playbook runs against it."""

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request

import boto3
import pytest
from dataplane import Processes
from dataplane import start_moto

REGION = "eu-west-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}


@pytest.fixture(scope="session")
def moto_endpoint():
    procs = Processes()
    try:
        yield start_moto(procs)
    finally:
        procs.stop_all()


@pytest.fixture
def aws(moto_endpoint):
    """boto3 clients against the moto server; state is reset before each test."""
    urllib.request.urlopen(urllib.request.Request(moto_endpoint + "/moto-api/reset", method="POST"), timeout=10)

    def client(service):
        return boto3.client(service, endpoint_url=moto_endpoint, **CREDENTIALS)

    client.endpoint = moto_endpoint
    return client


def make_group(aws, name, size=2):
    ec2 = aws("ec2")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    template = f"{name}-lt"
    ec2.create_launch_template(
        LaunchTemplateName=template,
        LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro", "MetadataOptions": {"HttpTokens": "required"}},
    )
    asg = aws("autoscaling")
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
        MinSize=0,
        MaxSize=5,
        DesiredCapacity=size,
        AvailabilityZones=[f"{REGION}a"],
    )
    return asg


def run_playbook(tasks, endpoint, tmp_path, check=False, env=None, play_vars=None):
    """Run ``tasks`` in a localhost play with module_defaults for group/bluegreen.aws.aws against ``endpoint``.

    ``play_vars``: the play's vars.

    Returns (returncode, {task name: result}, report) parsed from the JSON callback.
    """
    return ansible_playbook(emulator_play(tasks, endpoint, tmp_path, play_vars), check=check, env=env)


def emulator_play(tasks, endpoint, tmp_path, play_vars=None):
    """Write ``tasks`` as a localhost play whose AWS modules call ``endpoint``; returns the playbook's path."""
    defaults = textwrap.dedent(f"""\
        module_defaults:
          group/bluegreen.aws.aws:
            endpoint_url: {endpoint}
            region: {REGION}
            access_key: testing
            secret_key: testing
        """)
    if play_vars:
        defaults += f"vars: {json.dumps(play_vars)}\n"
    return write_play(tasks, tmp_path, header=defaults)


def run_tasks(tasks, tmp_path, check=False, env=None, header=""):
    """Run ``tasks`` in a localhost play; ``header`` adds play keywords.  Returns what ansible_playbook returns."""
    return ansible_playbook(write_play(tasks, tmp_path, header), check=check, env=env)


def write_play(tasks, tmp_path, header=""):
    play = "- hosts: localhost\n  gather_facts: false\n"
    play += textwrap.indent(header, "  ") + "  tasks:\n" + textwrap.indent(tasks, "    ")
    path = tmp_path / "play.yml"
    path.write_text(play)
    return path


def ansible_playbook(playbook, *args, check=False, env=None, inventory="localhost,", timeout=300):
    """Run a playbook with the JSON callback; returns (returncode, {task name: localhost result}, report)."""
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory]
    if inventory == "localhost,":
        command += ["-c", "local"]
    if check:
        command.append("--check")
    proc = subprocess.run(
        command + [str(playbook), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=playbook_env(env),
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"ansible-playbook printed no JSON:\n{proc.stdout}\n{proc.stderr}") from None
    results = {}
    for play_report in report["plays"]:
        for task in play_report["tasks"]:
            if "localhost" in task["hosts"]:
                # role tasks are named "<role> : <task>"; key them by the task's own name
                results[task["task"]["name"].split(" : ")[-1]] = task["hosts"]["localhost"]
    return proc.returncode, results, report


def playbook_env(extra=None):
    return dict(
        os.environ,
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCALHOST_WARNING="false",
        **(extra or {}),
    )


def stream_playbook(args, timeout=240, rc=0):
    """Run ``ansible-playbook *args`` with the default (human) callback, its stdout read line by line as it streams.

    Returns [(seconds since start, line)]; fails when the run takes longer than ``timeout`` or its exit status is not
    0 while ``rc`` is 0 (or is 0 while ``rc`` is not)."""
    env = dict(playbook_env({"ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}), ANSIBLE_STDOUT_CALLBACK="default")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), *args]
    started = time.monotonic()
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        for line in proc.stdout:
            lines.append((time.monotonic() - started, line.rstrip("\n")))
            assert time.monotonic() - started < timeout, "ansible-playbook took too long"
        assert (proc.wait(timeout=timeout) == 0) == (rc == 0), "\n".join(line for unused, line in lines)
    return lines


def task_lines(lines, title):
    """The lines a task printed between its ``TASK [title]`` header and its result line, and when the result came."""
    text = [line for unused, line in lines]
    start = next(i for i, line in enumerate(text) if line.startswith("TASK [") and f"{title}]" in line)
    end = next(
        i for i in range(start + 1, len(text)) if text[i].startswith(("changed: [", "ok: [", "fatal: [", "failed: ["))
    )
    return lines[start + 1 : end], lines[end][0]
