"""playbooks/lifecycle.yml on the codedeploy strategy, end to end on the emulator (real ansible-playbook runs).

One environment (site.yml provisions it and releases v1), then:
(a) a scale-out of the live group: CodeDeploy's automatic deployment (creator autoscaling) installs v1, the last
    successful revision, and CONTINUEs its hook; lifecycle.yml run meanwhile leaves the instance to CodeDeploy, says
    so, and calls no CompleteLifecycleAction; the instance goes InService serving v1.
(b) v2 released and in its termination wait (traffic on the replacement group, the deployment group still naming the
    original): a scale-out of the replacement group gets no deployment and stays in Pending:Wait (user guide,
    troubleshooting: mismatched hooks stop automatic deployments). lifecycle.yml finds the replacement group, continues
    the instance that answers the health check and leaves the one that does not waiting, failing and naming it.
"""

import time

from cdfleet import install
from cdfleet import run_in
from test_aws_infra import account  # noqa: F401  # pylint: disable=unused-import
from test_aws_infra import failures
from test_aws_infra import run
from test_codedeploy_rollback import NAME
from test_codedeploy_rollback import termination_wait

CONTINUE_TASK = "Continue each healthy instance waiting in Pending:Wait"
SAY = "Say what was released"
BUCKET = f"{NAME}-artifacts-123456789012"


def live_group(cd):
    info = cd.get_deployment_group(applicationName=NAME, deploymentGroupName=NAME)["deploymentGroupInfo"]
    return info["autoScalingGroups"][0]["name"]


def instances(asg, group):
    found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    return {i["InstanceId"]: i["LifecycleState"] for i in (found[0]["Instances"] if found else [])}


def scale_out(asg, group, count):
    """``count`` more instances; returns their ids."""
    before = instances(asg, group)
    asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=len(before) + count)
    new = sorted(set(instances(asg, group)) - set(before))
    assert len(new) == count, (before, instances(asg, group))
    return new


def until(check, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached"
        time.sleep(0.2)


def launches(cd):
    ids = cd.list_deployments(applicationName=NAME, deploymentGroupName=NAME)["deployments"]
    infos = cd.batch_get_deployments(deploymentIds=ids)["deploymentsInfo"] if ids else []
    return {d["deploymentId"]: d for d in infos if d["creator"] == "autoscaling"}


def version_on(account, instance_id):  # noqa: F811 - the fixture passed on
    answer = run_in(account, instance_id, "curl", "-s", "http://127.0.0.1:8080/version")
    return answer["stdout"]


def test_lifecycle_yml_leaves_codedeploys_launches_to_it_and_releases_the_stuck_ones(account):  # noqa: F811
    asg, cd = account.client("autoscaling"), account.client("codedeploy")
    started = time.monotonic()
    rc, results, unused_report = run("site.yml", account, "-e", "release_version=v1")
    assert rc == 0, failures(results)
    print(f"\nsite.yml v1 (provision + release): {time.monotonic() - started:.1f}s")
    group = live_group(cd)
    assert group.startswith(f"CodeDeploy_{NAME}_d-"), group  # v1's replacement group, named by the deployment group

    # (a) the deployment's events last 5 AWS seconds each: at time scale 1 it runs long enough for lifecycle.yml to
    # find it running on a busy machine
    step = time.monotonic()
    account.admin("time-scale", "POST", {"scale": 1.0})
    (new,) = scale_out(asg, group, 1)
    assert instances(asg, group)[new] == "Pending:Wait"
    (launch,) = until(lambda: launches(cd), what="CodeDeploy's automatic deployment")
    info = cd.get_deployment(deploymentId=launch)["deploymentInfo"]
    assert info["revision"]["s3Location"]["key"] == "web/emulator/v1.zip", info["revision"]
    account.admin("calls", "DELETE")
    rc, results, unused_report = run("lifecycle.yml", account)
    assert rc == 0, failures(results)
    (item,) = [r for r in results[CONTINUE_TASK]["results"] if r["item"] == group]
    (entry,) = [i for i in item["instances"] if i["instance_id"] == new]
    assert (entry["action"], entry["deployment"], entry["result"]) == ("left_to_codedeploy", launch, None), entry
    assert not item["changed"]
    said = [r["msg"] for r in results[SAY]["results"] if r["item"]["item"] == group]
    assert said == [f"{group}: {new} left_to_codedeploy (CodeDeploy deploys it: {launch})"], said
    assert "autoscaling.CompleteLifecycleAction" not in account.calls(), account.calls()
    assert cd.get_deployment(deploymentId=launch)["deploymentInfo"]["status"] in ("Created", "Queued", "InProgress")
    until(lambda: instances(asg, group)[new] == "InService", what="InService")  # CodeDeploy CONTINUEd it
    assert cd.get_deployment(deploymentId=launch)["deploymentInfo"]["status"] == "Succeeded"
    assert '"v1"' in version_on(account, new)
    account.admin("time-scale", "POST", {"scale": 0.01})
    print(f"(a) scale-out with CodeDeploy's deployment, lifecycle.yml meanwhile: {time.monotonic() - step:.1f}s")

    # (b) v2 in its termination wait (2000 min: 20 minutes at time scale 0.01)
    step = time.monotonic()
    termination_wait(cd, 2000)
    rc, results, unused_report = run(
        "deploy.yml", account, "-e", "release_version=v2", "-e", "codedeploy_release_wait_termination=false"
    )
    assert rc == 0, failures(results)
    assert live_group(cd) == group  # the deployment group still names the original group
    (replacement,) = [
        g["AutoScalingGroupName"]
        for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]
        if g["AutoScalingGroupName"] not in (group,)
    ]
    # CodeDeploy's launch hook times out after 600 AWS seconds: 120 s at time scale 0.2, longer than this run
    account.admin("time-scale", "POST", {"scale": 0.2})
    healthy, bare = scale_out(asg, replacement, 2)
    time.sleep(2.0)  # 10 AWS seconds: CodeDeploy would have started a deployment by now
    assert set(launches(cd)) == {launch}, "no automatic deployment to the replacement group in its termination wait"
    assert [instances(asg, replacement)[i] for i in (healthy, bare)] == ["Pending:Wait", "Pending:Wait"]
    # what brought the app up on one of them (an operator, a script) does not matter here: it answers, the other not
    install(account, [healthy], "web/emulator/v2.zip", bucket=BUCKET)
    account.admin("calls", "DELETE")
    rc, results, unused_report = run(
        "lifecycle.yml", account, "-e", "lifecycle_health_timeout=10", "-e", "lifecycle_poll_interval=1"
    )
    assert rc != 0, "the instance that never answers fails the run"
    by_group = {r["item"]: r for r in results[CONTINUE_TASK]["results"]}
    assert set(by_group) == {group, replacement}, by_group.keys()
    assert by_group[group]["instances"] == [] and not by_group[group].get("failed"), by_group[group]
    stuck = {i["instance_id"]: i for i in by_group[replacement]["instances"]}
    assert stuck[healthy]["action"] == "completed" and stuck[healthy]["final_state"] == "InService", stuck[healthy]
    assert stuck[bare]["action"] == "gate_failed" and stuck[bare]["gate"]["verdict"] == "fail", stuck[bare]
    assert f"health_check failed for {bare}" in by_group[replacement]["msg"], by_group[replacement]["msg"]
    assert account.calls().get("autoscaling.CompleteLifecycleAction") == 1, account.calls()
    now = instances(asg, replacement)
    assert (now[healthy], now[bare]) == ("InService", "Pending:Wait"), now
    assert '"v2"' in version_on(account, healthy)
    account.admin("time-scale", "POST", {"scale": 0.01})
    print(f"(b) stuck in the termination wait, lifecycle.yml releases the healthy one: {time.monotonic() - step:.1f}s")
