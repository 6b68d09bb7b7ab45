"""ELBv2 target health decided by real HTTP checks of each instance.

A target is checked at its instance's own address (bgemu.instances: ``PrivateIpAddress``) and the target's
port; a local endpoint (``host:port`` on loopback) overrides that: the instance's tag ``bgemu:endpoint`` (set
it in the launch template's tag specifications) or the admin call ``POST /_bgemu/endpoints``.  For every
target the emulator runs the target group's health check (path, port, interval, thresholds, matcher),
so a target goes ``initial`` → ``healthy`` / ``unhealthy`` as a real one would, and a deregistered target
is ``draining`` for the group's deregistration delay, also in a whole-group DescribeTargetHealth (moto drops
it from that answer).  ``POST /_bgemu/health`` forces a target's answer.  A target where nothing listens
is checked like any other and nothing answers: ``unhealthy`` (``Target.FailedHealthChecks``), never moto's
``healthy``.  The unhealthy reasons are AWS's: ``Target.ResponseCodeMismatch`` (an answer outside the
matcher), ``Target.Timeout`` (no answer within the check's timeout), ``Target.FailedHealthChecks`` (the
connection failed).  Every wait follows the time scale.
"""

import threading
import urllib.error
import urllib.request

from moto.elbv2 import models

from bgemu import instances
from bgemu.clock import CLOCK

LOCK = threading.RLock()
ENDPOINTS = {}  # instance id -> "127.0.0.1:port" (admin call)
FORCED = {}  # instance id -> True (healthy) / False (unhealthy)
STATES = {}  # (target group arn, target id) -> Check
WATCHERS = []  # called with no arguments after a target's state or registration changed (the ALB data plane)


def notify():
    for watcher in list(WATCHERS):
        watcher()


class Check:
    def __init__(self, group, target_id):
        self.group = group
        self.target_id = target_id
        self.state = "initial"
        self.reason = "Elb.RegistrationInProgress"
        self.description = "Target registration is in progress"
        self.successes = 0
        self.failures = 0
        self.next_check = CLOCK.now()
        self.draining_until = None


def endpoint(group, target_id):
    """Where a target answers (health checks and the data plane): the admin mapping or the ``bgemu:endpoint`` tag,
    else its instance's own address (bgemu.instances) and the target's port; None when nothing can answer."""
    if target_id in ENDPOINTS:
        return ENDPOINTS[target_id]
    instance = group.ec2_backend.get_instance_by_id(target_id) if target_id.startswith("i-") else None
    for tag in (instance.get_tags() if instance else []):
        if tag["key"] == "bgemu:endpoint":
            return tag["value"]
    if instances.address(target_id):
        target = group.targets.get(target_id) or group.deregistered_targets.get(target_id)
        return f"{instances.address(target_id)}:{(target or {}).get('Port') or group.port}"
    return None


def _matches(status, matcher):
    for part in str(matcher.get("HttpCode", "200")).split(","):
        low, unused_dash, high = part.partition("-")
        if int(low) <= status <= int(high or low):
            return True
    return False


def probe(check):
    """One health check: (passed, AWS's reason code and description when it did not)."""
    if check.target_id in FORCED:
        return FORCED[check.target_id], "Target.ResponseCodeMismatch", "Health checks failed (forced by the emulator)"
    address = endpoint(check.group, check.target_id)
    if address is None:  # no process answers for this instance: the connection fails
        return False, "Target.FailedHealthChecks", "Health checks failed"
    host, unused_colon, port = address.rpartition(":")
    if check.group.health_check_port not in (None, "traffic-port"):
        port = check.group.health_check_port
    url = f"http://{host}:{port}{check.group.health_check_path or '/'}"
    timeout = max(0.2, CLOCK.seconds(int(check.group.health_check_timeout_seconds or 5)))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as e:
        status = e.code
    except TimeoutError:
        return False, "Target.Timeout", "Request timed out"
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            return False, "Target.Timeout", "Request timed out"
        return False, "Target.FailedHealthChecks", "Health checks failed"
    except OSError:
        return False, "Target.FailedHealthChecks", "Health checks failed"
    ok = _matches(status, check.group.matcher or {"HttpCode": "200"})
    return ok, "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{status}]"


def tick():
    """Run the health checks that are due (called by the emulator's ticker)."""
    with LOCK:
        due = [c for c in STATES.values() if c.draining_until is None and c.next_check <= CLOCK.now()]
    changed = False
    for check in due:
        ok, reason, description = probe(check)
        with LOCK:
            if check.draining_until is not None:  # deregistered while it was being probed
                continue
            before = check.state
            check.next_check = CLOCK.now() + CLOCK.seconds(check.group.health_check_interval_seconds)
            if ok:
                check.successes, check.failures = check.successes + 1, 0
                if check.state != "healthy" and check.successes >= int(check.group.healthy_threshold_count):
                    check.state, check.reason, check.description = "healthy", None, None
            else:
                check.failures, check.successes = check.failures + 1, 0
                if check.state != "unhealthy" and check.failures >= int(check.group.unhealthy_threshold_count):
                    check.state = "unhealthy"
                if check.state == "unhealthy":
                    check.reason, check.description = reason, description
            changed = changed or check.state != before
    with LOCK:
        for key, check in list(STATES.items()):
            if check.draining_until is not None and check.draining_until <= CLOCK.now():
                del STATES[key]
                changed = True
    if changed:
        notify()


def reset():
    with LOCK:
        ENDPOINTS.clear()
        FORCED.clear()
        STATES.clear()


# -- patches -----------------------------------------------------------------------------------------------
_original_register = models.FakeTargetGroup.register
_original_deregister = models.FakeTargetGroup.deregister
_original_health_for = models.FakeTargetGroup.health_for
_original_describe_target_health = models.ELBv2Backend.describe_target_health


def register(self, targets):
    _original_register(self, targets)
    with LOCK:
        for target in targets:
            key = (self.arn, target["Id"])
            if key not in STATES or STATES[key].draining_until is not None:
                STATES[key] = Check(self, target["Id"])
    notify()


def deregister(self, targets):
    _original_deregister(self, targets)
    delay = int(self.attributes.get("deregistration_delay.timeout_seconds", 300))
    with LOCK:
        for target in targets:
            check = STATES.get((self.arn, target["Id"]))
            if check is not None:
                check.state, check.reason = "draining", "Target.DeregistrationInProgress"
                check.description = "Target deregistration is in progress"
                check.draining_until = CLOCK.now() + CLOCK.seconds(delay)
    notify()


def health_for(self, target, ec2_backend):
    """The check's state for every target it knows: registered (endpoint or not) or still draining."""
    with LOCK:
        check = STATES.get((self.arn, target["Id"]))
    answer = _original_health_for(self, target, ec2_backend)
    if check is None or (target["Id"] not in self.targets and check.draining_until is None):
        return answer
    answer.status, answer.reason = check.state, check.reason
    answer.description = check.description
    return answer


def describe_target_health(self, target_group_arn, targets):
    """Without a Targets filter AWS also lists the targets still draining; moto lists only registered ones."""
    answer = _original_describe_target_health(self, target_group_arn, targets)
    if targets:
        return answer
    group = self.target_groups[target_group_arn]
    with LOCK:
        draining = [
            c.target_id
            for (arn, target_id), c in STATES.items()
            if arn == target_group_arn and c.draining_until is not None and target_id not in group.targets
        ]
    for target_id in draining:
        target = group.deregistered_targets.get(target_id) or {"Id": target_id}
        answer.append(group.health_for(target, self.ec2_backend))
    return answer


PATCHES = [
    (models.FakeTargetGroup, "register", register),
    (models.FakeTargetGroup, "deregister", deregister),
    (models.FakeTargetGroup, "health_for", health_for),
    (models.ELBv2Backend, "describe_target_health", describe_target_health),
]
