"""The alb strategy on the emulator, through real ansible-playbook runs of the emulator inventory with real instances:
playbooks/site.yml provisions and releases v1 (the first release brings the live fleet up), v2 is released without
provisioning (role alb_release, tasks_from deploy: the new launch template version on the idle fleet, canary steps on
the listener's weights) while clients send requests through the emulated listener (real HAProxy): no request fails and
the share v2 answers follows each weight. A re-run of v2 changes nothing and writes nothing; the rollback (tasks_from
rollback) moves all traffic back to v1 at once under the same load, timed and verified through the listener.

Bad input is refused before any write, naming the variable.
"""

import json
import os
import time

import test_alb_canary_dataplane as canary
from cdfleet import image_manifest
from conftest import ansible_playbook
from dataplane import KeepAliveLoad
from dataplane import get
from test_aws_infra import WRITE_VERBS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(ROOT, "inventories", "emulator")
NAME = "web-emulator"  # bluegreen_app-bluegreen_env of inventories/emulator
LOAD_LIMIT = 1200  # seconds: the load stops then whatever happens (bounded by the playbook runs here)
# What site.yml's AWS play sets, around one entry point of the role (playbooks/deploy.yml and rollback.yml include
# these for the alb strategy).
ENTRY = """\
- name: alb strategy
  hosts: bluegreen_aws
  gather_facts: false
  module_defaults:
    group/bluegreen.aws.aws:
      endpoint_url: "{{ aws_endpoint_url }}"
      region: "{{ aws_region }}"
      access_key: "{{ aws_access_key }}"
      secret_key: "{{ aws_secret_key }}"
  vars:
    aws_infra_app: "{{ bluegreen_app }}"
    aws_infra_env: "{{ bluegreen_env }}"
    alb_release_version: "{{ release_version | default('') }}"
    alb_release_image_tag: "{{ release_image_tag | default(release_version | default('')) }}"
  tasks:
    - name: entry
      ansible.builtin.include_role:
        name: bluegreen.aws.alb_release
        tasks_from: %s
"""


def play(emulator, tmp_path, playbook, *args, entry=None):
    if entry:
        playbook = tmp_path / f"{entry}.yml"
        playbook.write_text(ENTRY % entry)
    started = time.monotonic()
    rc, results, report = ansible_playbook(
        os.path.join(ROOT, "playbooks", playbook) if entry is None else str(playbook),
        "-e",
        "bluegreen_strategy=alb",
        *args,
        inventory=INVENTORY,
        env={"BGEMU_ENDPOINT": emulator.endpoint, "ANSIBLE_PIPELINING": "true"},
        timeout=1200,
    )
    print(f"{entry or playbook} {' '.join(args)}: rc {rc} in {time.monotonic() - started:.0f} s")
    return rc, results, report


def failed(report):
    return [
        " ".join(str(t["hosts"]["localhost"].get("msg", "")).split())
        for p in report["plays"]
        for t in p["tasks"]
        if t["hosts"].get("localhost", {}).get("failed")
    ]


def changed(report):
    roles = ("bluegreen.aws.alb_release :", "bluegreen.aws.aws_infra :", "bluegreen.aws.codedeploy_fleet :")
    return [
        t["task"]["name"]
        for p in report["plays"]
        for t in p["tasks"]
        if t["hosts"].get("localhost", {}).get("changed") and t["task"]["name"].startswith(roles)
    ]


def writes(emulator):
    return {op: n for op, n in emulator.calls().items() if op.split(".", 1)[1].startswith(WRITE_VERBS)}


def instances(emulator, group):
    found = emulator.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return found["AutoScalingGroups"][0]["Instances"]


def fleets(emulator):
    found = emulator.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    return {g["AutoScalingGroupName"]: (g["LaunchTemplate"]["Version"], g["DesiredCapacity"]) for g in found}


def test_inputs_are_refused_before_any_write(emulator, tmp_path):
    emulator.admin("calls", "DELETE")
    cases = [
        (["-e", "release_version="], "alb_release_version: '' is required"),
        (["-e", json.dumps({"release_image_tag": "bad tag"})], "alb_release_image_tag: 'bad tag' is not an image tag"),
        (
            ["-e", json.dumps({"alb_release_steps": [{"weight": 10}, {"weight": 50}]})],
            "alb_release_steps: the last weight must be 100",
        ),
        (
            ["-e", json.dumps({"alb_release_steps": [{"weight": 10, "pause": 5}]})],
            "alb_release_steps: each step is one",
        ),
        (["-e", "aws_infra_health_check_path=health"], "aws_infra_health_check_path: 'health' must start with '/'"),
        (["-e", "aws_infra_image_id="], "aws_infra_image_id: '' is not an AMI id"),
    ]
    for args, message in cases:
        rc, unused_results, report = play(emulator, tmp_path, "site.yml", "-e", "release_version=v1", *args)
        assert rc != 0 and any(message in f for f in failed(report)), (message, failed(report))
    rc, unused_results, report = play(emulator, tmp_path, None, entry="rollback")
    assert rc != 0 and any("aws_infra_name: no load balancer web-emulator" in f for f in failed(report)), failed(report)
    assert not writes(emulator), writes(emulator)


def test_release_canary_under_load_and_rollback(emulator, tmp_path, monkeypatch):
    monkeypatch.setattr(canary, "CLIENT_LIMIT", LOAD_LIMIT)  # the watcher's bound
    elb = emulator.client("elbv2")

    # v1's and v2's images in the environment's repository: each release pins its image by digest, and tags it
    ecr = emulator.client("ecr")
    ecr.create_repository(repositoryName=NAME)
    digests = {
        v: ecr.put_image(repositoryName=NAME, imageManifest=image_manifest(v), imageTag=v)["image"]["imageId"][
            "imageDigest"
        ]
        for v in ("v1", "v2")
    }

    # 1. provision + first release: the live fleet (blue: the listener forwards to it) comes up with v1
    rc, results, report = play(emulator, tmp_path, "site.yml", "-e", "release_version=v1")
    assert rc == 0, failed(report)
    assert image_tags(ecr, digests["v1"]) == ["emulator-current", "v1"]
    assert fleets(emulator) == {NAME: ("1", 2)}, fleets(emulator)
    green = elb.describe_target_groups(Names=[f"{NAME}-green"])["TargetGroups"][0]["TargetGroupArn"]
    (listener,) = [e for e in emulator.admin("listeners") if e["load_balancer_name"] == NAME]
    status, body = get(f"http://127.0.0.1:{listener['local_port']}/version")
    assert status == 200 and json.loads(body)["version"] == "v1", (status, body)

    # 2. v2 without provisioning, through the canary, under load
    with (
        KeepAliveLoad(listener["local_port"], clients=2, limit=LOAD_LIMIT) as load,
        canary.Watcher(emulator, listener["listener_arn"], green) as watcher,
    ):
        rc, results, report = play(emulator, tmp_path, None, "-e", "release_version=v2", entry="deploy")
        end = time.monotonic()
        while sum(1 for r in list(load.records) if r[0] > end) < 50:
            assert time.monotonic() < end + 30, "the load stopped"
            time.sleep(0.05)
    assert rc == 0, failed(report)
    switch = results["Canary to the new fleet with gates, bake, roll back on a failing gate"]
    assert switch["status"] == "promoted" and switch["weights"] == {NAME: 0, f"{NAME}-green": 100}, switch
    # the previous fleet is kept (alb_release_keep_previous_fleet in the emulator inventory) for the rollback
    assert fleets(emulator) == {NAME: ("1", 2), f"{NAME}-green": ("2", 2)}, fleets(emulator)
    records = list(load.records)
    bad = [r for r in records if r[2] != 200]
    print(f"canary: {len(bad)} failed of {len(records)} requests")
    assert not bad, bad[:5]
    for weight, low, high in ((10, 1, 30), (50, 25, 75)):
        start, stop = watcher.window(weight)
        answered = [r[3] for r in records if start <= r[0] <= stop]
        share = 100.0 * answered.count("v2") / max(len(answered), 1)
        print(f"green at {weight}%: {share:.1f}% of {len(answered)} requests answered by v2")
        assert len(answered) >= 30 and set(answered) <= {"v1", "v2"} and low <= share <= high, (weight, share)
    at_100 = watcher.window(100)[0]
    after = [r[3] for r in records if r[0] > at_100]
    assert after and set(after) == {"v2"}, set(after)
    # <env>-current moved to v2's image; v1's version tag stays on v1's
    assert (image_tags(ecr, digests["v1"]), image_tags(ecr, digests["v2"])) == (["v1"], ["emulator-current", "v2"])

    # 3. the same version again: nothing changes, nothing is written (no lock, no record: no release happened)
    emulator.admin("calls", "DELETE")
    rc, results, report = play(emulator, tmp_path, None, "-e", "release_version=v2", entry="deploy")
    assert rc == 0 and changed(report) == [], (failed(report), changed(report))
    assert not writes(emulator), writes(emulator)

    # 4. rollback under load: all traffic back on v1 at once, verified on the listener and through it
    with KeepAliveLoad(listener["local_port"], clients=2, limit=LOAD_LIMIT) as load:
        started = time.monotonic()
        rc, results, report = play(emulator, tmp_path, None, entry="rollback")
        took = time.monotonic() - started
        end = time.monotonic()
        while sum(1 for r in list(load.records) if r[0] > end) < 50:
            assert time.monotonic() < end + 30, "the load stopped"
            time.sleep(0.05)
    assert rc == 0, failed(report)
    back = results["All traffic back to the previous fleet at once"]
    assert back["weights"] == {NAME: 100, f"{NAME}-green": 0}, back
    switched = [e["t"] for e in back["timeline"] if e["event"] == "done"][0]
    records = list(load.records)
    bad = [r for r in records if r[2] != 200]
    print(
        f"rollback: playbook {took:.1f} s, weights moved {switched:.2f} s after the switch started; "
        f"{len(bad)} failed of {len(records)} requests"
    )
    assert not bad, bad[:5]
    assert results["Verify on the listener that all traffic is on the previous fleet"]["weights"][NAME] == 100
    after = [r[3] for r in records if r[0] > end]
    assert after and set(after) == {"v1"}, set(after)
    # <env>-current is back on the image the previous fleet pins (its bluegreen:image-digest tag)
    assert (image_tags(ecr, digests["v1"]), image_tags(ecr, digests["v2"])) == (["emulator-current", "v1"], ["v2"])

    # 5. playbooks/lifecycle.yml (seed 000, challenge 4): a scale-out of the live fleet behind a launch hook waits in
    # Pending:Wait; the instance is continued once its own health check answers (its user-data runs the release)
    asg = emulator.client("autoscaling")
    asg.put_lifecycle_hook(
        AutoScalingGroupName=NAME,
        LifecycleHookName="warm-up",
        LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout=3600,
        DefaultResult="ABANDON",
    )
    asg.set_desired_capacity(AutoScalingGroupName=NAME, DesiredCapacity=3)
    (waiting,) = [i["InstanceId"] for i in instances(emulator, NAME) if i["LifecycleState"] == "Pending:Wait"]
    rc, results, report = play(emulator, tmp_path, "lifecycle.yml", "-e", json.dumps({"lifecycle_groups": [NAME]}))
    assert rc == 0, failed(report)
    (released,) = results["Continue each healthy instance waiting in Pending:Wait"]["results"]
    waited = [i for i in released["instances"] if i["lifecycle_state"] == "Pending:Wait"]
    acted = {i["instance_id"]: (i["action"], i["result"], i["gate"]["verdict"]) for i in waited}
    assert acted == {waiting: ("completed", "CONTINUE", "pass")}, released["instances"]
    assert {i["InstanceId"]: i["LifecycleState"] for i in instances(emulator, NAME)}[waiting] == "InService"

    # 6. promotion to prod (provisioned beside it, pulling from the same repository): prod runs v1's very image
    shared = ["-e", "bluegreen_env=prod", "-e", f"aws_infra_ecr_repository={NAME}"]
    rc, results, report = play(emulator, tmp_path, "provision.yml", *shared, "-e", "release_version=v1")
    assert rc == 0, failed(report)
    rc, results, report = play(
        emulator,
        tmp_path,
        "promote.yml",
        *shared,
        "-e",
        "release_source_environment=emulator",
        "-e",
        "promote_version=v1",
    )
    assert rc == 0, failed(report)
    s3 = emulator.client("s3")
    bucket, prefix = "web-prod-artifacts-123456789012", "bluegreen/web/prod/history/"
    (promoted,) = [
        json.load(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"])
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    ]
    assert (promoted["version"], promoted["result"], promoted["extra"]["operation"]) == ("v1", "success", "promote")
    assert (
        promoted["artifacts"]["image_digest"] == digests["v1"] and promoted["artifacts"]["promoted_from"] == "emulator"
    )
    assert promoted["artifacts"]["image"].endswith(f"/{NAME}@{digests['v1']}"), promoted["artifacts"]
    (prod_listener,) = [e for e in emulator.admin("listeners") if e["load_balancer_name"] == "web-prod"]
    status, body = get(f"http://127.0.0.1:{prod_listener['local_port']}/version")
    assert status == 200 and json.loads(body)["version"] == "v1", (status, body)
    assert image_tags(ecr, digests["v1"]) == ["emulator-current", "prod-current", "v1"]


def image_tags(ecr, digest):
    (image,) = ecr.describe_images(repositoryName=NAME, imageIds=[{"imageDigest": digest}])["imageDetails"]
    return sorted(image.get("imageTags") or [])
