"""lifecycle.py against botocore's Stubber: every request and response is checked against the real API model."""

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from botocore.stub import Stubber

from ansible_collections.bluegreen.aws.plugins.module_utils import lifecycle
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import ProbeResult
from ansible_collections.bluegreen.aws.plugins.module_utils.lifecycle import HealthCheck
from ansible_collections.bluegreen.aws.plugins.module_utils.lifecycle import LifecycleError
from ansible_collections.bluegreen.aws.plugins.module_utils.lifecycle import Request

GROUP = "web-prod"
CD_HOOK = "CodeDeploy-managed-automatic-launch-deployment-hook-web-prod-0123"
IDS = ["i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"]


def make_client(service):
    client = boto3.client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.activate()
    wrapped = RetryingBotoClientWrapper(client, AWSRetry.jittered_backoff(retries=4, delay=0, max_delay=0))
    return wrapped, stubber


@pytest.fixture
def asg():
    client, stubber = make_client("autoscaling")
    yield client, stubber
    stubber.assert_no_pending_responses()


def group(states):
    instances = [
        {
            "InstanceId": iid,
            "AvailabilityZone": "eu-west-1a",
            "LifecycleState": state,
            "HealthStatus": "Healthy",
            "ProtectedFromScaleIn": False,
        }
        for iid, state in states.items()
    ]
    return {
        "AutoScalingGroups": [
            {
                "AutoScalingGroupName": GROUP,
                "MinSize": 0,
                "MaxSize": 10,
                "DesiredCapacity": len(instances),
                "DefaultCooldown": 300,
                "AvailabilityZones": ["eu-west-1a"],
                "HealthCheckType": "EC2",
                "CreatedTime": "2026-01-01T00:00:00Z",
                "Instances": instances,
            }
        ]
    }


def hooks(*specs):
    return {
        "LifecycleHooks": [
            {"LifecycleHookName": name, "AutoScalingGroupName": GROUP, "LifecycleTransition": transition}
            for name, transition in specs
        ]
    }


LAUNCH = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATE = "autoscaling:EC2_INSTANCE_TERMINATING"


def expect_describe(stubber, states):
    stubber.add_response("describe_auto_scaling_groups", group(states), {"AutoScalingGroupNames": [GROUP]})


def expect_hooks(stubber, *specs):
    stubber.add_response("describe_lifecycle_hooks", hooks(*specs), {"AutoScalingGroupName": GROUP})


def expect_complete(stubber, iid, hook=CD_HOOK, result="CONTINUE"):
    stubber.add_response(
        "complete_lifecycle_action",
        {},
        {"AutoScalingGroupName": GROUP, "LifecycleHookName": hook, "InstanceId": iid, "LifecycleActionResult": result},
    )


def no_active_action(stubber, method, iid):
    stubber.add_client_error(
        method,
        service_error_code="ValidationError",
        service_message=f"No active Lifecycle Action found with instance ID {iid}",
        http_status_code=400,
    )


def run(client, clock, **kwargs):
    return lifecycle.run(client, Request(group_name=GROUP, **kwargs), clock=clock, sleep=clock.sleep)


def test_nothing_waiting_is_a_no_op(asg, clock):
    client, stubber = asg
    expect_describe(stubber, {IDS[0]: "InService"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH))
    changed, instances, timed_out = run(client, clock)
    assert (changed, instances, timed_out) == (False, [], [])


def test_three_waiting_three_completions_and_one_describe_per_poll(asg, clock):
    client, stubber = asg
    expect_describe(stubber, {i: "Pending:Wait" for i in IDS} | {"i-000000000000000ff": "InService"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH), ("drain", TERMINATE))
    for iid in IDS:
        expect_complete(stubber, iid)
    # poll 1: one still waiting; poll 2: all InService. One describe per poll for three instances.
    expect_describe(stubber, {IDS[0]: "Pending:Proceed", IDS[1]: "InService", IDS[2]: "Pending:Wait"})
    expect_describe(stubber, {i: "InService" for i in IDS})
    changed, instances, timed_out = run(client, clock, poll_interval=5)
    assert changed is True
    assert timed_out == []
    assert [i["instance_id"] for i in instances] == IDS
    assert {i["action"] for i in instances} == {"completed"}
    assert all(i["hooks"] == [CD_HOOK] for i in instances)
    assert all(i["final_state"] == "InService" for i in instances)
    assert clock.sleeps == [5]


def test_instance_leaving_between_describe_and_complete_is_already_done(asg, clock):
    client, stubber = asg
    expect_describe(stubber, {IDS[0]: "Pending:Wait", IDS[1]: "Pending:Wait"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH))
    no_active_action(stubber, "complete_lifecycle_action", IDS[0])
    expect_complete(stubber, IDS[1])
    expect_describe(stubber, {IDS[1]: "InService"})
    changed, instances, unused_timed_out = run(client, clock)
    by_id = {i["instance_id"]: i for i in instances}
    assert by_id[IDS[0]]["action"] == "already_done"
    assert by_id[IDS[0]]["hooks"] == []
    assert by_id[IDS[1]]["action"] == "completed"
    assert changed is True


def test_only_already_done_instances_is_not_changed(asg, clock):
    client, stubber = asg
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH))
    no_active_action(stubber, "complete_lifecycle_action", IDS[0])
    changed, instances, unused_timed_out = run(client, clock)
    assert changed is False
    assert instances[0]["action"] == "already_done"


def test_named_instances_not_waiting_or_gone_are_reported_not_failed(asg, clock):
    client, stubber = asg
    expect_describe(stubber, {IDS[0]: "InService"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH))
    changed, instances, unused_timed_out = run(client, clock, instance_ids=[IDS[0], IDS[1]])
    assert changed is False
    assert [(i["action"], i["lifecycle_state"]) for i in instances] == [
        ("not_waiting", "InService"),
        ("not_in_group", None),
    ]


def test_throttling_is_retried(asg, clock):
    client, stubber = asg
    stubber.add_client_error("describe_auto_scaling_groups", service_error_code="Throttling", http_status_code=400)
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH))
    stubber.add_client_error("complete_lifecycle_action", service_error_code="Throttling", http_status_code=400)
    stubber.add_client_error("complete_lifecycle_action", service_error_code="RequestLimitExceeded")
    expect_complete(stubber, IDS[0])
    expect_describe(stubber, {IDS[0]: "InService"})
    changed, instances, unused_timed_out = run(client, clock)
    assert changed is True and instances[0]["action"] == "completed"


def test_other_errors_are_not_swallowed(asg, clock):
    client, stubber = asg
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH))
    stubber.add_client_error("complete_lifecycle_action", service_error_code="AccessDenied", http_status_code=403)
    with pytest.raises(Exception, match="AccessDenied"):
        run(client, clock)


def test_abandon(asg, clock):
    client, stubber = asg
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH))
    expect_complete(stubber, IDS[0], result="ABANDON")
    expect_describe(stubber, {IDS[0]: "Terminating"})
    changed, instances, unused_timed_out = run(client, clock, result="ABANDON")
    assert changed is True
    assert instances[0]["result"] == "ABANDON" and instances[0]["final_state"] == "Terminating"


def test_heartbeat_records_instead_of_completing_and_does_not_wait(asg, clock):
    client, stubber = asg
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})
    expect_hooks(stubber, ("warm-up", LAUNCH))
    stubber.add_response(
        "record_lifecycle_action_heartbeat",
        {},
        {"AutoScalingGroupName": GROUP, "LifecycleHookName": "warm-up", "InstanceId": IDS[0]},
    )
    changed, instances, unused_timed_out = run(client, clock, heartbeat=True, wait=False, hook_name="warm-up")
    assert changed is True
    assert instances[0]["action"] == "heartbeat" and instances[0]["result"] is None


def test_terminating_transition_uses_terminating_wait_and_hooks(asg, clock):
    client, stubber = asg
    expect_describe(stubber, {IDS[0]: "Terminating:Wait", IDS[1]: "Pending:Wait"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH), ("drain", TERMINATE))
    expect_complete(stubber, IDS[0], hook="drain")
    expect_describe(stubber, {IDS[1]: "Pending:Wait"})
    changed, instances, unused_timed_out = run(client, clock, transition="terminating")
    assert [(i["instance_id"], i["hooks"], i["final_state"]) for i in instances] == [
        (IDS[0], ["drain"], "Detached/Terminated")
    ]


def test_check_mode_makes_no_mutating_call(asg, clock):
    client, stubber = asg
    expect_describe(stubber, {i: "Pending:Wait" for i in IDS})
    expect_hooks(stubber, (CD_HOOK, LAUNCH))
    # Any complete/heartbeat call would hit the Stubber with no queued response and raise.
    changed, instances, unused_timed_out = lifecycle.run(
        client, Request(group_name=GROUP), check_mode=True, clock=clock, sleep=clock.sleep
    )
    assert changed is True
    assert {i["action"] for i in instances} == {"would_complete"}


def test_wait_timeout_names_the_instances_still_waiting(asg, clock):
    client, stubber = asg
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH), ("other", LAUNCH))
    expect_complete(stubber, IDS[0])
    no_active_action(stubber, "complete_lifecycle_action", IDS[0])
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})  # t=0
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})  # t=5
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})  # t=10: deadline
    changed, instances, timed_out = run(client, clock, wait_timeout=10, poll_interval=5)
    assert timed_out == [IDS[0]]
    assert instances[0]["hooks"] == [CD_HOOK]


def test_unknown_group_names_group_name(asg, clock):
    client, stubber = asg
    stubber.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": []}, {"AutoScalingGroupNames": [GROUP]})
    with pytest.raises(LifecycleError, match=r"group_name: Auto Scaling group 'web-prod' does not exist"):
        run(client, clock)


def test_unknown_hook_names_hook_name_and_lists_hooks(asg, clock):
    client, stubber = asg
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH), ("drain", TERMINATE))
    with pytest.raises(LifecycleError, match=r"hook_name: 'drain' is not a launching hook .* drain \(autoscaling"):
        run(client, clock, hook_name="drain")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"result": "PROCEED"}, r"result must be one of \['CONTINUE', 'ABANDON'\], got 'PROCEED'"),
        ({"transition": "scaling"}, r"transition must be one of"),
        ({"instance_ids": ["web-1"]}, r"instance_ids must be EC2 instance ids"),
        ({"wait_timeout": 0}, r"wait_timeout and poll_interval must be positive"),
        ({"health_check": HealthCheck(url="http://{ip}:8080/")}, r"health_check.url may only use the placeholders"),
        ({"health_check": HealthCheck(url="tcp://{private_ip}")}, r"health_check.url must start with http"),
        (
            {"health_check": HealthCheck(url="http://{private_ip}/"), "result": "ABANDON"},
            r"health_check gates a CONTINUE",
        ),
    ],
)
def test_bad_input_fails_before_any_call(asg, clock, kwargs, message):
    client, unused_stubber = asg  # nothing queued: any AWS call would raise a Stubber error instead
    with pytest.raises(LifecycleError, match=message):
        run(client, clock, **kwargs)


def expect_instances(stubber, addresses):
    reservations = [
        {"Instances": [{"InstanceId": iid, "PrivateIpAddress": ip, "Placement": {"AvailabilityZone": "eu-west-1a"}}]}
        for iid, ip in addresses.items()
    ]
    stubber.add_response("describe_instances", {"Reservations": reservations}, {"InstanceIds": list(addresses)})


def scripted_probe(answers):
    """A probe whose answers per URL are scripted: True healthy, False not."""
    calls = []

    def probe(url, expected_status, body_pattern, timeout):
        calls.append(url)
        ok = answers[url].pop(0) if len(answers[url]) > 1 else answers[url][0]
        return ProbeResult(url=url, ok=ok, status=200 if ok else 503, error=None if ok else "status 503")

    probe.calls = calls
    return probe


@pytest.mark.parametrize("on_failure, bad_action", [("fail", "gate_failed"), ("abandon", "abandoned_by_gate")])
def test_health_gate_continues_healthy_and_holds_or_abandons_unhealthy(asg, clock, on_failure, bad_action):
    client, stubber = asg
    ec2, ec2_stubber = make_client("ec2")
    expect_describe(stubber, {IDS[0]: "Pending:Wait", IDS[1]: "Pending:Wait"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH))
    expect_instances(ec2_stubber, {IDS[0]: "10.0.0.1", IDS[1]: "10.0.0.2"})
    expect_complete(stubber, IDS[0])
    if on_failure == "abandon":
        expect_complete(stubber, IDS[1], result="ABANDON")
        expect_describe(stubber, {IDS[0]: "InService", IDS[1]: "Terminating"})
    else:
        expect_describe(stubber, {IDS[0]: "InService", IDS[1]: "Pending:Wait"})
    probe = scripted_probe({"http://10.0.0.1:8080/health": [False, True, True], "http://10.0.0.2:8080/health": [False]})
    check = HealthCheck(
        url="http://{private_ip}:8080/health",
        success_threshold=2,
        failure_threshold=3,
        interval=2,
        on_failure=on_failure,
    )
    changed, instances, unused_timed_out = lifecycle.run(
        client, Request(group_name=GROUP, health_check=check), ec2=ec2, clock=clock, sleep=clock.sleep, probe=probe
    )
    by_id = {i["instance_id"]: i for i in instances}
    assert by_id[IDS[0]]["action"] == "completed" and by_id[IDS[0]]["gate"]["verdict"] == "pass"
    assert by_id[IDS[1]]["action"] == bad_action and by_id[IDS[1]]["gate"]["verdict"] == "fail"
    # healthy one needed 3 probes (fail, ok, ok); the failing one 3 consecutive failures
    assert probe.calls.count("http://10.0.0.1:8080/health") == 3
    assert probe.calls.count("http://10.0.0.2:8080/health") == 3
    ec2_stubber.assert_no_pending_responses()


def test_heartbeat_with_abandon_is_refused_as_a_contradiction():
    with pytest.raises(LifecycleError, match="heartbeat=true keeps the instances waiting while result=ABANDON"):
        lifecycle.validate(Request(group_name="web", heartbeat=True, result="ABANDON"))


def test_progress_reports_each_step_when_it_happens(asg, clock):
    """Waiting instances, every health-check round, every completion and every change of state while waiting, each
    reported at the (fake) time it happened, not at the end."""
    client, stubber = asg
    ec2, ec2_stubber = make_client("ec2")
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH))
    expect_instances(ec2_stubber, {IDS[0]: "10.0.0.1"})
    expect_complete(stubber, IDS[0])
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})
    expect_describe(stubber, {IDS[0]: "InService"})
    probe = scripted_probe({"http://10.0.0.1:8080/health": [False, True, True]})
    check = HealthCheck(url="http://{private_ip}:8080/health", success_threshold=2, interval=2)
    seen = []
    lifecycle.run(
        client,
        Request(group_name=GROUP, health_check=check, poll_interval=5),
        ec2=ec2,
        clock=clock,
        sleep=clock.sleep,
        probe=probe,
        progress=lambda entry: seen.append((clock(), entry)),
    )
    events = [e["event"] for unused, e in seen]
    assert events == ["waiting", "gates", "gates", "gates", "completed", "states", "states"], events
    assert seen[0][1]["instances"] == [IDS[0]]
    verdicts = [e["gates"][0]["verdict"] for unused, e in seen if e["event"] == "gates"]
    assert verdicts == ["pending", "pending", "pass"]
    # the rounds came 2 s apart, the states 10 s after the completion (two polls of 5 s, the unchanged one not repeated)
    times = [t for t, unused in seen]
    assert times[2] - times[1] == 2 and times[3] - times[2] == 2
    assert "Pending:Wait" in seen[5][1]["reason"] and "InService" in seen[6][1]["reason"]
    assert times[6] - times[4] == 10
    ec2_stubber.assert_no_pending_responses()


AUTO, USER = "d-AUTO12345", "d-USER12345"


def expect_codedeploy(stubber, deployments, targets):
    """The group's deployment group and its active deployments ``{id: creator}``; ``targets``: {id: instance ids}."""
    stubber.add_response("list_applications", {"applications": ["web"]}, {})
    stubber.add_response("list_deployment_groups", {"deploymentGroups": ["web-prod"]}, {"applicationName": "web"})
    stubber.add_response(
        "get_deployment_group",
        {"deploymentGroupInfo": {"autoScalingGroups": [{"name": GROUP, "hook": CD_HOOK}]}},
        {"applicationName": "web", "deploymentGroupName": "web-prod"},
    )
    stubber.add_response(
        "list_deployments",
        {"deployments": list(deployments)},
        {"applicationName": "web", "deploymentGroupName": "web-prod", "includeOnlyStatuses": lifecycle.ACTIVE},
    )
    if deployments:
        stubber.add_response(
            "batch_get_deployments",
            {"deploymentsInfo": [{"deploymentId": d, "creator": c} for d, c in deployments.items()]},
            {"deploymentIds": list(deployments)},
        )
    for deployment, instance_ids in targets.items():
        stubber.add_response("list_deployment_targets", {"targetIds": instance_ids}, {"deploymentId": deployment})


def test_an_instance_codedeploys_automatic_deployment_installs_is_left_to_it_even_when_healthy(asg, clock):
    """CodeDeploy deploys the last successful revision to a scaled-out instance and completes its hook when that
    deployment ends: its instance answering the health check meanwhile (ApplicationStart ran, ValidateService not yet)
    does not let the module complete the hook first. The stuck one beside it is released once healthy."""
    client, stubber = asg
    ec2, ec2_stubber = make_client("ec2")
    cd, cd_stubber = make_client("codedeploy")
    expect_describe(stubber, {IDS[0]: "Pending:Wait", IDS[1]: "Pending:Wait"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH))
    expect_codedeploy(cd_stubber, {AUTO: "autoscaling"}, {AUTO: [IDS[0]]})
    expect_instances(ec2_stubber, {IDS[1]: "10.0.0.2"})
    expect_complete(stubber, IDS[1])
    expect_describe(stubber, {IDS[0]: "Pending:Wait", IDS[1]: "InService"})
    probe = scripted_probe({"http://10.0.0.2:8080/health": [True]})
    check = HealthCheck(url="http://{private_ip}:8080/health")
    changed, instances, unused_timed_out = lifecycle.run(
        client,
        Request(group_name=GROUP, health_check=check),
        ec2=ec2,
        codedeploy=cd,
        clock=clock,
        sleep=clock.sleep,
        probe=probe,
    )
    by_id = {i["instance_id"]: i for i in instances}
    assert (by_id[IDS[0]]["action"], by_id[IDS[0]]["deployment"], by_id[IDS[0]]["hooks"]) == (
        "left_to_codedeploy",
        AUTO,
        [],
    )
    assert (by_id[IDS[1]]["action"], by_id[IDS[1]]["deployment"]) == ("completed", None)
    assert changed and probe.calls == ["http://10.0.0.2:8080/health"]  # the left one is not even probed
    cd_stubber.assert_no_pending_responses()
    ec2_stubber.assert_no_pending_responses()


def test_only_automatic_deployments_active_does_not_refuse_the_stuck_ones_unchecked(asg, clock):
    client, stubber = asg
    cd, cd_stubber = make_client("codedeploy")
    expect_describe(stubber, {IDS[0]: "Pending:Wait", IDS[1]: "Pending:Wait"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH))
    expect_codedeploy(cd_stubber, {AUTO: "autoscaling"}, {AUTO: [IDS[0]]})
    expect_complete(stubber, IDS[1])
    expect_describe(stubber, {IDS[0]: "Pending:Wait", IDS[1]: "InService"})
    unused, instances, unused_timed_out = lifecycle.run(
        client, Request(group_name=GROUP), codedeploy=cd, clock=clock, sleep=clock.sleep
    )
    assert [i["action"] for i in instances] == ["left_to_codedeploy", "completed"]
    cd_stubber.assert_no_pending_responses()


def test_a_users_active_deployment_still_refuses_an_unchecked_continue(asg, clock):
    client, stubber = asg
    cd, cd_stubber = make_client("codedeploy")
    expect_describe(stubber, {IDS[0]: "Pending:Wait"})
    expect_hooks(stubber, (CD_HOOK, LAUNCH))
    expect_codedeploy(cd_stubber, {USER: "user"}, {})
    with pytest.raises(LifecycleError, match=f"deployment {USER} is active"):
        lifecycle.run(client, Request(group_name=GROUP), codedeploy=cd, clock=clock, sleep=clock.sleep)
    cd_stubber.assert_no_pending_responses()
