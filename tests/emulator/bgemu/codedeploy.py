"""CodeDeploy blue/green on EC2/Auto Scaling (COPY_AUTO_SCALING_GROUP), on moto's models.

A deployment moves Created → Queued → InProgress → (Ready) → Succeeded | Failed | Stopped:

1. the green group ``CodeDeploy_<group>_<deployment-id>`` is created from the original group, with
   CodeDeploy's launch hook (as CreateDeploymentGroup adds it to the original);
2. each green instance runs the lifecycle events in the documented order, at most one every EVENT_SECONDS
   (AWS time), each run by the stand-in agent (bgemu.agent) on every green instance at once: the revision is
   downloaded from the emulated S3, installed, and its hook scripts run inside the instance, so a broken version
   fails ValidateService through its own script;
3. READY_WAIT: with STOP_DEPLOYMENT the deployment is ``Ready`` until ContinueDeployment, and Stopped
   when ``waitTimeInMinutes`` passes; with CONTINUE_DEPLOYMENT it goes on;
4. AllowTraffic registers green in the target group and stays InProgress until every green instance passes the
   group's health checks (bgemu.targethealth: real HTTP checks at the instance's address); one that has not after
   EVENT_TIMEOUT fails the event and the deployment.  AfterAllowTraffic runs, then the blue instances run
   BeforeBlockTraffic, BlockTraffic (deregistered, InProgress until the group's deregistration delay is over:
   connection draining), AfterBlockTraffic (the scripts of the revision they have);
5. TERMINATION_WAIT (``terminationWaitTimeInMinutes``, or ContinueDeployment), then the original group
   is deleted (TERMINATE) and the deployment group points at the green group.

StopDeployment answers ``Pending`` and the deployment becomes Stopped STOP_SECONDS later.  A rollback
(StopDeployment with auto-rollback, or the group's automatic rollback on DEPLOYMENT_FAILURE,
DEPLOYMENT_STOP_ON_ALARM, DEPLOYMENT_STOP_ON_REQUEST) is a new deployment, creator ``codeDeployRollback``,
linked both ways by ``rollbackInfo``: it runs Before/Allow/AfterAllowTraffic on the original (blue)
instances and Before/Block/AfterBlockTraffic on green, one event every EVENT_SECONDS (AllowTraffic and
BlockTraffic wait for health and draining as above), then removes the green group.  A second deployment in a
group with an active one (a rollback included) fails with DeploymentLimitExceededException.

A scale-out of an Auto Scaling group that a deployment group names launches into CodeDeploy's launch hook, which
notifies CodeDeploy: it creates a deployment (creator ``autoscaling``) of the deployment group's last successful
revision to the new instance, runs its in-place lifecycle events through the agent and completes the hook with
CONTINUE (Succeeded) or ABANDON (Failed, Stopped), heartbeating meanwhile (LaunchFlow).  No deployment is made, and
the instance waits in Pending:Wait until the hook times out, when the deployment group has no successful revision
yet, or does not name the group that launched (CodeDeploy's replacement group until its deployment ends), or the
hook belongs to no deployment group.
"""

import json
import random
import string
import threading

from moto.autoscaling.models import autoscaling_backends
from moto.cloudwatch.models import cloudwatch_backends
from moto.codedeploy import models
from moto.codedeploy import responses
from moto.codedeploy.exceptions import DeploymentDoesNotExistException
from moto.codedeploy.exceptions import DeploymentGroupDoesNotExistException
from moto.core.exceptions import JsonRESTError
from moto.core.utils import utcnow
from moto.elbv2.models import elbv2_backends

from bgemu import agent
from bgemu import lifecycle
from bgemu import targethealth
from bgemu.clock import CLOCK

LOCK = threading.RLock()
EVENT_SECONDS = 5  # AWS seconds per lifecycle event
STOP_SECONDS = 30  # AWS seconds between StopDeployment's Pending answer and the deployment's Stopped
# A lifecycle event fails when it has not finished after one hour (CodeDeploy's default lifecycle event timeout, user
# guide "Troubleshooting deployment issues"): an AllowTraffic whose instances never pass the health checks fails then.
EVENT_TIMEOUT = 3600
GREEN_EVENTS = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
]
BLUE_EVENTS = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
ALLOW_EVENTS = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
ROLLBACK_CREATOR = "codeDeployRollback"  # DeploymentInfo.creator of a rollback (API reference)
LAUNCH_CREATOR = "autoscaling"  # DeploymentInfo.creator: "Amazon EC2 Auto Scaling created the deployment"
# An Auto Scaling launch deployment: the events of an in-place deployment on the new instance (user guide, AppSpec
# "hooks" section, "Auto Scaling launch deployments"); its traffic events are not modelled (module docstring)
LAUNCH_EVENTS = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
]
HOOK_PREFIX = "CodeDeploy-managed-automatic-launch-deployment-hook-"
HEARTBEAT_SECONDS = 300  # CodeDeploy heartbeats its launch hook every five minutes while it deploys (user guide)
ACTIVE = ("Created", "Queued", "InProgress", "Ready", "Baking")


class DeploymentLimitExceeded(JsonRESTError):
    def __init__(self, group, active):
        super().__init__(
            "DeploymentLimitExceededException",
            f"The deployment group {group} already has an active Deployment {active}",
        )


class DeploymentIsNotInReadyState(JsonRESTError):
    def __init__(self, message):
        super().__init__("DeploymentIsNotInReadyStateException", message)


class DeploymentAlreadyCompleted(JsonRESTError):
    def __init__(self, deployment):
        super().__init__(
            "DeploymentAlreadyCompletedException",
            f"The deployment {deployment.deployment_id} has already completed (status {deployment.status})",
        )


class InvalidDeploymentWaitType(JsonRESTError):
    def __init__(self, wait_type):
        super().__init__("InvalidDeploymentWaitTypeException", f"Invalid deployment wait type: {wait_type}")


class Job:
    """The agent running one lifecycle event on one instance, in a thread of its own (scripts take real time)."""

    def __init__(self, instance_id, event, deployment, account, previous_only):
        self.outcome = None
        self.done = threading.Event()
        args = (instance_id, event, deployment, account, previous_only)
        threading.Thread(target=self.run, args=args, daemon=True).start()

    def run(self, *args):
        try:
            self.outcome = agent.run_event(*args)
        finally:
            self.done.set()


class Flow:
    """What the emulator knows of one deployment beyond moto's DeploymentInfo."""

    def __init__(self, deployment, account, region):
        self.deployment = deployment
        self.account = account
        self.region = region
        self.phase = "provision"
        self.next_at = CLOCK.now()
        self.deadline = None
        self.blue_group = None
        self.green_group = None
        self.blue = []
        self.green = []
        self.targets = {}
        self.traffic_on_green = False
        self.continued = False
        self.cursor = 0
        self.steps = []  # [(instance ids, lifecycle event)] in CodeDeploy's order
        self.jobs = None  # {instance id: Job} while the agent runs the current event
        self.traffic_deadline = None  # while AllowTraffic / BlockTraffic waits: when AllowTraffic fails
        self.stop_at = None  # when a pending StopDeployment takes effect
        self.stop_rollback = False  # ...and whether it rolls back
        self.stop_message = ""
        self.next_alarm_check = CLOCK.now()

    # -- helpers ----------------------------------------------------------------------------------------
    @property
    def config(self):
        return self.deployment.deployment_group.blue_green_deployment_configuration or {}

    def asg(self):
        return autoscaling_backends[self.account][self.region]

    def running(self, instance_id):
        instance = self.asg().ec2_backend.get_instance_by_id(instance_id)
        return instance is not None and instance.state == "running"

    def target_group_arns(self):
        info = self.deployment.deployment_group.load_balancer_info or {}
        names = [t["name"] for t in info.get("targetGroupInfoList", [])]
        elb = elbv2_backends[self.account][self.region]
        return [tg.arn for tg in elb.target_groups.values() if tg.name in names]

    def event(self, instance_id, name, status, **diagnostics):
        target = self.targets[instance_id]
        now = utcnow()
        for entry in target["lifecycleEvents"]:
            if entry["lifecycleEventName"] == name:
                entry["status"] = status
                entry.setdefault("startTime", now)
                if status in ("Succeeded", "Failed", "Skipped"):
                    entry["endTime"] = now
                if diagnostics:
                    entry["diagnostics"] = diagnostics
        target["lastUpdatedAt"] = now
        target["status"] = "InProgress" if status == "InProgress" else target["status"]

    def set_status(self, status, message=""):
        self.deployment.status = status
        if status in ("Succeeded", "Failed", "Stopped"):
            self.deployment.complete_time = utcnow()
            self.phase = "done"
        if message:
            self.deployment.deployment_status_messages.append(message)

    # -- phases -----------------------------------------------------------------------------------------
    def provision(self):
        group_names = self.deployment.deployment_group.auto_scaling_groups
        backend = self.asg()
        original = backend.autoscaling_groups[group_names[0]]
        self.blue_group = original.name
        self.blue = [s.instance.id for s in original.instance_states]
        name = f"CodeDeploy_{self.deployment.deployment_group_name}_{self.deployment.deployment_id}"
        backend.create_auto_scaling_group(
            name=name,
            availability_zones=original.availability_zones,
            desired_capacity=original.desired_capacity,
            max_size=original.max_size,
            min_size=original.min_size,
            launch_config_name=None,
            launch_template={
                "LaunchTemplateId": original.ec2_launch_template.id,
                "Version": original.provided_launch_template_version,
            },
            vpc_zone_identifier=original.vpc_zone_identifier,
            default_cooldown=original.default_cooldown,
            health_check_period=original.health_check_grace_period,
            health_check_type=original.health_check_type,
            load_balancers=[],
            target_group_arns=[],
            placement_group=None,
            termination_policies=original.termination_policies,
            tags=[],
        )
        self.green_group = name
        # CodeDeploy's launch hook on the replacement group too, as CreateDeploymentGroup puts it on the original
        backend.create_lifecycle_hook(
            hook_name(self.deployment.deployment_group), name, "autoscaling:EC2_INSTANCE_LAUNCHING", 600, "ABANDON"
        )
        green = backend.autoscaling_groups[name]
        for state in green.instance_states:
            state.lifecycle_state = "InService"  # CodeDeploy's own hook is completed by the deployment
        self.green = [s.instance.id for s in green.instance_states]
        for instance_id in self.green:
            self.targets[instance_id] = self.new_target(instance_id, "Green", GREEN_EVENTS)
        for instance_id in self.blue:
            self.targets[instance_id] = self.new_target(instance_id, "Blue", BLUE_EVENTS)
        self.steps = [(self.green, name) for name in GREEN_EVENTS] + [(self.blue, name) for name in BLUE_EVENTS]
        self.deployment.status = "InProgress"
        self.deployment.start_time = utcnow()
        self.phase = "green"

    def new_target(self, instance_id, label, events):
        return {
            "deploymentId": self.deployment.deployment_id,
            "targetId": instance_id,
            "targetArn": f"arn:aws:ec2:{self.region}:{self.account}:instance/{instance_id}",
            "status": "Pending",
            "lastUpdatedAt": utcnow(),
            "instanceLabel": label,
            "lifecycleEvents": [{"lifecycleEventName": name, "status": "Pending"} for name in events],
        }

    def agent_deployment(self):
        group = self.deployment.deployment_group
        return {
            "id": self.deployment.deployment_id,
            "application": self.deployment.application_name,
            "group": self.deployment.deployment_group_name,
            "group_id": group.deployment_group_id,
            "revision": self.deployment.revision or {},
        }

    def agent_step(self, instance_ids, name, previous_only=False):
        """The agent runs ``name`` on every instance at once; True once all succeeded (False: running, or failed)."""
        if self.jobs is None:
            deployment = self.agent_deployment()
            self.jobs = {i: Job(i, name, deployment, self.account, previous_only) for i in instance_ids}
            for instance_id in instance_ids:
                self.targets[instance_id]["status"] = "InProgress"
                self.event(instance_id, name, "InProgress")
            return False
        if any(not job.done.is_set() for job in self.jobs.values()):
            return False
        outcomes = {i: job.outcome for i, job in self.jobs.items()}
        self.jobs = None
        for instance_id, outcome in outcomes.items():
            self.event(instance_id, name, outcome.status, **(outcome.diagnostics or {}))
        failed = [i for i, outcome in outcomes.items() if outcome.status == "Failed"]
        if failed:
            for instance_id in failed:
                self.targets[instance_id]["status"] = "Failed"
            reason = outcomes[failed[0]].diagnostics.get("message", "")
            self.fail(f"{name} failed on {', '.join(failed)}: {reason}")
            return False
        return True

    def traffic_step(self, instance_ids, name):
        """AllowTraffic or BlockTraffic on ``instance_ids``, as CodeDeploy drives the load balancer; True once the
        event succeeded (False: still waiting, or failed).

        AllowTraffic registers the running instances in the deployment group's target group and is InProgress
        until each passes the group's health checks (``healthy`` in bgemu.targethealth); if one has not after
        EVENT_TIMEOUT the event fails on it (errorCode UnknownError, no log tail: AWS's deployment logs do not say
        why either) and the deployment fails.  BlockTraffic deregisters them and is InProgress until none is still
        ``draining`` (the group's deregistration_delay.timeout_seconds)."""
        live = [i for i in instance_ids if self.running(i)]
        arns = self.target_group_arns()
        if self.traffic_deadline is None:  # the event starts
            elb = elbv2_backends[self.account][self.region]
            for arn in arns:
                registered = elb.target_groups[arn].targets
                if name == "AllowTraffic":
                    missing = [{"Id": i} for i in live if i not in registered]
                    if missing:
                        elb.register_targets(arn, missing)
                else:
                    present = [{"Id": i} for i in instance_ids if i in registered]
                    if present:
                        elb.deregister_targets(arn, present)
            for instance_id in instance_ids:
                self.targets[instance_id]["status"] = "InProgress"
                self.event(instance_id, name, "InProgress" if instance_id in live else "Skipped")
            self.traffic_deadline = CLOCK.now() + CLOCK.seconds(EVENT_TIMEOUT)
        waiting = self.traffic_waiting(arns, live, name)
        if not waiting:
            self.traffic_deadline = None
            for instance_id in live:
                self.event(instance_id, name, "Succeeded")
            return True
        if name == "AllowTraffic" and CLOCK.now() >= self.traffic_deadline:
            self.traffic_deadline = None
            message = f"The lifecycle event {name} did not complete within {EVENT_TIMEOUT} seconds"
            diagnostics = {"errorCode": "UnknownError", "scriptName": "", "message": message, "logTail": ""}
            for instance_id in waiting:
                self.event(instance_id, name, "Failed", **diagnostics)
                self.targets[instance_id]["status"] = "Failed"
            self.fail(f"{name} failed on {', '.join(waiting)}: {message}")
        return False

    @staticmethod
    def traffic_waiting(arns, instance_ids, name):
        """The instances AllowTraffic (not yet healthy) or BlockTraffic (still draining) waits for."""
        with targethealth.LOCK:
            checks = {key: (c.state, c.draining_until) for key, c in targethealth.STATES.items()}
        waiting = []
        for instance_id in instance_ids:
            for arn in arns:
                state, draining_until = checks.get((arn, instance_id), (None, None))
                if (name == "AllowTraffic" and state != "healthy") or (name == "BlockTraffic" and draining_until):
                    waiting.append(instance_id)
                    break
        return waiting

    def green_step(self):
        """The next lifecycle event: green's, then blue's (Before/Block/AfterBlockTraffic)."""
        instance_ids, name = self.steps[self.cursor]
        if name == "AllowTraffic":
            if not self.ready_gate() or not self.traffic_step(instance_ids, name):
                return
            self.traffic_on_green = True
        elif name == "BlockTraffic":
            if not self.traffic_step(instance_ids, name):
                return
        elif not self.agent_step(instance_ids, name):
            return
        self.cursor += 1
        if name == "AfterAllowTraffic":
            deployment = self.agent_deployment()
            for instance_id in self.green:
                self.targets[instance_id]["status"] = "Succeeded"
                agent.succeeded(instance_id, deployment)
        if self.cursor == len(self.steps):
            for instance_id in self.blue:
                self.targets[instance_id]["status"] = "Succeeded"
            self.start_termination_wait()

    def ready_gate(self):
        """READY_WAIT before AllowTraffic; True when traffic may move."""
        ready = self.config.get("deploymentReadyOption", {})
        if ready.get("actionOnTimeout") != "STOP_DEPLOYMENT" or self.continued:
            return True
        if self.phase != "ready":
            self.phase = "ready"
            self.deployment.status = "Ready"
            for instance_id in self.green:
                self.targets[instance_id]["status"] = "Ready"
                self.event(instance_id, "AllowTraffic", "Pending")
            self.deadline = CLOCK.now() + CLOCK.seconds(60 * int(ready.get("waitTimeInMinutes", 0)))
        return False

    def start_termination_wait(self):
        terminate = self.config.get("terminateBlueInstancesOnDeploymentSuccess", {})
        if terminate.get("action") == "TERMINATE":
            self.phase = "termination_wait"
            self.deployment.instance_termination_wait_time_started = True
            self.deadline = CLOCK.now() + CLOCK.seconds(60 * int(terminate.get("terminationWaitTimeInMinutes", 0)))
        else:
            self.succeed()

    def succeed(self):
        backend = self.asg()
        if self.config.get("terminateBlueInstancesOnDeploymentSuccess", {}).get("action") == "TERMINATE":
            if self.blue_group in backend.autoscaling_groups:
                group = backend.autoscaling_groups[self.blue_group]
                backend.ec2_backend.terminate_instances([s.instance.id for s in group.instance_states])
                group.instance_states = []
                backend.delete_auto_scaling_group(self.blue_group)
        self.deployment.deployment_group.auto_scaling_groups = [self.green_group]
        self.set_status("Succeeded")

    # -- stop and rollback --------------------------------------------------------------------------------
    def auto_rollback(self, event):
        config = self.deployment.deployment_group.auto_rollback_configuration or {}
        return bool(config.get("enabled")) and event in (config.get("events") or [])

    def start_rollback(self, reason):
        """Automatic rollback: a new deployment (creator codeDeployRollback) that returns traffic to blue."""
        if self.green_group is None:  # nothing was replaced: nothing to roll back
            self.deployment.rollback_info = {"rollbackMessage": "Rollback not needed: no instances were replaced"}
            return None
        backend = models.codedeploy_backends[self.account][self.region]
        rollback = new_deployment(
            backend,
            self.deployment.application_name,
            self.deployment.deployment_group_name,
            last_good_revision(backend, self.deployment),
            creator=ROLLBACK_CREATOR,
            description=f"Rollback of {self.deployment.deployment_id}",
        )
        rollback.rollback_info = {
            "rollbackTriggeringDeploymentId": self.deployment.deployment_id,
            "rollbackMessage": f"Rolling back deployment {self.deployment.deployment_id}: {reason}",
        }
        self.deployment.rollback_info = {
            "rollbackDeploymentId": rollback.deployment_id,
            "rollbackMessage": f"Rollback deployment {rollback.deployment_id} is in progress",
        }
        _flows(backend)[rollback.deployment_id] = RollbackFlow(rollback, self)
        return rollback.deployment_id

    def fail(self, message):
        self.deployment.error_information = {"code": "HEALTH_CONSTRAINTS", "message": message}
        self.set_status("Failed", message)
        if self.auto_rollback("DEPLOYMENT_FAILURE"):
            self.start_rollback(message)

    def request_stop(self, auto_rollback, message):
        """StopDeployment: Pending now, Stopped STOP_SECONDS later (the deployment goes no further meanwhile)."""
        self.stop_at = CLOCK.now() + CLOCK.seconds(STOP_SECONDS)
        self.stop_rollback = auto_rollback
        self.stop_message = message

    def stopped(self, message, rollback, code="MANUAL_STOP"):
        """Stopped (errorInformation.code: MANUAL_STOP, ALARM_ACTIVE or TIMEOUT), then the rollback if any."""
        self.set_status("Stopped", message)
        self.deployment.error_information = {"code": code, "message": message}
        if rollback:
            self.start_rollback(message)

    def check_alarms(self):
        """DEPLOYMENT_STOP_ON_ALARM: the group's alarms are polled while the deployment runs."""
        group = self.deployment.deployment_group
        alarms = getattr(group, "bgemu_alarm_configuration", None) or group.alarm_configuration
        if alarms is not None and not isinstance(alarms, dict):
            alarms = {"enabled": alarms.enabled, "alarms": alarms.alarms}
        if not alarms or not alarms.get("enabled"):
            return False
        names = [a["name"] if isinstance(a, dict) else a for a in alarms.get("alarms") or []]
        watch = cloudwatch_backends[self.account][self.region]
        firing = sorted(a.name for a in watch.alarms.values() if a.name in names and a.state_value == "ALARM")
        if not firing:
            return False
        message = f"Alarm activated: {', '.join(firing)}"
        self.stopped(message, self.auto_rollback("DEPLOYMENT_STOP_ON_ALARM"), code="ALARM_ACTIVE")
        return True

    # -- clock ------------------------------------------------------------------------------------------
    def advance(self):
        """A pending stop takes effect when due (nothing else moves meanwhile); otherwise one event when due."""
        now = CLOCK.now()
        if self.phase == "done":
            return
        if self.stop_at is not None:
            if now >= self.stop_at:
                self.stopped(self.stop_message, self.stop_rollback)
            return
        if now < self.next_at:
            return
        self.next_at = now + CLOCK.seconds(EVENT_SECONDS)
        self.next_event(now)

    def next_event(self, now):
        if self.phase != "provision" and self.check_alarms():
            return
        if self.phase == "provision" and self.deployment.status == "Created":
            self.deployment.status = "Queued"
        elif self.phase == "provision":
            self.provision()
        elif self.phase == "green":
            self.green_step()
        elif self.phase == "ready" and self.deadline is not None and now >= self.deadline:
            # nobody continued: Stopped, rolled back when the group rolls back automatically
            rollback = bool((self.deployment.deployment_group.auto_rollback_configuration or {}).get("enabled"))
            self.stopped("READY_WAIT timed out: nobody continued the deployment", rollback, code="TIMEOUT")
        elif self.phase == "termination_wait" and now >= self.deadline:
            self.succeed()


class RollbackFlow(Flow):
    """A rollback deployment: traffic back to the original (blue) instances, green blocked and removed."""

    def __init__(self, deployment, origin):
        super().__init__(deployment, origin.account, origin.region)
        self.origin = origin
        self.blue, self.green = list(origin.blue), list(origin.green)
        self.blue_group, self.green_group = origin.blue_group, origin.green_group
        self.steps = [(self.blue, name) for name in ALLOW_EVENTS] + [(self.green, name) for name in BLUE_EVENTS]

    def provision(self):
        for instance_id in self.blue:  # labels name the fleet: Blue is where traffic returns
            self.targets[instance_id] = self.new_target(instance_id, "Blue", ALLOW_EVENTS)
        for instance_id in self.green:
            self.targets[instance_id] = self.new_target(instance_id, "Green", BLUE_EVENTS)
        self.deployment.status = "InProgress"
        self.deployment.start_time = utcnow()
        self.phase = "rollback"

    def step(self):
        instance_ids, name = self.steps[self.cursor]
        if name in ("AllowTraffic", "BlockTraffic"):
            if not self.traffic_step(instance_ids, name):
                return
        else:  # the scripts of the revision each instance already has
            running = [i for i in instance_ids if self.running(i)]
            if not self.agent_step(running, name, previous_only=True):
                return
            for instance_id in set(instance_ids) - set(running):
                self.event(instance_id, name, "Skipped")
        self.cursor += 1
        if self.cursor == len(self.steps):
            self.remove_green()
            for target in self.targets.values():
                target["status"] = "Succeeded"
            self.set_status("Succeeded")
            self.origin.deployment.rollback_info["rollbackMessage"] = (
                f"Rollback deployment {self.deployment.deployment_id} succeeded"
            )

    def remove_green(self):
        backend = self.asg()
        if self.green_group in backend.autoscaling_groups:
            group = backend.autoscaling_groups[self.green_group]
            backend.ec2_backend.terminate_instances([s.instance.id for s in group.instance_states])
            group.instance_states = []
            backend.delete_auto_scaling_group(self.green_group)
        backend.delete_lifecycle_hook(self.green_group, hook_name(self.deployment.deployment_group))

    def next_event(self, now):  # a stop of a rollback is never rolled back (stop_deployment)
        if self.phase == "provision" and self.deployment.status == "Created":
            self.deployment.status = "Queued"
        elif self.phase == "provision":
            self.provision()
        else:
            self.step()


class LaunchFlow(Flow):
    """CodeDeploy's automatic deployment to an instance that a scale-out holds in its launch hook (creator
    ``autoscaling``): the in-place events of the group's last successful revision, then CONTINUE, or ABANDON when it
    fails or is stopped (Auto Scaling then terminates the instance and launches another)."""

    def __init__(self, deployment, account, region, group_name, instance_id, hook):
        super().__init__(deployment, account, region)
        self.group_name = group_name
        self.instance_id = instance_id
        self.hook = hook
        self.steps = [([instance_id], name) for name in LAUNCH_EVENTS]
        self.heartbeat_at = CLOCK.now() + CLOCK.seconds(HEARTBEAT_SECONDS)

    def provision(self):
        self.targets[self.instance_id] = self.new_target(self.instance_id, "Blue", LAUNCH_EVENTS)
        self.deployment.status = "InProgress"
        self.deployment.start_time = utcnow()
        self.phase = "launch"

    def step(self):
        if CLOCK.now() >= self.heartbeat_at:
            self.heartbeat_at = CLOCK.now() + CLOCK.seconds(HEARTBEAT_SECONDS)
            self.complete_hook(None)
        instance_ids, name = self.steps[self.cursor]
        if not self.agent_step(instance_ids, name):
            return
        self.cursor += 1
        if self.cursor == len(self.steps):
            agent.succeeded(self.instance_id, self.agent_deployment())
            self.targets[self.instance_id]["status"] = "Succeeded"
            self.set_status("Succeeded")

    def set_status(self, status, message=""):
        super().set_status(status, message)
        if status in ("Succeeded", "Failed", "Stopped"):
            self.complete_hook("CONTINUE" if status == "Succeeded" else "ABANDON")

    def complete_hook(self, result):
        """CompleteLifecycleAction (``result``) or RecordLifecycleActionHeartbeat (None), as CodeDeploy calls them."""
        backend = self.asg()
        try:
            if result is None:
                lifecycle.heartbeat(backend, self.group_name, self.hook, self.instance_id, None)
            else:
                lifecycle.complete(backend, self.group_name, self.hook, self.instance_id, None, result)
        except lifecycle.ValidationError:
            pass  # the action is gone (someone completed it, or it timed out): nothing to complete

    def fail(self, message):  # a launch deployment is not rolled back: the instance is abandoned
        self.deployment.error_information = {"code": "HEALTH_CONSTRAINTS", "message": message}
        self.set_status("Failed", message)

    def stopped(self, message, rollback, code="MANUAL_STOP"):
        self.deployment.error_information = {"code": code, "message": message}
        self.set_status("Stopped", message)

    def next_event(self, now):  # alarms stop user deployments only here (not modelled for launch deployments)
        if self.phase == "provision" and self.deployment.status == "Created":
            self.deployment.status = "Queued"
        elif self.phase == "provision":
            self.provision()
        else:
            self.step()


LAUNCHES = []  # (account, region, group name, instance id, hook name): launch notifications not yet handled
LAUNCHES_LOCK = threading.Lock()


def notified(backend, group_name, instance_id, hook):
    """lifecycle.LISTENERS: a launching instance waits in a hook (queued; handled by the ticker, see launch())."""
    if hook.startswith(HOOK_PREFIX):
        with LAUNCHES_LOCK:
            LAUNCHES.append((backend.account_id, backend.region_name, group_name, instance_id, hook))


lifecycle.LISTENERS.append(notified)


def last_successful_revision(backend, group):
    """The deployment group's last successful revision (its newest Succeeded deployment, whoever made it), or None."""
    done = [
        d
        for d in backend.deployments.values()
        if d.application_name == group.application.application_name
        and d.deployment_group_name == group.deployment_group_name
        and d.status == "Succeeded"
    ]
    done.sort(key=lambda d: (d.complete_time or d.create_time, d.create_time))
    return done[-1].revision if done else None


def launch(account, region, group_name, instance_id, hook):
    """CodeDeploy receives a launch notification of its hook: the deployment, or nothing (the instance then waits in
    Pending:Wait until the hook times out and its DefaultResult applies)."""
    backend = models.codedeploy_backends[account][region]
    group = next(
        (g for groups in backend.deployment_groups.values() for g in groups.values() if hook_name(g) == hook), None
    )
    if group is None or group_name not in group.auto_scaling_groups:
        return None  # a hook left behind, or a group the deployment group does not name (yet): no deployment
    revision = last_successful_revision(backend, group)
    if revision is None:
        return None  # nothing was ever deployed successfully to the group: nothing to deploy
    asg = autoscaling_backends[account][region]
    if not any(a.state.instance.id == instance_id and a.hook.name == hook for a in getattr(asg, "bgemu_actions", [])):
        return None  # completed or gone before CodeDeploy got to it
    deployment = new_deployment(
        backend, group.application.application_name, group.deployment_group_name, revision, creator=LAUNCH_CREATOR
    )
    _flows(backend)[deployment.deployment_id] = LaunchFlow(deployment, account, region, group_name, instance_id, hook)
    return deployment.deployment_id


def new_deployment(backend, *args, creator="user", **kwargs):
    """A deployment in moto's model with CodeDeploy's id format (moto uses a UUID): d- and nine capitals or digits."""
    moto_id = _original_create(backend, *args, **kwargs)
    deployment = backend.deployments.pop(moto_id)
    deployment.deployment_id = "d-" + "".join(random.choices(string.ascii_uppercase + string.digits, k=9))
    deployment.status = "Created"
    deployment.creator = creator
    backend.deployments[deployment.deployment_id] = deployment
    return deployment


def last_good_revision(backend, deployment):
    """What a rollback redeploys: the group's last successful revision (else the failed one's)."""
    good = [
        d
        for d in backend.deployments.values()
        if d.deployment_group_name == deployment.deployment_group_name
        and d.application_name == deployment.application_name
        and d.status == "Succeeded"
        and d.creator != ROLLBACK_CREATOR
    ]
    good.sort(key=lambda d: d.create_time)
    return (good[-1] if good else deployment).revision


def _flows(backend):
    if not hasattr(backend, "bgemu_flows"):
        backend.bgemu_flows = {}
    return backend.bgemu_flows


def all_backends():
    for regions in models.codedeploy_backends.values():
        yield from regions.values()


def advance():
    with LAUNCHES_LOCK:
        launches = list(LAUNCHES)
        LAUNCHES.clear()
    with LOCK:
        for notification in launches:
            launch(*notification)
        for backend in all_backends():
            for flow in list(_flows(backend).values()):
                flow.advance()


def flow_for(backend, deployment_id):
    flow = _flows(backend).get(deployment_id)
    if flow is None:
        raise DeploymentDoesNotExistException(f"Deployment {deployment_id} does not exist")
    return flow


# -- patches --------------------------------------------------------------------------------------------------
_original_create = models.CodeDeployBackend.create_deployment


def create_deployment(self, *args, **kwargs):
    with LOCK:
        group_name = kwargs.get("deployment_group_name") or (args[1] if len(args) > 1 else None)
        for deployment in self.deployments.values():
            if deployment.deployment_group_name == group_name and deployment.status in ACTIVE:
                raise DeploymentLimitExceeded(group_name, deployment.deployment_id)
        deployment = new_deployment(self, *args, **kwargs)
        _flows(self)[deployment.deployment_id] = Flow(deployment, self.account_id, self.region_name)
        return deployment.deployment_id


def continue_deployment(self):
    """AWS's errors: DeploymentAlreadyCompletedException on a finished deployment,
    DeploymentIsNotInReadyStateException when it is not waiting for that wait type."""
    with LOCK:
        flow = flow_for(self.codedeploy_backend, self._get_param("deploymentId"))
        wait_type = self._get_param("deploymentWaitType") or "READY_WAIT"
        deployment_id = flow.deployment.deployment_id
        if wait_type not in ("READY_WAIT", "TERMINATION_WAIT"):
            raise InvalidDeploymentWaitType(wait_type)
        if flow.phase == "done":
            raise DeploymentAlreadyCompleted(flow.deployment)
        if flow.stop_at is not None:
            raise DeploymentIsNotInReadyState(f"Deployment {deployment_id} is being stopped")
        if wait_type == "READY_WAIT" and flow.phase == "ready":
            flow.continued = True
            flow.phase = "green"
            flow.deployment.status = "InProgress"
            flow.next_at = CLOCK.now()
        elif wait_type == "TERMINATION_WAIT" and flow.phase == "termination_wait":
            flow.succeed()
        else:
            state = "Ready" if wait_type == "READY_WAIT" else "in its termination wait"
            raise DeploymentIsNotInReadyState(
                f"Deployment {deployment_id} is not {state} (status {flow.deployment.status}) and can't continue"
            )
    return "{}"


def stop_deployment(self):
    """Asynchronous, as on AWS: ``Pending`` now, Stopped STOP_SECONDS later; a finished deployment raises
    DeploymentAlreadyCompletedException.  autoRollbackEnabled omitted: the group's DEPLOYMENT_STOP_ON_REQUEST."""
    with LOCK:
        flow = flow_for(self.codedeploy_backend, self._get_param("deploymentId"))
        if flow.phase == "done":
            raise DeploymentAlreadyCompleted(flow.deployment)
        if flow.stop_at is None:
            rollback = self._get_param("autoRollbackEnabled")
            if rollback is None:
                rollback = flow.auto_rollback("DEPLOYMENT_STOP_ON_REQUEST")
            flow.request_stop(bool(rollback) and not isinstance(flow, RollbackFlow), "Stopped by request")
    message = f"Stopping deployment {flow.deployment.deployment_id}: the stop is pending"
    return json.dumps({"status": "Pending", "statusMessage": message})


def list_deployment_targets(self):
    flow = flow_for(self.codedeploy_backend, self._get_param("deploymentId"))
    return json.dumps({"targetIds": list(flow.targets)})


def batch_get_deployment_targets(self):
    flow = flow_for(self.codedeploy_backend, self._get_param("deploymentId"))
    found = []
    for target_id in self._get_param("targetIds") or []:
        if target_id in flow.targets:
            found.append({"deploymentTargetType": "InstanceTarget", "instanceTarget": flow.targets[target_id]})
    return json.dumps({"deploymentTargets": found}, default=lambda d: d.timestamp())


_original_info = responses._deployment_info
_original_group_info = responses._deployment_group_info
_original_create_group = models.CodeDeployBackend.create_deployment_group


def hook_name(deployment_group):
    return f"CodeDeploy-managed-automatic-launch-deployment-hook-{deployment_group.deployment_group_name}-" + (
        deployment_group.deployment_group_id[:8]
    )


def deployment_group_info(deployment_group):
    """AWS's shape: autoScalingGroups is a list of {name, hook} (moto returns bare names, which botocore drops)."""
    info = _original_group_info(deployment_group)
    info["autoScalingGroups"] = [
        {"name": name, "hook": hook_name(deployment_group)} for name in deployment_group.auto_scaling_groups
    ]
    alarms = getattr(deployment_group, "bgemu_alarm_configuration", None) or deployment_group.alarm_configuration
    if alarms is not None and not isinstance(alarms, dict):  # moto's AlarmConfiguration object
        alarms = {
            "enabled": bool(alarms.enabled),
            "ignorePollAlarmFailure": bool(alarms.ignore_poll_alarm_failure),
            "alarms": alarms.alarms,
        }
    info["alarmConfiguration"] = alarms or {}
    return info


def create_deployment_group(self, *args, **kwargs):
    """Also adds CodeDeploy's own launch lifecycle hook to each Auto Scaling group, as AWS does."""
    group_id = _original_create_group(self, *args, **kwargs)
    group = next(
        g for groups in self.deployment_groups.values() for g in groups.values() if g.deployment_group_id == group_id
    )
    asg = autoscaling_backends[self.account_id][self.region_name]
    for name in group.auto_scaling_groups:
        asg.create_lifecycle_hook(hook_name(group), name, "autoscaling:EC2_INSTANCE_LAUNCHING", 600, "ABANDON")
    return group_id


def deployment_info(deployment):
    info = _original_info(deployment)
    info["errorInformation"] = getattr(deployment, "error_information", {})
    info["rollbackInfo"] = getattr(deployment, "rollback_info", {})
    return info


# -- deployment configs and group/application lifecycle (moto has none of these) -------------------------------
BUILT_IN_CONFIGS = {
    "CodeDeployDefault.OneAtATime": {"type": "HOST_COUNT", "value": 1},
    "CodeDeployDefault.HalfAtATime": {"type": "FLEET_PERCENT", "value": 50},
    "CodeDeployDefault.AllAtOnce": {"type": "HOST_COUNT", "value": 0},
}


class DeploymentConfigDoesNotExist(JsonRESTError):
    def __init__(self, name):
        super().__init__("DeploymentConfigDoesNotExistException", f"No deployment configuration found for name: {name}")


def _check_config(name):
    if name and name not in BUILT_IN_CONFIGS:
        raise DeploymentConfigDoesNotExist(name)


def get_deployment_config(self):
    name = self._get_param("deploymentConfigName")
    _check_config(name)
    info = {
        "deploymentConfigName": name,
        "deploymentConfigId": name,
        "minimumHealthyHosts": BUILT_IN_CONFIGS[name],
        "computePlatform": "Server",
    }
    return json.dumps({"deploymentConfigInfo": info})


def list_deployment_configs(self):
    return json.dumps({"deploymentConfigsList": sorted(BUILT_IN_CONFIGS)})


def _group(backend, application, name):
    groups = backend.deployment_groups.get(application, {})
    if name not in groups:
        raise DeploymentGroupDoesNotExistException(f"No Deployment Group found for name: {name}")
    return groups[name]


def _sync_hooks(backend, group, old_asgs):
    """Move CodeDeploy's launch hook from the groups left to the groups added; returns hooks not cleaned up."""
    asg = autoscaling_backends[backend.account_id][backend.region_name]
    for name in set(old_asgs) - set(group.auto_scaling_groups):
        asg.delete_lifecycle_hook(name, hook_name(group))
    for name in set(group.auto_scaling_groups) - set(old_asgs):
        if name in asg.autoscaling_groups:
            asg.create_lifecycle_hook(hook_name(group), name, "autoscaling:EC2_INSTANCE_LAUNCHING", 600, "ABANDON")
    return []


UPDATABLE = {
    "deploymentConfigName": "deployment_config_name",
    "autoScalingGroups": "auto_scaling_groups",
    "serviceRoleArn": "service_role_arn",
    "triggerConfigurations": "trigger_configurations",
    "autoRollbackConfiguration": "auto_rollback_configuration",
    "deploymentStyle": "deployment_style",
    "blueGreenDeploymentConfiguration": "blue_green_deployment_configuration",
    "loadBalancerInfo": "load_balancer_info",
    "ec2TagFilters": "ec2_tag_filters",
    "outdatedInstancesStrategy": "outdated_instances_strategy",
}


def update_deployment_group(self):
    backend = self.codedeploy_backend
    application = self._get_param("applicationName")
    group = _group(backend, application, self._get_param("currentDeploymentGroupName"))
    _check_config(self._get_param("deploymentConfigName"))
    old_asgs = list(group.auto_scaling_groups)
    for param, attribute in UPDATABLE.items():
        value = self._get_param(param)
        if value is not None:
            setattr(group, attribute, value)
    alarms = self._get_param("alarmConfiguration")
    if alarms is not None:
        group.bgemu_alarm_configuration = alarms
    new_name = self._get_param("newDeploymentGroupName")
    if new_name and new_name != group.deployment_group_name:
        backend.deployment_groups[application].pop(group.deployment_group_name)
        group.deployment_group_name = new_name
        backend.deployment_groups[application][new_name] = group
    return json.dumps({"hooksNotCleanedUp": _sync_hooks(backend, group, old_asgs)})


def delete_deployment_group(self):
    backend = self.codedeploy_backend
    application = self._get_param("applicationName")
    group = _group(backend, application, self._get_param("deploymentGroupName"))
    old_asgs = list(group.auto_scaling_groups)
    group.auto_scaling_groups = []
    _sync_hooks(backend, group, old_asgs)
    backend.deployment_groups[application].pop(group.deployment_group_name)
    return json.dumps({"hooksNotCleanedUp": []})


def delete_application(self):
    backend = self.codedeploy_backend
    application = self._get_param("applicationName")
    for group in list(backend.deployment_groups.get(application, {}).values()):
        old_asgs = list(group.auto_scaling_groups)
        group.auto_scaling_groups = []
        _sync_hooks(backend, group, old_asgs)
    backend.deployment_groups.pop(application, None)
    backend.applications.pop(application, None)
    return "{}"


_original_create_group_response = responses.CodeDeployResponse.create_deployment_group


def create_deployment_group_response(self):
    _check_config(self._get_param("deploymentConfigName"))
    return _original_create_group_response(self)


def get_deployment_target(self):
    flow = flow_for(self.codedeploy_backend, self._get_param("deploymentId"))
    target_id = self._get_param("targetId")
    if target_id not in flow.targets:
        raise JsonRESTError("DeploymentTargetDoesNotExistException", f"Target {target_id} is not in the deployment")
    answer = {"deploymentTarget": {"deploymentTargetType": "InstanceTarget", "instanceTarget": flow.targets[target_id]}}
    return json.dumps(answer, default=lambda d: d.timestamp())


PATCHES = [
    (responses.CodeDeployResponse, "get_deployment_target", get_deployment_target),
    (responses.CodeDeployResponse, "get_deployment_config", get_deployment_config),
    (responses.CodeDeployResponse, "list_deployment_configs", list_deployment_configs),
    (responses.CodeDeployResponse, "update_deployment_group", update_deployment_group),
    (responses.CodeDeployResponse, "delete_deployment_group", delete_deployment_group),
    (responses.CodeDeployResponse, "delete_application", delete_application),
    (responses.CodeDeployResponse, "create_deployment_group", create_deployment_group_response),
    (responses, "_deployment_info", deployment_info),
    (responses, "_deployment_group_info", deployment_group_info),
    (models.CodeDeployBackend, "create_deployment_group", create_deployment_group),
    (models.CodeDeployBackend, "create_deployment", create_deployment),
    (responses.CodeDeployResponse, "continue_deployment", continue_deployment),
    (responses.CodeDeployResponse, "stop_deployment", stop_deployment),
    (responses.CodeDeployResponse, "list_deployment_targets", list_deployment_targets),
    (responses.CodeDeployResponse, "batch_get_deployment_targets", batch_get_deployment_targets),
]


def reset():
    with LAUNCHES_LOCK:
        LAUNCHES.clear()
    agent.reset()
