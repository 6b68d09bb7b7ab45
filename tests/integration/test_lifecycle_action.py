"""bluegreen.aws.lifecycle_action through real ansible-playbook runs against a moto server.

Plain moto never puts an instance in Pending:Wait (the emulator adds that); these tests prove the
module's plumbing: the action group, argument checks, AWS errors, and the no-op path.
"""

from conftest import make_group
from conftest import run_playbook


def test_group_with_nothing_waiting_is_ok_and_unchanged(aws, tmp_path):
    make_group(aws, "web", size=2)
    rc, results, unused_report = run_playbook(
        """\
- name: complete
  bluegreen.aws.lifecycle_action:
    group_name: web
""",
        aws.endpoint,
        tmp_path,
    )
    result = results["complete"]
    assert rc == 0, result
    assert result["changed"] is False
    assert result["instances"] == []


def test_named_instance_not_waiting_is_reported_not_failed(aws, tmp_path):
    asg = make_group(aws, "web", size=1)
    instance = asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    rc, results, unused_report = run_playbook(
        f"""\
- name: complete
  bluegreen.aws.lifecycle_action:
    group_name: web
    instance_ids: [{instance}]
""",
        aws.endpoint,
        tmp_path,
        check=True,
    )
    result = results["complete"]
    assert rc == 0, result
    assert result["changed"] is False
    assert result["instances"][0]["action"] == "not_waiting"
    assert result["instances"][0]["lifecycle_state"] == "InService"


def test_unknown_group_fails_naming_group_name(aws, tmp_path):
    rc, results, unused_report = run_playbook(
        """\
- name: complete
  bluegreen.aws.lifecycle_action:
    group_name: nope
""",
        aws.endpoint,
        tmp_path,
    )
    assert rc != 0
    assert "group_name: Auto Scaling group 'nope' does not exist" in results["complete"]["msg"]


def test_unknown_hook_fails_naming_hook_name(aws, tmp_path):
    asg = make_group(aws, "web", size=0)
    asg.put_lifecycle_hook(
        AutoScalingGroupName="web",
        LifecycleHookName="warm-up",
        LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
    )
    rc, results, unused_report = run_playbook(
        """\
- name: complete
  bluegreen.aws.lifecycle_action:
    group_name: web
    hook_name: warmup
""",
        aws.endpoint,
        tmp_path,
    )
    assert rc != 0
    assert "hook_name: 'warmup' is not a launching hook" in results["complete"]["msg"]
    assert "warm-up (autoscaling:EC2_INSTANCE_LAUNCHING)" in results["complete"]["msg"]


def test_bad_result_value_fails_naming_result(aws, tmp_path):
    rc, results, unused_report = run_playbook(
        """\
- name: complete
  bluegreen.aws.lifecycle_action:
    group_name: web
    result: PROCEED
""",
        aws.endpoint,
        tmp_path,
    )
    assert rc != 0
    assert "result" in results["complete"]["msg"] and "CONTINUE, ABANDON" in results["complete"]["msg"]


def test_bad_instance_id_fails_before_any_call(aws, tmp_path):
    rc, results, unused_report = run_playbook(
        """\
- name: complete
  bluegreen.aws.lifecycle_action:
    group_name: does-not-matter
    instance_ids: [web-1]
""",
        aws.endpoint,
        tmp_path,
    )
    assert rc != 0
    assert "instance_ids must be EC2 instance ids" in results["complete"]["msg"]
