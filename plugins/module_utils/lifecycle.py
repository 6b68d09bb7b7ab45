# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Discover and complete Auto Scaling lifecycle actions (Pending:Wait / Terminating:Wait).

Plain Python on a botocore Auto Scaling client that was wrapped with ``AWSRetry``
(``module.client("autoscaling", retry_decorator=...)``); every call passes ``aws_retry=True``.
One ``DescribeAutoScalingGroups`` call per poll, whatever the number of instances.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from dataclasses import field

from ansible_collections.bluegreen.aws.plugins.module_utils.gates import FAIL
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import PASS
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import PENDING
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import URL_FIELDS
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import GateResult
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import HttpGate
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import http_probe
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import watch

try:
    from botocore.exceptions import ClientError
except ImportError:  # handled by AnsibleAWSModule
    ClientError = Exception

TRANSITIONS = {
    "launching": ("autoscaling:EC2_INSTANCE_LAUNCHING", "Pending:Wait"),
    "terminating": ("autoscaling:EC2_INSTANCE_TERMINATING", "Terminating:Wait"),
}
RESULTS = ("CONTINUE", "ABANDON")
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")


class LifecycleError(Exception):
    """Bad input or an AWS state the caller must fix; the message names the parameter."""


@dataclass
class HealthCheck:
    url: str
    expected_status: tuple = (200,)
    body_pattern: str | None = None
    timeout: float = 5.0
    interval: float = 5.0
    wait_timeout: float = 300.0
    success_threshold: int = 1
    failure_threshold: int = 3
    on_failure: str = "fail"


@dataclass
class Request:
    group_name: str
    transition: str = "launching"
    hook_name: str | None = None
    instance_ids: list = field(default_factory=list)
    result: str = "CONTINUE"
    heartbeat: bool = False
    wait: bool = True
    wait_timeout: float = 300.0
    poll_interval: float = 5.0
    health_check: HealthCheck | None = None


def validate(request):
    """Reject bad input before any AWS call; every message names the parameter and the fix."""
    if not request.group_name:
        raise LifecycleError("group_name must be the name of an Auto Scaling group")
    if request.transition not in TRANSITIONS:
        raise LifecycleError(f"transition must be one of {sorted(TRANSITIONS)}, got {request.transition!r}")
    if request.result not in RESULTS:
        raise LifecycleError(f"result must be one of {list(RESULTS)}, got {request.result!r}")
    bad = [i for i in request.instance_ids if not INSTANCE_ID.match(i)]
    if bad:
        raise LifecycleError(f"instance_ids must be EC2 instance ids like i-0123456789abcdef0, got {bad}")
    if request.wait_timeout <= 0 or request.poll_interval <= 0:
        raise LifecycleError("wait_timeout and poll_interval must be positive numbers of seconds")
    if request.heartbeat and request.result == "ABANDON":
        raise LifecycleError(
            "heartbeat=true keeps the instances waiting while result=ABANDON would end their launch: they contradict. "
            "Use heartbeat=true alone to extend the wait, or result=ABANDON alone to abandon"
        )
    check = request.health_check
    if check is None:
        return
    if request.heartbeat or request.result != "CONTINUE":
        raise LifecycleError("health_check gates a CONTINUE: remove it, or set result=CONTINUE and heartbeat=false")
    try:
        check.url.format(**{name: "x" for name in URL_FIELDS})
    except (KeyError, IndexError, ValueError) as e:
        raise LifecycleError(
            f"health_check.url may only use the placeholders {{{'}, {'.join(URL_FIELDS)}}}: {check.url!r} ({e})"
        ) from e
    if not check.url.startswith(("http://", "https://")):
        raise LifecycleError(f"health_check.url must start with http:// or https://, got {check.url!r}")
    if check.success_threshold < 1 or check.failure_threshold < 1:
        raise LifecycleError("health_check.success_threshold and failure_threshold must be at least 1")
    if check.on_failure not in ("fail", "abandon"):
        raise LifecycleError(f"health_check.on_failure must be 'fail' or 'abandon', got {check.on_failure!r}")


def describe_group(client, group_name):
    """The group's instances as ``{instance_id: lifecycle_state}`` (one API call)."""
    groups = client.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name], aws_retry=True)
    groups = groups.get("AutoScalingGroups", [])
    if not groups:
        raise LifecycleError(f"group_name: Auto Scaling group {group_name!r} does not exist in this region")
    return {i["InstanceId"]: i["LifecycleState"] for i in groups[0].get("Instances", [])}


def matching_hooks(client, request):
    """Names of the hooks a waiting instance of this transition may be held by."""
    transition, _state = TRANSITIONS[request.transition]
    hooks = client.describe_lifecycle_hooks(AutoScalingGroupName=request.group_name, aws_retry=True)
    hooks = hooks.get("LifecycleHooks", [])
    names = [h["LifecycleHookName"] for h in hooks if h["LifecycleTransition"] == transition]
    if request.hook_name is None:
        return names
    if request.hook_name in names:
        return [request.hook_name]
    known = ", ".join(f"{h['LifecycleHookName']} ({h['LifecycleTransition']})" for h in hooks) or "none"
    raise LifecycleError(
        f"hook_name: {request.hook_name!r} is not a {request.transition} hook of group {request.group_name!r}; "
        f"its hooks are: {known}. Omit hook_name to act on any {request.transition} hook."
    )


CODEDEPLOY_HOOK_PREFIXES = ("CodeDeploy-managed-automatic-launch-deployment-hook", "CodeDeploy_")
ACTIVE = ["Created", "Queued", "InProgress", "Ready", "Baking"]
REPLACEMENT = re.compile(r"^CodeDeploy_(?P<group>.+)_(?P<deployment>d-[A-Z0-9]{9})$")


LAUNCH_CREATOR = "autoscaling"  # DeploymentInfo.creator of CodeDeploy's automatic deployment on a scale-out


def deployment_groups_of(codedeploy, group_name):
    """``(application, deployment group)`` of every deployment group that names this Auto Scaling group (read calls)."""
    found = []
    for page in codedeploy.get_paginator("list_applications").paginate():
        for application in page.get("applications", []):
            names = []
            for groups in codedeploy.get_paginator("list_deployment_groups").paginate(applicationName=application):
                names.extend(groups.get("deploymentGroups", []))
            for name in names:
                info = codedeploy.get_deployment_group(
                    applicationName=application, deploymentGroupName=name, aws_retry=True
                )["deploymentGroupInfo"]
                if group_name in [g.get("name") for g in info.get("autoScalingGroups", [])]:
                    found.append((application, name))
    return found


def codedeploy_activity(codedeploy, group_name):
    """What CodeDeploy is doing with this Auto Scaling group's launches: ``(deployment, launches)``.

    ``deployment``: the active deployment (not one Auto Scaling made) that owns the group's launches, or None. The
    replacement group ``CodeDeploy_<deployment group>_<deployment id>`` names its deployment; any group is also looked
    up in the deployment groups of the account's applications.
    ``launches``: ``{instance id: deployment id}`` of the instances an active deployment made by Auto Scaling (creator
    ``autoscaling``: CodeDeploy's automatic deployment of the group's last successful revision to a scaled-out
    instance) is deploying to; CodeDeploy completes their launch hook itself when it ends.
    """
    deployment, launches = None, {}
    named = REPLACEMENT.match(group_name)
    if named:
        info = codedeploy.get_deployment(deploymentId=named["deployment"], aws_retry=True)["deploymentInfo"]
        if info["status"] in ACTIVE:
            deployment = info["deploymentId"]
    for application, name in deployment_groups_of(codedeploy, group_name):
        active = codedeploy.list_deployments(
            applicationName=application, deploymentGroupName=name, includeOnlyStatuses=ACTIVE, aws_retry=True
        ).get("deployments", [])
        infos = []
        for start in range(0, len(active), 25):
            answer = codedeploy.batch_get_deployments(deploymentIds=active[start : start + 25], aws_retry=True)
            infos.extend(answer.get("deploymentsInfo", []))
        for info in infos:
            if info.get("creator") != LAUNCH_CREATOR:
                deployment = deployment or info["deploymentId"]
                continue
            targets = codedeploy.list_deployment_targets(deploymentId=info["deploymentId"], aws_retry=True)
            for instance_id in targets.get("targetIds", []):
                launches[instance_id] = info["deploymentId"]
    return deployment, launches


def leave_launches_to_codedeploy(request, hooks, entries, waiting, codedeploy):
    """Instances that CodeDeploy's automatic deployment is installing: CodeDeploy completes its own launch hook when
    that deployment ends (CONTINUE, or ABANDON when it fails). Completing it first would put the instance in service
    before its revision is installed and validated, whatever a health check says meanwhile: they are left to
    CodeDeploy (``left_to_codedeploy``, with the deployment). Returns the active deployment that is not Auto
    Scaling's, or None."""
    theirs = [h for h in hooks if h.startswith(CODEDEPLOY_HOOK_PREFIXES)]
    if not theirs or codedeploy is None or not waiting:
        return None
    deployment, launches = codedeploy_activity(codedeploy, request.group_name)
    for instance_id in waiting:
        if instance_id in launches:
            entries[instance_id]["action"] = "left_to_codedeploy"
            entries[instance_id]["deployment"] = launches[instance_id]
    return deployment


def refuse_unchecked_codedeploy_hook(request, hooks, waiting, deployment):
    """During an active deployment CodeDeploy completes its own launch hook once it has installed the revision on the
    instance; completing it with CONTINUE and no health check puts an unverified instance in service: refused."""
    if request.heartbeat or request.result != "CONTINUE" or request.health_check is not None or not waiting:
        return
    theirs = [h for h in hooks if h.startswith(CODEDEPLOY_HOOK_PREFIXES)]
    if theirs and deployment:
        raise LifecycleError(
            f"{theirs[0]} is CodeDeploy's own launch hook and deployment {deployment} is active: CodeDeploy completes "
            "it once it has installed the revision on the instance. Completing it now with CONTINUE and no check puts "
            "an instance in service that runs no verified release. Add health_check (each instance must answer it "
            "first), set hook_name to your own hook, or wait for the deployment to end"
        )


def _no_active_action(error):
    if not isinstance(error, ClientError):
        return False
    err = error.response.get("Error", {})
    return err.get("Code") == "ValidationError" and "No active Lifecycle Action" in err.get("Message", "")


def _act(client, request, hooks, instance_id, result):
    """Complete (or heartbeat) every matching hook for one instance; returns the hooks acted on."""
    acted = []
    for hook in hooks:
        params = dict(AutoScalingGroupName=request.group_name, LifecycleHookName=hook, InstanceId=instance_id)
        try:
            if request.heartbeat:
                client.record_lifecycle_action_heartbeat(aws_retry=True, **params)
            else:
                client.complete_lifecycle_action(LifecycleActionResult=result, aws_retry=True, **params)
        except ClientError as e:
            if _no_active_action(e):
                continue  # this hook is not (or no longer) holding the instance
            raise
        acted.append(hook)
    return acted


def describe_addresses(ec2, instance_ids):
    """Placeholder values for health_check.url, per instance (one DescribeInstances call)."""
    found = {}
    if not instance_ids:
        return found
    paginator = ec2.get_paginator("describe_instances")
    for page in paginator.paginate(InstanceIds=list(instance_ids)):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                found[inst["InstanceId"]] = {
                    "instance_id": inst["InstanceId"],
                    "private_ip": inst.get("PrivateIpAddress", ""),
                    "public_ip": inst.get("PublicIpAddress", ""),
                    "private_dns": inst.get("PrivateDnsName", ""),
                    "availability_zone": inst.get("Placement", {}).get("AvailabilityZone", ""),
                }
    return found


def run_health_gates(check, addresses, clock=time.monotonic, sleep=time.sleep, probe=http_probe, progress=None):
    """Probe every instance in rounds until each passes or fails; returns ``{id: GateResult}``. ``progress`` (optional)
    gets each round's per-instance verdicts."""
    gates = {
        instance_id: HttpGate(
            [check.url.format(**fields)],
            expected_status=check.expected_status,
            body_pattern=check.body_pattern,
            timeout=check.timeout,
            success_threshold=check.success_threshold,
            failure_threshold=check.failure_threshold,
            name=f"http:{instance_id}",
            probe=probe,
        )
        for instance_id, fields in addresses.items()
    }
    rounds = _EachDecided(gates)

    def record(unused_results):
        if progress:
            progress(dict(event="gates", label="health_check", gates=[r.to_dict() for r in rounds.last.values()]))

    watch(
        [rounds],
        check.wait_timeout,
        check.interval,
        until_pass=True,
        label="health_check",
        clock=clock,
        sleep=sleep,
        record=record,
    )
    for instance_id, result in rounds.last.items():
        if instance_id not in rounds.decided:
            rounds.decided[instance_id] = GateResult(
                result.name, FAIL, f"undecided after {check.wait_timeout}s: {result.reason}", result.details
            )
    return rounds.decided


class _EachDecided:
    """A gate over independent per-instance gates: pending until every one of them decided."""

    name = "each-instance"

    def __init__(self, gates):
        self.gates = gates
        self.decided = {}
        self.last = {}

    def evaluate(self):
        for key, gate in self.gates.items():
            if key not in self.decided:
                self.last[key] = gate.evaluate()
                if self.last[key].verdict != PENDING:
                    self.decided[key] = self.last[key]
        if len(self.decided) == len(self.gates):
            return GateResult(self.name, PASS, "every instance decided")
        return GateResult(self.name, PENDING, f"{len(self.gates) - len(self.decided)} instance(s) undecided")


def wait_until_left(client, request, instance_ids, clock=time.monotonic, sleep=time.sleep, progress=None):
    """Poll (one describe per poll) until no instance in ``instance_ids`` is in the wait state; ``progress``
    (optional) gets the states each time they change."""
    _transition, wait_state = TRANSITIONS[request.transition]
    deadline = clock() + request.wait_timeout
    last = None
    while True:
        states = describe_group(client, request.group_name)
        current = {i: states.get(i, "Detached/Terminated") for i in instance_ids}
        if progress and current != last:
            progress(dict(event="states", reason=", ".join(f"{i} {s}" for i, s in sorted(current.items()))))
        last = current
        still = sorted(i for i, s in current.items() if s == wait_state)
        if not still:
            return current, []
        if clock() + request.poll_interval > deadline:
            return current, still
        sleep(request.poll_interval)


def run(
    client,
    request,
    check_mode=False,
    ec2=None,
    clock=time.monotonic,
    sleep=time.sleep,
    probe=http_probe,
    codedeploy=None,
    progress=None,
):
    """Complete the lifecycle actions ``request`` asks for.

    Returns ``(changed, instances, timed_out)`` where ``instances`` has one entry per
    instance considered, with the ``action`` taken:
    ``completed``, ``heartbeat``, ``abandoned_by_gate``, ``would_complete``, ``would_heartbeat``,
    ``already_done`` (left the wait state between describe and complete), ``not_waiting``,
    ``not_in_group``, ``gate_failed``, ``left_to_codedeploy`` (CodeDeploy's automatic deployment to it runs: its
    ``deployment`` completes CodeDeploy's hook). ``progress`` (optional) gets each step as it happens: the instances
    found waiting, every round of health checks, every action, the states while waiting for them to leave the wait.
    """
    validate(request)
    _transition, wait_state = TRANSITIONS[request.transition]
    states = describe_group(client, request.group_name)
    hooks = matching_hooks(client, request)

    wanted = request.instance_ids or sorted(i for i, s in states.items() if s == wait_state)
    entries = {}
    for instance_id in wanted:
        state = states.get(instance_id)
        entry = {"instance_id": instance_id, "lifecycle_state": state, "hooks": [], "result": None, "gate": None}
        if state is None:
            entry["action"] = "not_in_group"
        elif state != wait_state:
            entry["action"] = "not_waiting"
        else:
            entry["action"] = None
        entries[instance_id] = entry
    waiting = [i for i, e in entries.items() if e["action"] is None]
    deployment = leave_launches_to_codedeploy(request, hooks, entries, waiting, codedeploy)
    waiting = [i for i, e in entries.items() if e["action"] is None]
    refuse_unchecked_codedeploy_hook(request, hooks, waiting, deployment)
    if progress:
        progress(dict(event="waiting", instances=waiting, reason=f"{len(waiting)} instance(s) in {wait_state}"))

    abandon = set()
    if waiting and request.health_check is not None:
        if ec2 is None:
            raise LifecycleError("health_check needs an EC2 client to find the instances' addresses")
        addresses = describe_addresses(ec2, waiting)
        for instance_id in waiting:
            addresses.setdefault(instance_id, {name: "" for name in URL_FIELDS} | {"instance_id": instance_id})
        verdicts = run_health_gates(
            request.health_check, addresses, clock=clock, sleep=sleep, probe=probe, progress=progress
        )
        for instance_id, verdict in verdicts.items():
            entries[instance_id]["gate"] = verdict.to_dict()
            if verdict.verdict != PASS:
                if request.health_check.on_failure == "abandon":
                    abandon.add(instance_id)
                else:
                    entries[instance_id]["action"] = "gate_failed"
        waiting = [i for i in waiting if entries[i]["action"] is None]

    changed = False
    for instance_id in waiting:
        entry = entries[instance_id]
        result = "ABANDON" if instance_id in abandon else request.result
        entry["result"] = None if request.heartbeat else result
        if check_mode:
            entry["hooks"] = list(hooks)
            entry["action"] = "would_heartbeat" if request.heartbeat else "would_complete"
            changed = True
            continue
        entry["hooks"] = _act(client, request, hooks, instance_id, result)
        if not entry["hooks"]:
            entry["action"] = "already_done"
        elif request.heartbeat:
            entry["action"] = "heartbeat"
        else:
            entry["action"] = "abandoned_by_gate" if instance_id in abandon else "completed"
        changed = changed or bool(entry["hooks"])
        if progress:
            hooks_done = ", ".join(entry["hooks"]) or "no hook left"
            progress(
                dict(event=entry["action"], instances=[instance_id], reason=f"{entry['result'] or ''} {hooks_done}")
            )

    timed_out = []
    completed = [i for i, e in entries.items() if e["action"] in ("completed", "abandoned_by_gate")]
    if request.wait and completed:
        final, timed_out = wait_until_left(client, request, completed, clock=clock, sleep=sleep, progress=progress)
        for instance_id, state in final.items():
            entries[instance_id]["final_state"] = state
    for entry in entries.values():
        entry.setdefault("final_state", None)
        entry.setdefault("deployment", None)
    return changed, [entries[i] for i in wanted], timed_out
