"""An operator's abort mark stops a CodeDeploy deployment in the ready wait and in the bake, from another process.

Real ansible-playbook runs of bluegreen.aws.codedeploy_deployment with ``abort:`` on the emulator; the mark is
written to the emulator's S3 the way bluegreen.aws.release_abort writes it, while the deployment waits.
"""

import json
import threading
import time

from cdfleet import alarm
from cdfleet import fleet
from cdfleet import registered
from conftest import REGION
from conftest import run_playbook

BUCKET = "release-state"
MARK = "bluegreen/web/prod/abort.json"
VERSION = "ABC-9-web-20260101120000"
BLUE = "app-good.zip"  # blue answers: a rollback's AllowTraffic waits for it to pass the health checks


def task(**options):
    options = dict(
        application="web",
        deployment_group="web-dg",
        revision={"bucket": "releases", "key": "app-good.zip"},
        poll_interval=0.1,
        gate_interval=0.2,
        abort={"bucket": BUCKET, "application": "web", "environment": "prod", "version": VERSION},
        **options,
    )
    body = "\n".join(f"    {k}: {json.dumps(v)}" for k, v in options.items())
    return f"- name: deploy\n  bluegreen.aws.codedeploy_deployment:\n{body}\n"


def in_background(emulator, tmp_path, play):
    answer = {}

    def run():
        answer["rc"], answer["results"], unused = run_playbook(play, emulator.endpoint, tmp_path)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, answer


def wait_for(predicate, what, timeout=120):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.1)


def deployments(cd):
    ids = cd.list_deployments(applicationName="web", deploymentGroupName="web-dg")["deployments"]
    return [cd.get_deployment(deploymentId=i)["deploymentInfo"] for i in ids]


def write_mark(s3, version=VERSION):
    mark = {"who": "ops@test", "reason": "error budget burnt", "at": "now", "version": version}
    s3.put_object(Bucket=BUCKET, Key=MARK, Body=json.dumps(mark).encode())
    return time.monotonic()


def setup(emulator):
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return s3, emulator.client("codedeploy")


def test_an_abort_during_the_ready_wait_stops_and_rolls_back_within_a_gate_interval(emulator, revisions, tmp_path):
    s3, cd = setup(emulator)
    f = fleet(emulator, ready={"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60}, blue_revision=BLUE)
    alarm(emulator.client("cloudwatch"), "web-5xx", "INSUFFICIENT_DATA")  # an undecided gate: the window stays open
    gates = [{"type": "cloudwatch_alarm", "alarm_names": ["web-5xx"]}]
    thread, answer = in_background(emulator, tmp_path, task(ready_gates=gates, ready_gate_timeout=300))
    wait_for(lambda: any(d["status"] == "Ready" for d in deployments(cd)), "the deployment in Ready")
    write_mark(s3, version="another-release")  # a mark for another release is not ours
    time.sleep(1.0)
    assert any(d["status"] == "Ready" for d in deployments(cd))
    marked = write_mark(s3)
    thread.join(240)
    result = answer["results"]["deploy"]
    assert answer["rc"] != 0 and result["status"] == "Stopped", result
    assert result["aborted"] is True and result["abort_check"]["mark"]["reason"] == "error budget burnt"
    assert "aborted by ops@test" in result["msg"] and result["rollback_deployment_id"]
    stop = next(e for e in result["timeline"] if e["status"] == "StopRequested")
    assert "aborted" in stop["reason"]
    assert registered(f) == sorted(f["blue"])
    assert time.monotonic() - marked < 200  # far less than the 300 s ready window: the mark ended it


def test_an_abort_during_the_bake_stops_and_traffic_returns_to_blue(emulator, revisions, tmp_path):
    s3, cd = setup(emulator)
    f = fleet(emulator, termination_minutes=60, blue_revision=BLUE)
    alarm(emulator.client("cloudwatch"), "web-5xx", "OK")  # a passing bake gate: only the abort can stop it
    bake = [{"type": "cloudwatch_alarm", "alarm_names": ["web-5xx"]}]
    thread, answer = in_background(emulator, tmp_path, task(bake_gates=bake, bake_seconds=300))
    wait_for(
        lambda: any(d.get("instanceTerminationWaitTimeStarted") for d in deployments(cd)),
        "the termination wait (the bake)",
    )
    write_mark(s3)
    thread.join(240)
    result = answer["results"]["deploy"]
    assert answer["rc"] != 0 and result["status"] == "Stopped", result
    assert result["aborted"] is True and "aborted by ops@test" in result["msg"]
    assert result["rollback_status"] == "Succeeded"
    assert registered(f) == sorted(f["blue"])


def test_a_mark_already_there_stops_the_deployment_at_its_first_poll(emulator, revisions, tmp_path):
    s3, cd = setup(emulator)
    f = fleet(emulator, blue_revision=BLUE)
    write_mark(s3)
    rc, results, unused = run_playbook(task(), emulator.endpoint, tmp_path)
    result = results["deploy"]
    assert rc != 0 and result["status"] == "Stopped" and result["aborted"] is True, result
    assert registered(f) == sorted(f["blue"])
    assert not any(d["status"] == "Succeeded" and d.get("creator") == "user" for d in deployments(cd))
