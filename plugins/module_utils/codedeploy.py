# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""CodeDeploy: applications, deployment groups and deployments.

Plain Python on a CodeDeploy client wrapped with ``retry()``; every call passes ``aws_retry=True``.
"""

from __future__ import annotations

import time

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.bluegreen.aws.plugins.module_utils.gates import HELD
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import watch
from ansible_collections.bluegreen.aws.plugins.module_utils.lifecycle import describe_addresses


def retry(**backoff):
    """AWSRetry's backoff, also on CodeDeploy's throttling code (ThrottlingException is not in AWSRetry's list)."""
    return AWSRetry.jittered_backoff(catch_extra_error_codes=["ThrottlingException"], **backoff)


def get_application(client, name):
    """The application as ``{"name", "id", "compute_platform", "tags"}``, or None when it does not exist."""
    try:
        info = client.get_application(applicationName=name, aws_retry=True)["application"]
    except is_boto3_error_code("ApplicationDoesNotExistException"):
        return None
    return {
        "name": info["applicationName"],
        "id": info.get("applicationId"),
        "compute_platform": info.get("computePlatform", "Server"),
    }


def application_arn(partition, region, account_id, name):
    return f"arn:{partition}:codedeploy:{region}:{account_id}:application:{name}"


def get_tags(client, arn):
    answer = client.list_tags_for_resource(ResourceArn=arn, aws_retry=True)
    return {t["Key"]: t["Value"] for t in answer.get("Tags", [])}


def tag_changes(current, wanted, purge):
    """(tags to set, keys to remove) to go from ``current`` to ``wanted``."""
    to_set = {k: v for k, v in (wanted or {}).items() if current.get(k) != v}
    to_remove = [k for k in current if purge and wanted is not None and k not in wanted]
    return to_set, to_remove


def ensure_application(client, name, state, tags, purge_tags, arn_of, check_mode):
    """Make the application present (with ``tags``) or absent; returns (changed, before, after)."""
    current = get_application(client, name)
    before = None
    if current is not None:
        before = dict(current, tags=get_tags(client, arn_of(name)))
    if state == "absent":
        if current is None:
            return False, None, None
        if not check_mode:
            client.delete_application(applicationName=name, aws_retry=True)
        return True, before, None

    if current is None:
        after = {"name": name, "id": None, "compute_platform": "Server", "tags": dict(tags or {})}
        if check_mode:
            return True, None, after
        created = client.create_application(
            applicationName=name,
            computePlatform="Server",
            tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            aws_retry=True,
        )
        after["id"] = created.get("applicationId")
        return True, None, after

    to_set, to_remove = tag_changes(before["tags"], tags, purge_tags)
    after = dict(before, tags={k: v for k, v in {**before["tags"], **to_set}.items() if k not in to_remove})
    if not to_set and not to_remove:
        return False, before, after
    if not check_mode:
        if to_set:
            client.tag_resource(
                ResourceArn=arn_of(name), Tags=[{"Key": k, "Value": v} for k, v in to_set.items()], aws_retry=True
            )
        if to_remove:
            client.untag_resource(ResourceArn=arn_of(name), TagKeys=to_remove, aws_retry=True)
    return True, before, after


# -- deployment groups --------------------------------------------------------------------------------------------
class DeploymentGroupError(Exception):
    """Bad input or an AWS state the caller must fix; the message names the parameter and the fix."""


ROLLBACK_EVENTS = ("DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST")


def validate_group(p):
    """Refuse what CodeDeploy accepts but cannot work (seed 000), before any AWS call."""
    blue_green = p["deployment_type"] == "blue_green"
    if blue_green and len(p["target_groups"]) != 1:
        raise DeploymentGroupError(
            f"target_groups: EC2 blue/green needs exactly one target group, got {len(p['target_groups'])}. "
            "With two, AllowTraffic waits forever for the green instances to be healthy in both "
            "(seed 000, challenge 2); with none, traffic is never moved."
        )
    if blue_green and p["green_fleet"] == "copy_auto_scaling_group" and len(p["auto_scaling_groups"]) != 1:
        raise DeploymentGroupError(
            f"auto_scaling_groups: green_fleet=copy_auto_scaling_group copies exactly one Auto Scaling group, "
            f"got {len(p['auto_scaling_groups'])}"
        )
    if len(p["alarms"]) > 10:
        raise DeploymentGroupError(f"alarms: CodeDeploy takes at most 10 alarms, got {len(p['alarms'])}")
    if not 0 <= p["termination_wait_minutes"] <= 2880:
        raise DeploymentGroupError("termination_wait_minutes must be between 0 and 2880 (two days)")
    if p["ready_action"] == "continue" and p["ready_wait_minutes"]:
        raise DeploymentGroupError("ready_wait_minutes applies only with ready_action=stop (wait for a continue)")
    if blue_green and p["ready_action"] == "stop" and not 1 <= p["ready_wait_minutes"] <= 2880:
        raise DeploymentGroupError(
            f"ready_action=stop with ready_wait_minutes={p['ready_wait_minutes']}: the deployment would stop before "
            "anything (a person, or codedeploy_deployment's ready_gates) could continue it; "
            "set ready_wait_minutes between 1 and 2880"
        )
    bad = [e for e in p["auto_rollback_events"] if e not in ROLLBACK_EVENTS]
    if bad:
        raise DeploymentGroupError(f"auto_rollback_events: unknown {bad}; use {list(ROLLBACK_EVENTS)}")


def desired_group(p, service_role_arn):
    """The deployment group as CreateDeploymentGroup/UpdateDeploymentGroup take it."""
    blue_green = p["deployment_type"] == "blue_green"
    group = {
        "deploymentConfigName": p["deployment_config"],
        "autoScalingGroups": sorted(p["auto_scaling_groups"]),
        "serviceRoleArn": service_role_arn,
        "deploymentStyle": {
            "deploymentType": "BLUE_GREEN" if blue_green else "IN_PLACE",
            "deploymentOption": "WITH_TRAFFIC_CONTROL" if p["target_groups"] else "WITHOUT_TRAFFIC_CONTROL",
        },
        "loadBalancerInfo": {"targetGroupInfoList": [{"name": name} for name in p["target_groups"]]},
        "autoRollbackConfiguration": {
            "enabled": bool(p["auto_rollback_events"]),
            "events": sorted(p["auto_rollback_events"]),
        },
        "alarmConfiguration": {
            "enabled": bool(p["alarms"]),
            "ignorePollAlarmFailure": p["ignore_alarm_poll_failure"],
            "alarms": [{"name": name} for name in sorted(p["alarms"])],
        },
        "triggerConfigurations": [
            {"triggerName": t["name"], "triggerTargetArn": t["target_arn"], "triggerEvents": sorted(t["events"])}
            for t in p["triggers"]
        ],
    }
    if blue_green:
        ready = {"actionOnTimeout": "STOP_DEPLOYMENT" if p["ready_action"] == "stop" else "CONTINUE_DEPLOYMENT"}
        if p["ready_action"] == "stop":
            ready["waitTimeInMinutes"] = p["ready_wait_minutes"]
        group["blueGreenDeploymentConfiguration"] = {
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "TERMINATE" if p["blue_termination"] == "terminate" else "KEEP_ALIVE",
                "terminationWaitTimeInMinutes": p["termination_wait_minutes"],
            },
            "deploymentReadyOption": ready,
            "greenFleetProvisioningOption": {
                "action": (
                    "COPY_AUTO_SCALING_GROUP" if p["green_fleet"] == "copy_auto_scaling_group" else "DISCOVER_EXISTING"
                )
            },
        }
    return group


def comparable(info):
    """The fields of GetDeploymentGroup that desired_group() sets, in the same shape."""
    keys = (
        "deploymentConfigName",
        "serviceRoleArn",
        "deploymentStyle",
        "loadBalancerInfo",
        "autoRollbackConfiguration",
        "alarmConfiguration",
        "triggerConfigurations",
        "blueGreenDeploymentConfiguration",
    )
    current = {k: info.get(k) for k in keys if info.get(k) not in (None, {})}
    current["autoScalingGroups"] = sorted(
        g["name"] if isinstance(g, dict) else g for g in info.get("autoScalingGroups", [])
    )
    rollback = current.get("autoRollbackConfiguration") or {"enabled": False, "events": []}
    current["autoRollbackConfiguration"] = {
        "enabled": rollback.get("enabled", False),
        "events": sorted(rollback.get("events", [])),
    }
    alarms = current.get("alarmConfiguration") or {}
    current["alarmConfiguration"] = {
        "enabled": alarms.get("enabled", False),
        "ignorePollAlarmFailure": alarms.get("ignorePollAlarmFailure", False),
        "alarms": sorted(({"name": a["name"]} for a in alarms.get("alarms", [])), key=lambda a: a["name"]),
    }
    current["triggerConfigurations"] = [
        dict(t, triggerEvents=sorted(t.get("triggerEvents", []))) for t in current.get("triggerConfigurations") or []
    ]
    return current


def check_references(client, iam, autoscaling, p):
    """Read-only checks of what the group names: deployment config, service role, Auto Scaling groups.

    Returns (service role ARN, warnings).
    """
    try:
        client.get_deployment_config(deploymentConfigName=p["deployment_config"], aws_retry=True)
    except is_boto3_error_code("DeploymentConfigDoesNotExistException") as e:
        raise DeploymentGroupError(
            f"deployment_config: {p['deployment_config']} does not exist; EC2 has CodeDeployDefault.OneAtATime, "
            "HalfAtATime and AllAtOnce (no weighted canary on EC2: use bluegreen.aws.traffic_switch for that)"
        ) from e
    role = p["service_role"]
    try:
        role_arn = iam.get_role(RoleName=role.rsplit("/", 1)[-1], aws_retry=True)["Role"]["Arn"]
    except is_boto3_error_code("NoSuchEntity") as e:
        raise DeploymentGroupError(f"service_role: IAM role {role} does not exist") from e
    warnings = []
    if p["auto_scaling_groups"]:
        found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=p["auto_scaling_groups"], aws_retry=True)
        groups = {g["AutoScalingGroupName"]: g for g in found["AutoScalingGroups"]}
        missing = [g for g in p["auto_scaling_groups"] if g not in groups]
        if missing:
            raise DeploymentGroupError(f"auto_scaling_groups: {missing} not found in this region")
        for name, group in groups.items():
            if group.get("HealthCheckType") == "ELB":
                warnings.append(
                    f"Auto Scaling group {name} uses health check type ELB: during the app's warm-up the load balancer "
                    "marks new instances unhealthy and the group replaces them (seed 000, challenge 3); "
                    "use EC2 and let the target group judge application health"
                )
            warmup = p.get("app_warmup_seconds")
            if warmup and group.get("HealthCheckGracePeriod", 0) < warmup:
                grace = group.get("HealthCheckGracePeriod", 0)
                warnings.append(
                    f"Auto Scaling group {name} has a health check grace period of {grace}s, "
                    f"shorter than app_warmup_seconds={warmup}"
                )
    return role_arn, warnings


def get_deployment_group(client, application, name):
    """GetDeploymentGroup's deploymentGroupInfo, or None when the group does not exist.

    Raises DeploymentGroupError when the application does not exist.
    """
    try:
        return client.get_deployment_group(applicationName=application, deploymentGroupName=name, aws_retry=True)[
            "deploymentGroupInfo"
        ]
    except is_boto3_error_code("ApplicationDoesNotExistException") as e:
        raise DeploymentGroupError(
            f"application: {application} does not exist; create it with bluegreen.aws.codedeploy_application"
        ) from e
    except is_boto3_error_code("DeploymentGroupDoesNotExistException"):
        return None


def replacement_of(group_name, asg_name):
    """Whether ``asg_name`` is the Auto Scaling group a COPY_AUTO_SCALING_GROUP deployment of the group created."""
    return asg_name.startswith(f"CodeDeploy_{group_name}_d-")


def adopt_replacement(p, current):
    """Keep CodeDeploy's replacement Auto Scaling group where ``p`` still names the original (seed 000, challenge 5).

    After the first successful COPY_AUTO_SCALING_GROUP deployment the original group is deleted and
    ``CodeDeploy_<group>_<deployment id>`` serves the traffic; provisioning that still names the original must not
    point the deployment group back at it.  Returns (p, {"requested", "current"} or None).
    """
    if current is None or p["deployment_type"] != "blue_green" or p["green_fleet"] != "copy_auto_scaling_group":
        return p, None
    names = current["autoScalingGroups"]
    if len(names) != 1 or p["auto_scaling_groups"] == names or not replacement_of(p["name"], names[0]):
        return p, None
    return dict(p, auto_scaling_groups=names), {"requested": p["auto_scaling_groups"][0], "current": names[0]}


def ensure_deployment_group(client, iam, autoscaling, p, check_mode):
    """Create, update or delete; returns (changed, before, after, warnings, adopted).

    Call validate_group(p) first, before any client is made, for state=present.  ``adopted`` is what
    adopt_replacement() returns: set when the group keeps CodeDeploy's replacement Auto Scaling group.
    """
    try:
        info = get_deployment_group(client, p["application"], p["name"])
    except DeploymentGroupError:
        if p["state"] == "absent":
            return False, None, None, [], None
        raise
    before = None if info is None else comparable(info)
    if p["state"] == "absent":
        if before is None:
            return False, None, None, [], None
        if not check_mode:
            client.delete_deployment_group(
                applicationName=p["application"], deploymentGroupName=p["name"], aws_retry=True
            )
        return True, before, None, [], None

    p, adopted = adopt_replacement(p, before)
    role_arn, warnings = check_references(client, iam, autoscaling, p)
    if adopted:
        original = autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[adopted["requested"]], aws_retry=True
        )["AutoScalingGroups"]
        if original:
            warnings.append(
                f"auto_scaling_groups: {adopted['requested']} exists again beside {adopted['current']}, the group "
                "CodeDeploy created to replace it; the deployment group keeps the replacement. Stop creating the "
                "original (the bluegreen.aws.codedeploy_fleet role provisions whichever group is current) and delete it"
            )
    after = comparable(desired_group(p, role_arn))
    if before == after:
        return False, before, after, warnings, adopted
    if not check_mode:
        request = desired_group(p, role_arn)
        if before is None:
            client.create_deployment_group(
                applicationName=p["application"], deploymentGroupName=p["name"], aws_retry=True, **request
            )
        else:
            client.update_deployment_group(
                applicationName=p["application"], currentDeploymentGroupName=p["name"], aws_retry=True, **request
            )
    return True, before, after, warnings, adopted


# -- deployments ----------------------------------------------------------------------------------------------------
ACTIVE_STATUSES = ["Created", "Queued", "InProgress", "Ready", "Baking"]
DONE_STATUSES = ("Succeeded", "Failed", "Stopped")


class ActiveDeployment(Exception):
    """CreateDeployment refused: another deployment became active in the group after we looked."""

    def __init__(self, deployment_id):
        super().__init__(deployment_id)
        self.deployment_id = deployment_id


class DeploymentError(Exception):
    """The deployment failed, was stopped, or timed out; ``result`` holds what the module returns."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def active_deployment(client, application, group):
    answer = client.list_deployments(
        applicationName=application, deploymentGroupName=group, includeOnlyStatuses=ACTIVE_STATUSES, aws_retry=True
    )
    return (answer.get("deployments") or [None])[0]


def queue_behind(client, application, group, active, timeout, poll, sleep=time.sleep, clock=time.monotonic):
    """Wait until the group has no active deployment (``active`` and any started after it), for at most ``timeout``
    seconds; returns the ids waited for, oldest first.

    A deployment in its original instances' termination wait is active until that wait ends: a release queued behind
    it starts when CodeDeploy has terminated the original instances (and the group names the replacement group).
    """
    deadline = clock() + timeout
    waited = []
    while active is not None:
        waited.append(active)
        while True:
            (info,) = _deployments(client, [active])
            if info["status"] in DONE_STATUSES:
                break
            if clock() >= deadline:
                raise DeploymentError(
                    f"deployment group {group}: deployment {active} was still {info['status']} after {timeout} s of "
                    "waiting for it (on_active=queue); raise wait_timeout, or stop it with state=stopped",
                    {"status": "Queued", "queued_behind": waited},
                )
            sleep(poll)
        active = active_deployment(client, application, group)
    return waited


def create_deployment(client, application, group, revision, description):
    """CreateDeployment; returns the deployment id.

    A create that AWS applied but whose answer was lost (a timeout, a 5xx) is retried by AWSRetry and then fails
    with DeploymentLimitExceededException against the deployment it made: when the group's active deployment is
    of this very revision, that one is returned instead of an error. When it is of another revision (someone else
    started it since the caller looked), ActiveDeployment names it.
    """
    s3 = {"bucket": revision["bucket"], "key": revision["key"], "bundleType": revision["bundle_type"]}
    for source, target in (("version", "version"), ("etag", "eTag")):
        if revision.get(source):
            s3[target] = revision[source]
    try:
        return client.create_deployment(
            applicationName=application,
            deploymentGroupName=group,
            revision={"revisionType": "S3", "s3Location": s3},
            description=description or "",
            aws_retry=True,
        )["deploymentId"]
    except is_boto3_error_code("DeploymentLimitExceededException") as e:
        active = active_deployment(client, application, group)
        infos = _deployments(client, [active]) if active else []
        if infos and (infos[0].get("revision") or {}).get("s3Location") == s3:
            return active
        if active:
            raise ActiveDeployment(active) from e
        raise


class RevisionError(Exception):
    """The revision cannot be identified; the message names the parameter and the fix."""


def resolve_revision(s3, revision):
    """The revision with its identity: ``etag`` or ``version`` as given, or read with HeadObject.

    Bucket and key alone do not identify a revision: new content uploaded to the same key is another release, and
    CodeDeploy deploys whatever the key holds when it downloads it.  Pinning the ETag (and the version of a
    versioned bucket) makes a re-upload a new deployment and the deployment download exactly what was checked.
    """
    if revision.get("etag") or revision.get("version"):
        return dict(revision)
    try:
        head = s3.head_object(Bucket=revision["bucket"], Key=revision["key"], aws_retry=True)
    except is_boto3_error_code(["404", "NoSuchKey", "NotFound", "NoSuchBucket"]) as e:
        raise RevisionError(
            f"revision: s3://{revision['bucket']}/{revision['key']} does not exist; upload the bundle first "
            "(bluegreen.aws.codedeploy_bundle, then amazon.aws.s3_object), or give revision.etag / revision.version"
        ) from e
    found = dict(revision, etag=head["ETag"].strip('"'))
    if head.get("VersionId") and head["VersionId"] != "null":
        found["version"] = head["VersionId"]
    return found


def _target_group_name(value):
    """A target group's name from its name or ARN (``...:targetgroup/<name>/<id>``)."""
    return value.split(":targetgroup/", 1)[1].split("/", 1)[0] if ":targetgroup/" in value else value


def check_gates_can_run(group, p):
    """Refuse, before any write, gates that could never run or would judge the wrong fleet (issue: silent gates)."""
    if group is None:
        raise DeploymentGroupError(
            f"deployment_group: {p['deployment_group']} does not exist in application {p['application']}"
        )
    blue_green = (group.get("deploymentStyle") or {}).get("deploymentType") == "BLUE_GREEN"
    config = group.get("blueGreenDeploymentConfiguration") or {}
    ready = (config.get("deploymentReadyOption") or {}).get("actionOnTimeout", "CONTINUE_DEPLOYMENT")
    if p["ready_gates"] and (not blue_green or ready != "STOP_DEPLOYMENT"):
        raise DeploymentGroupError(
            f"ready_gates: deployment group {p['deployment_group']} "
            + ("is not blue/green" if not blue_green else "reroutes as soon as green is ready (CONTINUE_DEPLOYMENT)")
            + ": there is no Ready pause for these gates to judge. Set ready_action=stop with ready_wait_minutes on "
            "the group (bluegreen.aws.codedeploy_deployment_group), or move the gates to bake_gates"
        )
    own = {t.get("name") for t in (group.get("loadBalancerInfo") or {}).get("targetGroupInfoList") or []}
    for index, spec in enumerate(p["ready_gates"]):
        if spec["type"] == "target_health" and _target_group_name(spec["target_group"]) in own:
            raise DeploymentGroupError(
                f"ready_gates[{index}].target_group: {spec['target_group']} is the deployment group's own target "
                "group; with STOP_DEPLOYMENT AWS registers the green instances there only after the reroute, so at "
                "Ready it would judge blue. Judge green with an http gate whose urls hold {private_ip} "
                "(one probe per green instance), or a separate test target group"
            )
    if p["bake_gates"]:
        termination = config.get("terminateBlueInstancesOnDeploymentSuccess") or {}
        minutes = termination.get("terminationWaitTimeInMinutes", 0)
        if not blue_green or termination.get("action") != "TERMINATE" or not minutes:
            raise DeploymentGroupError(
                f"bake_gates: deployment group {p['deployment_group']} has no termination wait (blue_termination="
                f"{termination.get('action', 'none').lower()}, termination_wait_minutes={minutes}): the bake gates "
                "would never run. Set blue_termination=terminate and termination_wait_minutes on the group"
            )
        if p["bake_seconds"] > minutes * 60:
            raise DeploymentGroupError(
                f"bake_seconds={p['bake_seconds']} is longer than the group's termination wait ({minutes} min): the "
                "blue instances would be gone before the bake ends. Lower bake_seconds or raise "
                "termination_wait_minutes"
            )


def deployment_targets(client, deployment_id):
    ids = client.list_deployment_targets(deploymentId=deployment_id, aws_retry=True).get("targetIds", [])
    found = []
    for start in range(0, len(ids), 25):
        answer = client.batch_get_deployment_targets(
            deploymentId=deployment_id, targetIds=ids[start : start + 25], aws_retry=True
        )
        found.extend(t["instanceTarget"] for t in answer.get("deploymentTargets", []) if "instanceTarget" in t)
    return found


def diagnostics(targets):
    """Each failed lifecycle event: instance, event, script, error code, message, log tail."""
    failed = []
    for target in targets:
        for event in target.get("lifecycleEvents", []):
            if event.get("status") == "Failed":
                d = event.get("diagnostics", {})
                failed.append(
                    {
                        "instance_id": target["targetId"],
                        "lifecycle_event": event["lifecycleEventName"],
                        "script": d.get("scriptName"),
                        "error_code": d.get("errorCode"),
                        "message": d.get("message"),
                        "log_tail": d.get("logTail"),
                    }
                )
    return failed


class Tracker:
    """Follows one deployment to its end, gating READY_WAIT and the termination wait; clock injected.

    Ready gates judge the green (replacement) instances: with STOP_DEPLOYMENT AWS registers them with the load
    balancer only after ContinueDeployment, so HTTP gates with ``{private_ip}`` / ``{instance_id}`` in their URLs
    are bound to the deployment's Green targets at Ready (one probe per instance, all must pass).  A stop (a failed
    gate, or state=stopped) is followed until CodeDeploy says Stopped, then the rollback deployment CodeDeploy
    starts (``rollbackInfo.rollbackDeploymentId``) is followed to its own end.
    """

    def __init__(
        self,
        client,
        deployment_id,
        ready_gates=(),
        bake_gates=(),
        bake_seconds=0,
        continue_ready=True,
        on_undecided="fail",
        ready_gate_timeout=None,
        abort=None,
        ec2=None,
        poll=5.0,
        timeout=3600.0,
        gate_interval=5.0,
        follow_termination_wait=True,
        clock=None,
        sleep=None,
        progress=None,
    ):
        self.client = client
        self.deployment_id = deployment_id
        self.ready_gates = list(ready_gates)
        self.bake_gates = list(bake_gates)
        self.bake_seconds = bake_seconds
        self.continue_ready = continue_ready
        self.on_undecided = on_undecided
        self.ready_gate_timeout = ready_gate_timeout
        self.abort = abort  # an operator's abort mark: abort() returns why, or None
        self.aborted = None
        self.ec2 = ec2
        self.poll = poll
        self.timeout = timeout
        self.gate_interval = gate_interval
        # False: return once the termination wait has started and the bake gates (if any) passed, the deployment
        # still InProgress with the original instances kept until the wait ends (status TerminationWait)
        self.follow_termination_wait = follow_termination_wait
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        # progress(entry): every timeline event and, while it polls, each target's lifecycle events as they change
        self.progress = progress
        self._lifecycle_seen = {}
        self.timeline = []
        self.rollback = None  # {"deployment_id", "status"} once a rollback deployment was followed
        self.stop_reason = None
        self._started = self.clock()

    def _event(self, status, **extra):
        entry = {"t": round(self.clock() - self._started, 3), "status": status}
        entry.update(extra)
        self.timeline.append(entry)
        if self.progress:
            self.progress(dict(entry))

    def _lifecycle_progress(self, deployment_id=None):
        """With ``progress``: each target's lifecycle events whose status changed since the last poll (two more calls
        per poll, only then). A failed read is skipped: progress never changes how the deployment ends."""
        if not self.progress:
            return
        try:
            targets = deployment_targets(self.client, deployment_id or self.deployment_id)
        except Exception:  # a progress read must not end the deployment
            return
        for target in targets:
            for event in target.get("lifecycleEvents", []):
                key = (target.get("targetId"), event.get("lifecycleEventName"))
                status = event.get("status")
                if status and self._lifecycle_seen.get(key) != status:
                    self._lifecycle_seen[key] = status
                    entry = {"t": round(self.clock() - self._started, 3), "kind": "lifecycle"}
                    entry.update(instance=key[0], label=target.get("instanceLabel"), lifecycle_event=key[1])
                    entry.update(status=status)
                    self.progress(entry)

    def info(self, deployment_id=None):
        return self.client.get_deployment(deploymentId=deployment_id or self.deployment_id, aws_retry=True)[
            "deploymentInfo"
        ]

    def _deadline(self):
        return self._started + self.timeout

    def _watch(self, gates, seconds, label, until_pass, stop=None):
        """One gate window through the gate engine, every evaluation in the timeline."""
        return watch(
            gates,
            seconds,
            self.gate_interval,
            until_pass=until_pass,
            on_undecided=self.on_undecided if label == "ready" else "fail",
            deadline=self._deadline(),
            label=label,
            clock=self.clock,
            sleep=self.sleep,
            record=lambda results: self._event(f"gates:{label}", gates=[r.to_dict() for r in results]),
            stop=stop,
            abort=self._abort_requested if self.abort else None,
        )

    def _abort_requested(self):
        """Ask the abort mark once (a gate window asks before every evaluation); remember what it said."""
        reason = self.abort()
        if reason:
            self.aborted = reason
        return reason

    def _timed_out(self, status):
        result = {"deployment_id": self.deployment_id, "status": status, "timeline": self.timeline}
        if self.rollback:
            result["rollback_deployment_id"] = self.rollback["deployment_id"]
        return DeploymentError(
            f"wait_timeout: deployment {self.deployment_id} still {status} after {self.timeout:g}s", result
        )

    # -- green ------------------------------------------------------------------------------------------------------
    def bind_green(self):
        """Point the per-instance gates at the deployment's Green targets; returns their instance ids."""
        green = sorted(
            t["targetId"]
            for t in deployment_targets(self.client, self.deployment_id)
            if t.get("instanceLabel") == "Green"
        )
        per_instance = [g for g in self.ready_gates + self.bake_gates if hasattr(g, "bind")]
        if per_instance:
            addresses = describe_addresses(self.ec2, green) if green else {}
            for gate in per_instance:
                gate.bind(addresses)
        self._event("GreenInstances", instances=green)
        return green

    # -- stop -------------------------------------------------------------------------------------------------------
    def stop(self, reason):
        """StopDeployment with rollback; the caller's loop then follows it to Stopped and the rollback to its end."""
        self.stop_reason = reason
        try:
            answer = self.client.stop_deployment(
                deploymentId=self.deployment_id, autoRollbackEnabled=True, aws_retry=True
            )
        except is_boto3_error_code("DeploymentAlreadyCompletedException"):
            self._event("StopTooLate", reason=f"{reason}; the deployment had already finished")
            return
        self._event("StopRequested", reason=reason, stop_status=answer.get("status"))

    def _follow_rollback(self, info):
        """Follow the rollback deployment CodeDeploy started for this one (if any) to its end."""
        rollback_id = (info.get("rollbackInfo") or {}).get("rollbackDeploymentId")
        if not rollback_id:
            return
        self.rollback = {"deployment_id": rollback_id, "status": None}
        last = None
        while True:
            status = self.info(rollback_id)["status"]
            if status != last:
                self._event(f"Rollback:{status}", deployment_id=rollback_id)
                last = status
            self.rollback["status"] = status
            if status in DONE_STATUSES:
                return
            if self.clock() >= self._deadline():
                raise self._timed_out(f"rolling back ({rollback_id} {status})")
            self.sleep(self.poll)

    # -- run --------------------------------------------------------------------------------------------------------
    def _ready(self, info):
        """Gate the reroute; returns None to go on polling, or the info to return (left waiting or held)."""
        if not self.ready_gates:
            if not self.continue_ready:
                self._event("LeftWaiting", reason="continue_ready=false: traffic stays on the original instances")
                return info
            self._continue()
            return None
        self.bind_green()

        def left_ready():
            status = self.info()["status"]
            return None if status == "Ready" else f"deployment {status}"

        decision = self._watch(self.ready_gates, self.ready_gate_timeout, "ready", until_pass=True, stop=left_ready)
        if decision.passed:
            self._continue()
        elif decision.verdict == HELD:
            self._event("Held", reason=f"{decision.reason}; the deployment waits in Ready, traffic on blue")
            self.stop_reason = decision.reason
            return dict(info, status="Held")
        elif self.info()["status"] == "Ready":
            self.stop(decision.reason if decision.aborted else f"ready gates failed: {decision.reason}")
        else:  # the ready wait ran out while the gates were undecided: CodeDeploy stopped it, nothing to send
            self.stop_reason = f"ready gates failed: {decision.reason}"
        return None

    def _continue(self):
        try:
            self.client.continue_deployment(
                deploymentId=self.deployment_id, deploymentWaitType="READY_WAIT", aws_retry=True
            )
        except is_boto3_error_code(["DeploymentAlreadyCompletedException", "DeploymentIsNotInReadyStateException"]):
            self._event("ContinueTooLate", reason="the deployment left Ready before ContinueDeployment")
            return
        self._event("ContinueRequested", wait_type="READY_WAIT")

    def run(self):
        """Returns the final deployment info (status Held or Ready when left waiting); raises DeploymentError on
        timeout. A stop is followed to Stopped and its rollback deployment to its end (see ``self.rollback``)."""
        last = None
        ready_done = False
        bake_done = False
        while True:
            info = self.info()
            status = info["status"]
            if status != last:
                self._event(status)
                last = status
            self._lifecycle_progress()
            if status in DONE_STATUSES:
                self._follow_rollback(info)
                return info
            if self.abort and self.stop_reason is None and self._abort_requested():
                self.stop(f"aborted: {self.aborted}")
                continue
            if status == "Ready" and not ready_done:
                ready_done = True
                returned = self._ready(info)
                if returned is not None:
                    return returned
                continue
            if info.get("instanceTerminationWaitTimeStarted") and self.bake_gates and not bake_done:
                bake_done = True
                decision = self._bake()
                if not decision.passed:
                    self.stop(decision.reason if decision.aborted else f"bake gates failed: {decision.reason}")
                continue
            if (
                info.get("instanceTerminationWaitTimeStarted")
                and not self.follow_termination_wait
                and (bake_done or not self.bake_gates)
            ):
                self._event("TerminationWait", reason="left in its termination wait: the original instances stay")
                return dict(info, status="TerminationWait")
            if self.clock() >= self._deadline():
                raise self._timed_out(status)
            self.sleep(self.poll)

    def _bake(self):
        """Evaluate the bake gates for bake_seconds, or until the deployment ends."""
        if any(hasattr(g, "bind") for g in self.bake_gates):
            self.bind_green()

        def ended():
            status = self.info()["status"]
            return f"deployment {status}" if status in DONE_STATUSES else None

        return self._watch(self.bake_gates, self.bake_seconds, "bake", until_pass=False, stop=ended)


def last_successful_revision(client, application, group):
    """(bucket, key, version, etag) of the group's newest Succeeded deployment, or None."""
    ids = client.list_deployments(
        applicationName=application, deploymentGroupName=group, includeOnlyStatuses=["Succeeded"], aws_retry=True
    ).get("deployments", [])
    if not ids:
        return None
    infos = _deployments(client, ids)
    if not infos:
        return None
    newest = max(infos, key=lambda d: d.get("createTime") or 0)
    s3 = (newest.get("revision") or {}).get("s3Location", {})
    return (s3.get("bucket"), s3.get("key"), s3.get("version"), s3.get("eTag"))


def same_revision(deployed, wanted):
    """Whether ``deployed`` (last_successful_revision's tuple) is the content ``wanted`` names, both
    ``(bucket, key, version, etag)``: same bucket and key, and every identity (S3 version, ETag) known on both sides
    equal, at least one of them. A revision named by its ETag alone (check mode: the bundle is not uploaded, so it has
    no S3 version yet) is the deployed one when the ETags match."""
    if not deployed or deployed[:2] != wanted[:2]:
        return False
    compared = [(deployed[i], wanted[i]) for i in (2, 3) if deployed[i] and wanted[i]]
    return bool(compared) and all(a.strip('"') == b.strip('"') for a, b in compared)


AUTOMATIC_CREATORS = ("autoscaling", "CodeDeployAutoUpdate")  # CodeDeploy's own deployments for scale-outs


def latest_deployment(client, application, group):
    """The id of the group's newest deployment, or None. CodeDeploy's automatic deployments (creator ``autoscaling``: a
    scaled-out instance gets the last successful revision; ``CodeDeployAutoUpdate``: its follow-on) are not releases
    and are skipped: a scale-out after a release leaves that release the newest deployment."""
    ids = client.list_deployments(applicationName=application, deploymentGroupName=group, aws_retry=True).get(
        "deployments", []
    )
    infos = [d for d in _deployments(client, ids) if d.get("creator") not in AUTOMATIC_CREATORS]
    if not infos:
        return None
    return max(infos, key=lambda d: d.get("createTime") or 0)["deploymentId"]


def _deployments(client, ids):
    """BatchGetDeployments over any number of ids (25 a call)."""
    infos = []
    for start in range(0, len(ids), 25):
        answer = client.batch_get_deployments(deploymentIds=ids[start : start + 25], aws_retry=True)
        infos.extend(answer.get("deploymentsInfo", []))
    return infos
