"""Auto Scaling lifecycle hooks on moto's models.

- An instance launched into a group with a launching hook waits in ``Pending:Wait``; with a terminating
  hook, an instance terminated through the group waits in ``Terminating:Wait``.
- ``CompleteLifecycleAction`` (by token or instance id) and ``RecordLifecycleActionHeartbeat``.
- On a hook's heartbeat timeout its ``DefaultResult`` applies.  ABANDON of a launching instance
  terminates it (the group launches a replacement), CONTINUE makes it InService.
- The error AWS returns for an action that no longer exists.
- A launching instance's lifecycle action is announced to LISTENERS (what AWS sends to the hook's notification
  target; CodeDeploy's launch hook notifies CodeDeploy: bgemu.codedeploy starts its automatic deployment).
"""

import threading
import uuid

from moto.autoscaling import models
from moto.autoscaling import responses
from moto.autoscaling.exceptions import ValidationError
from moto.core.responses import EmptyResult

from bgemu.clock import CLOCK

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
WAIT_STATE = {LAUNCHING: "Pending:Wait", TERMINATING: "Terminating:Wait"}
COUNTED = ("Pending", "Pending:Wait", "Pending:Proceed", "InService")
LOCK = threading.RLock()
LISTENERS = []  # callables (backend, group name, instance id, hook name), told of each new launching action


class Action:
    """One lifecycle action: an instance held by one hook."""

    def __init__(self, backend, group, state, hook):
        self.backend = backend
        self.group = group
        self.state = state
        self.hook = hook
        self.token = str(uuid.uuid4())
        self.deadline = CLOCK.now() + CLOCK.seconds(hook.heartbeat_timeout)


def _actions(backend):
    if not hasattr(backend, "bgemu_actions"):
        backend.bgemu_actions = []
    return backend.bgemu_actions


def _hooks(backend, group_name, transition):
    return [
        h
        for h in backend.lifecycle_hooks.values()
        if h.auto_scaling_group_name == group_name and h.lifecycle_transition == transition
    ]


def hold(backend, group, state, transition):
    """Put ``state`` in the wait state of ``transition`` when the group has such hooks; True if held."""
    hooks = _hooks(backend, group.name, transition)
    if not hooks:
        return False
    state.lifecycle_state = WAIT_STATE[transition]
    _actions(backend).extend(Action(backend, group, state, hook) for hook in hooks)
    if transition == LAUNCHING:
        for hook in hooks:
            for listener in LISTENERS:  # must not block: they queue the notification (bgemu.codedeploy)
                listener(backend, group.name, state.instance.id, hook.name)
    return True


def _finish(backend, state, transition, result):
    """Every hook of this instance's transition is done: move it on."""
    group = state.auto_scaling_group
    if transition == LAUNCHING:
        if result == "CONTINUE":
            state.lifecycle_state = "InService"
            backend.update_attached_target_groups(group.name)
        else:
            _remove(backend, group, state)
            group.set_desired_capacity(group.desired_capacity)  # launch a replacement
    else:
        _remove(backend, group, state)


def _remove(backend, group, state):
    group.instance_states = [s for s in group.instance_states if s is not state]
    backend.ec2_backend.terminate_instances([state.instance.id])


def complete(backend, group_name, hook_name, instance_id, token, result):
    with LOCK:
        actions = _actions(backend)
        match = [
            a
            for a in actions
            if a.group.name == group_name
            and a.hook.name == hook_name
            and ((token and a.token == token) or (instance_id and a.state.instance.id == instance_id))
        ]
        if not match:
            what = f"token {token}" if token else f"instance ID {instance_id}"
            raise ValidationError(f"No active Lifecycle Action found with {what}")
        action = match[0]
        actions.remove(action)
        _settle(backend, action, result)


def _settle(backend, action, result):
    state = action.state
    action.state.bgemu_results = getattr(state, "bgemu_results", []) + [result]
    remaining = [a for a in _actions(backend) if a.state is state]
    if remaining:
        return
    transition = action.hook.lifecycle_transition
    final = "ABANDON" if "ABANDON" in state.bgemu_results and transition == LAUNCHING else "CONTINUE"
    state.bgemu_results = []
    _finish(backend, state, transition, final)


def heartbeat(backend, group_name, hook_name, instance_id, token):
    with LOCK:
        for action in _actions(backend):
            if (
                action.group.name == group_name
                and action.hook.name == hook_name
                and ((token and action.token == token) or (instance_id and action.state.instance.id == instance_id))
            ):
                action.deadline = CLOCK.now() + CLOCK.seconds(action.hook.heartbeat_timeout)
                return
        what = f"token {token}" if token else f"instance ID {instance_id}"
        raise ValidationError(f"No active Lifecycle Action found with {what}")


def expire(backends):
    """Apply DefaultResult to every action past its heartbeat timeout (called by the ticker)."""
    with LOCK:
        for backend in backends:
            for action in [a for a in _actions(backend) if a.deadline <= CLOCK.now()]:
                _actions(backend).remove(action)
                _settle(backend, action, action.hook.default_result)


def all_backends():
    for account in models.autoscaling_backends.values():
        yield from account.values()


# -- patches on moto's models and responses -------------------------------------------------------------
_original_replace = models.FakeAutoScalingGroup.replace_autoscaling_group_instances


def replace_autoscaling_group_instances(self, count_needed, propagated_tags):
    before = set(map(id, self.instance_states))
    _original_replace(self, count_needed, propagated_tags)
    with LOCK:
        for state in self.instance_states:
            if id(state) not in before:
                hold(self.autoscaling_backend, self, state, LAUNCHING)


def active_instances(self):
    return [s for s in self.instance_states if s.lifecycle_state in COUNTED]


_original_terminate = models.AutoScalingBackend.terminate_instance


def terminate_instance(self, instance_id, should_decrement):
    state = next(
        (s for g in self.autoscaling_groups.values() for s in g.instance_states if s.instance.id == instance_id), None
    )
    if state is not None and state.lifecycle_state in ("InService", "Pending:Wait"):
        group = state.auto_scaling_group
        with LOCK:
            if hold(self, group, state, TERMINATING):
                if should_decrement:
                    group.desired_capacity -= 1
                return models.TerminateInstanceActivity(state.instance, group.desired_capacity)
    return _original_terminate(self, instance_id, should_decrement)


_original_set_desired = models.FakeAutoScalingGroup.set_desired_capacity


def set_desired_capacity(self, new_capacity):
    """A scale-in holds the instances it removes in Terminating:Wait when the group has terminating hooks."""
    backend = self.autoscaling_backend
    target = self.min_size if new_capacity is None else new_capacity
    surplus = len(self.active_instances()) - (target or 0)
    if surplus > 0 and _hooks(backend, self.name, TERMINATING):
        with LOCK:
            leaving = [
                s for s in self.instance_states if s.lifecycle_state == "InService" and not s.protected_from_scale_in
            ]
            for state in leaving[:surplus]:
                hold(backend, self, state, TERMINATING)
            self.desired_capacity = target
        return
    _original_set_desired(self, new_capacity)


def complete_lifecycle_action(self):
    complete(
        self.autoscaling_backend,
        self._get_param("AutoScalingGroupName"),
        self._get_param("LifecycleHookName"),
        self._get_param("InstanceId"),
        self._get_param("LifecycleActionToken"),
        self._get_param("LifecycleActionResult"),
    )
    return EmptyResult()


def record_lifecycle_action_heartbeat(self):
    heartbeat(
        self.autoscaling_backend,
        self._get_param("AutoScalingGroupName"),
        self._get_param("LifecycleHookName"),
        self._get_param("InstanceId"),
        self._get_param("LifecycleActionToken"),
    )
    return EmptyResult()


def disable_metrics_collection(self):
    """DisableMetricsCollection (not in moto): drop the named metrics, or all of them (amazon.aws.autoscaling_group)."""
    group = self.autoscaling_backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
    named = self._get_param("Metrics")
    group.metrics = [m for m in group.metrics if named and m not in named]
    return EmptyResult()


PATCHES = [
    (models.FakeAutoScalingGroup, "replace_autoscaling_group_instances", replace_autoscaling_group_instances),
    (models.FakeAutoScalingGroup, "active_instances", active_instances),
    (models.FakeAutoScalingGroup, "set_desired_capacity", set_desired_capacity),
    (models.AutoScalingBackend, "terminate_instance", terminate_instance),
    (responses.AutoScalingResponse, "complete_lifecycle_action", complete_lifecycle_action),
    (responses.AutoScalingResponse, "record_lifecycle_action_heartbeat", record_lifecycle_action_heartbeat),
    (responses.AutoScalingResponse, "disable_metrics_collection", disable_metrics_collection),
]
