# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Health gates: one protocol, one evaluation loop, built from one option spec.

A gate is any object with a ``name`` and an ``evaluate()`` method returning a :class:`GateResult` whose
verdict is ``pass``, ``fail`` or ``pending`` (not decided yet: keep waiting).  :func:`watch` is the only loop
that evaluates gates (the rollout engine, the CodeDeploy tracker and the lifecycle completer all call it), and
it keeps the rules in one place (Argo Rollouts: inconclusive analysis never promotes):

- a gate that raises is a ``fail`` carrying the error;
- a gate still ``pending`` when its window ends fails, or, when the caller chose ``on_undecided="hold"``,
  the window ends ``held``; never a pass.

:data:`GATE_OPTIONS` is the argument spec of one gate and :func:`build_gates` turns module parameters into gates.
"""

from __future__ import annotations

import re
import time
import urllib.error
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field

from ansible.module_utils.urls import open_url

from ansible_collections.bluegreen.aws.plugins.module_utils.elbv2 import TargetGroupNotFound
from ansible_collections.bluegreen.aws.plugins.module_utils.elbv2 import describe_target_group


class GateError(ValueError):
    """Bad gate options; the message names the parameter and the fix."""


PASS = "pass"
FAIL = "fail"
PENDING = "pending"


@dataclass
class GateResult:
    name: str
    verdict: str
    reason: str = ""
    details: dict = field(default_factory=dict)

    def to_dict(self):
        return asdict(self)


@dataclass
class ProbeResult:
    url: str
    ok: bool
    status: int | None = None
    latency_ms: float = 0.0
    error: str | None = None

    def to_dict(self):
        return asdict(self)


def http_probe(url, expected_status=(200,), body_pattern=None, timeout=5.0, validate_certs=True, clock=time.monotonic):
    """One HTTP GET; ``ok`` when the status is expected and the body matches ``body_pattern``."""
    started = clock()
    status = None
    body = b""
    try:
        with open_url(url, timeout=timeout, follow_redirects="safe", validate_certs=validate_certs) as response:
            status = response.status
            body = response.read(65536)
    except urllib.error.HTTPError as e:
        status = e.code
        body = e.read(65536) if e.fp else b""
    except Exception as e:  # connection refused, timeout, DNS, TLS: all mean "not healthy"
        return ProbeResult(url=url, ok=False, latency_ms=_ms(clock() - started), error=f"{type(e).__name__}: {e}")
    latency = _ms(clock() - started)
    if status not in expected_status:
        return ProbeResult(url, False, status, latency, f"status {status} not in {list(expected_status)}")
    if body_pattern and not re.search(body_pattern, body.decode("utf-8", "replace")):
        return ProbeResult(url, False, status, latency, f"body does not match {body_pattern!r}")
    return ProbeResult(url, True, status, latency)


def _ms(seconds):
    return round(seconds * 1000.0, 1)


class HttpGate:
    """HTTP probe of one or more URLs with consecutive success/failure thresholds.

    Every ``evaluate()`` probes each URL once.  The gate passes when every URL has
    ``success_threshold`` consecutive good answers, and fails as soon as one URL has
    ``failure_threshold`` consecutive bad ones.  A good answer slower than
    ``latency_ceiling_ms`` counts as bad.
    """

    def __init__(
        self,
        urls,
        expected_status=(200,),
        body_pattern=None,
        timeout=5.0,
        success_threshold=1,
        failure_threshold=3,
        latency_ceiling_ms=None,
        name="http",
        probe=http_probe,
    ):
        if not urls:
            raise ValueError("HttpGate needs at least one URL")
        if success_threshold < 1 or failure_threshold < 1:
            raise ValueError("success_threshold and failure_threshold must be at least 1")
        self.name = name
        self.urls = list(urls)
        self.expected_status = tuple(expected_status)
        self.body_pattern = body_pattern
        self.timeout = timeout
        self.success_threshold = success_threshold
        self.failure_threshold = failure_threshold
        self.latency_ceiling_ms = latency_ceiling_ms
        self._probe = probe
        self._successes = {url: 0 for url in self.urls}
        self._failures = {url: 0 for url in self.urls}

    def evaluate(self):
        last = {}
        for url in self.urls:
            result = self._probe(url, self.expected_status, self.body_pattern, self.timeout)
            if result.ok and self.latency_ceiling_ms is not None and result.latency_ms > self.latency_ceiling_ms:
                result.ok = False
                result.error = f"latency {result.latency_ms} ms above ceiling {self.latency_ceiling_ms} ms"
            if result.ok:
                self._successes[url] += 1
                self._failures[url] = 0
            else:
                self._failures[url] += 1
                self._successes[url] = 0
            last[url] = result.to_dict()
        details = {"probes": last}
        failing = [url for url in self.urls if self._failures[url] >= self.failure_threshold]
        if failing:
            reasons = "; ".join(f"{url}: {last[url]['error']}" for url in failing)
            return GateResult(self.name, FAIL, f"{len(failing)} URL(s) failed: {reasons}", details)
        if all(self._successes[url] >= self.success_threshold for url in self.urls):
            return GateResult(self.name, PASS, f"{len(self.urls)} URL(s) healthy", details)
        return GateResult(self.name, PENDING, "waiting for consecutive successes", details)


class TargetHealthGate:
    """Healthy targets of an ELBv2 target group: at least ``min_healthy`` targets and ``min_healthy_percent``.

    One ``DescribeTargetHealth`` call per evaluation, whatever the number of targets.  Below the minimum
    the gate is pending; ``failure_threshold`` consecutive evaluations below it fail the gate.
    Every state is reported (initial, healthy, unhealthy, unused, draining, unavailable).
    """

    def __init__(
        self, client, target_group_arn, min_healthy=1, min_healthy_percent=100, failure_threshold=3, name=None
    ):
        if min_healthy < 0 or not 0 <= min_healthy_percent <= 100 or failure_threshold < 1:
            raise ValueError("min_healthy >= 0, min_healthy_percent 0-100 and failure_threshold >= 1 are required")
        self.client = client
        self.target_group_arn = target_group_arn
        self.min_healthy = min_healthy
        self.min_healthy_percent = min_healthy_percent
        self.failure_threshold = failure_threshold
        self.name = (
            name
            or f"target-health:{target_group_arn.rsplit('/', 2)[-2] if '/' in target_group_arn else target_group_arn}"
        )
        self._failures = 0

    def evaluate(self):
        answer = self.client.describe_target_health(TargetGroupArn=self.target_group_arn, aws_retry=True)
        states = {}
        for target in answer["TargetHealthDescriptions"]:
            state = target["TargetHealth"]["State"]
            states[state] = states.get(state, 0) + 1
        total = sum(states.values())
        healthy = states.get("healthy", 0)
        percent = 100.0 * healthy / total if total else 0.0
        details = {"states": states, "healthy": healthy, "total": total, "healthy_percent": round(percent, 1)}
        if total and healthy >= self.min_healthy and percent >= self.min_healthy_percent:
            self._failures = 0
            return GateResult(self.name, PASS, f"{healthy}/{total} targets healthy", details)
        self._failures += 1
        reason = (
            f"{healthy}/{total} targets healthy, need {self.min_healthy} and {self.min_healthy_percent}% ({states})"
        )
        if self._failures >= self.failure_threshold:
            return GateResult(self.name, FAIL, reason, details)
        return GateResult(self.name, PENDING, reason, details)


class AlarmGate:
    """CloudWatch alarms: any in ALARM fails; INSUFFICIENT_DATA counts as ``insufficient_data`` says."""

    def __init__(self, client, alarm_names, insufficient_data=PENDING, name="alarms"):
        if not alarm_names or len(alarm_names) > 100:
            raise ValueError("alarm_names must list between 1 and 100 alarms")
        if insufficient_data not in (PASS, PENDING, FAIL):
            raise ValueError(f"insufficient_data must be one of {PASS}, {PENDING}, {FAIL}")
        self.client = client
        self.alarm_names = list(alarm_names)
        self.insufficient_data = insufficient_data
        self.name = name

    def evaluate(self):
        states = {}
        answer = self.client.describe_alarms(
            AlarmNames=self.alarm_names, AlarmTypes=["MetricAlarm", "CompositeAlarm"], MaxRecords=100, aws_retry=True
        )
        for alarm in answer.get("MetricAlarms", []) + answer.get("CompositeAlarms", []):
            states[alarm["AlarmName"]] = alarm["StateValue"]
        missing = [n for n in self.alarm_names if n not in states]
        if missing:
            return GateResult(self.name, FAIL, f"alarms not found: {missing}", {"states": states})
        firing = sorted(n for n, v in states.items() if v == "ALARM")
        if firing:
            return GateResult(self.name, FAIL, f"in ALARM: {', '.join(firing)}", {"states": states})
        unknown = sorted(n for n, v in states.items() if v == "INSUFFICIENT_DATA")
        if unknown and self.insufficient_data != PASS:
            return GateResult(
                self.name, self.insufficient_data, f"INSUFFICIENT_DATA: {', '.join(unknown)}", {"states": states}
            )
        return GateResult(self.name, PASS, f"{len(states)} alarm(s) OK", {"states": states})


# -- the one evaluation loop ------------------------------------------------------------------------------------------
HELD = "held"  # a window's decision (not a gate verdict): undecided gates with on_undecided=hold
ON_UNDECIDED = ("fail", "hold")


@dataclass
class Decision:
    """What a window of gate evaluations decided: ``pass``, ``fail`` or ``held``, with the last results."""

    verdict: str
    results: list
    reason: str = ""
    aborted: bool = False  # an operator's abort mark, not a gate: it rolls back whatever on_failure says

    @property
    def passed(self):
        return self.verdict == PASS


def evaluate_gates(gates):
    """Evaluate every gate once; returns (verdict, results).

    A gate that raises (an AWS error, throttling past its retries, a bug) is a ``fail`` carrying the error:
    a gate that cannot tell is never a pass.  One fail fails; all pass passes; anything else is pending.
    """
    results = []
    for gate in gates:
        try:
            result = gate.evaluate()
        except Exception as e:  # any error of a gate's own source is a failed proof of health
            result = GateResult(getattr(gate, "name", "gate"), FAIL, f"gate error: {type(e).__name__}: {e}")
        results.append(result)
    if any(r.verdict == FAIL for r in results):
        return FAIL, results
    if all(r.verdict == PASS for r in results):
        return PASS, results
    return PENDING, results


def summary(results, verdicts=(FAIL, PENDING)):
    """``name: reason; ...`` of the results with one of ``verdicts``."""
    return "; ".join(f"{r.name}: {r.reason}" for r in results if r.verdict in verdicts)


def watch(
    gates,
    seconds,
    interval,
    until_pass=False,
    on_undecided="fail",
    deadline=None,
    label="gates",
    clock=time.monotonic,
    sleep=time.sleep,
    record=None,
    stop=None,
    abort=None,
):
    """Evaluate ``gates`` every ``interval`` seconds over a window; the one gate loop of the collection.

    - ``until_pass=True`` (a pre-switch check, a ready wait): returns ``pass`` as soon as every gate passes.
    - ``until_pass=False`` (a pause, a bake): watches the whole window; passes only if the last evaluation passed.
    - Any gate failing (or raising) fails at once.
    - Gates still pending when the window ends (after ``seconds``; ``None`` means only ``deadline`` ends it) fail,
      or with ``on_undecided="hold"`` the decision is ``held``. An undecided window is never a pass.
    - ``deadline`` (a clock value: the caller's overall timeout) ends the window as a failure, whatever the gates say.
    - ``stop()`` (optional) is asked before each evaluation; a string it returns ends the window early, as the end
      of the window (a bake whose deployment already finished).
    - ``record(results)`` (optional) is called after each evaluation, for timelines.
    - ``abort()`` (optional) is asked before each evaluation; a string it returns (an operator's abort mark) fails
      the window at once, whatever the gates say, so an abort is seen within one interval.
    """
    if on_undecided not in ON_UNDECIDED:
        raise ValueError(f"on_undecided must be one of {list(ON_UNDECIDED)}, got {on_undecided!r}")
    if interval <= 0:
        raise ValueError("the gate interval must be a positive number of seconds")
    end = None if seconds is None else clock() + seconds
    if end is None and deadline is None:
        raise ValueError("a gate window needs an end: seconds, a deadline, or both")
    if until_pass and not gates:
        return Decision(PASS, [], f"{label}: no gates")
    verdict, results = (PASS, []) if not gates else (PENDING, [])
    while True:
        aborted = abort() if abort else None
        if aborted:
            marked = GateResult("abort", FAIL, aborted)
            return Decision(FAIL, results + [marked], f"aborted: {aborted}", aborted=True)
        ended = stop() if stop else None
        if gates and not ended:
            verdict, results = evaluate_gates(gates)
            if record:
                record(results)
            if verdict == FAIL:
                return Decision(FAIL, results, summary(results, (FAIL,)))
            if until_pass and verdict == PASS:
                return Decision(PASS, results, f"{label}: every gate passed")
        now = clock()
        if not ended and deadline is not None and now >= deadline:
            timed_out = GateResult("timeout", FAIL, f"overall timeout reached during {label}")
            return Decision(FAIL, results + [timed_out], timed_out.reason)
        if ended or (end is not None and now >= end):
            if verdict == PASS:
                return Decision(PASS, results, f"{label}: every gate passed" + (f" ({ended})" if ended else ""))
            waited = f"{seconds:g}s" if seconds is not None else "the timeout"
            reason = f"{label}: gates undecided after {waited} ({summary(results)})"
            if on_undecided == "hold":
                return Decision(HELD, results, reason)
            return Decision(FAIL, results + [GateResult("undecided", FAIL, reason)], reason)
        limits = [t - now for t in (end, deadline) if t is not None]
        sleep(max(0.0, min([interval] + limits)))


# -- gates from module parameters ----------------------------------------------------------------------------------
GATE_OPTIONS = dict(
    type=dict(type="str", choices=["http", "target_health", "cloudwatch_alarm"], default="http"),
    name=dict(type="str"),
    urls=dict(type="list", elements="str"),
    expected_status=dict(type="list", elements="int", default=[200]),
    body_pattern=dict(type="str"),
    timeout=dict(type="float", default=5.0),
    success_threshold=dict(type="int", default=1),
    failure_threshold=dict(type="int", default=3),
    latency_ceiling_ms=dict(type="float"),
    target_group=dict(type="str"),
    min_healthy=dict(type="int", default=1),
    min_healthy_percent=dict(type="int", default=100),
    alarm_names=dict(type="list", elements="str"),
    insufficient_data=dict(type="str", choices=["pass", "pending", "fail"], default="pending"),
)
GATE_NEEDS = {"http": "urls", "target_health": "target_group", "cloudwatch_alarm": "alarm_names"}


URL_FIELDS = ("instance_id", "private_ip", "public_ip", "private_dns", "availability_zone")


class InstanceHttpGate:
    """An HTTP gate over URL templates (``http://{private_ip}:8080/health``), one probe per instance.

    It is pending-free until :meth:`bind` gives it the instances (``{instance_id: {field: value}}``), then it is an
    :class:`HttpGate` over every expanded URL: all instances must pass. Bound to no instance, it fails: a gate with
    nothing to judge is not a pass.
    """

    def __init__(self, templates, name, **options):
        self.templates = list(templates)
        self.name = name
        self.options = options
        self._gate = None
        self._instances = None

    def bind(self, addresses):
        self._instances = sorted(addresses)
        urls = [t.format(**addresses[i]) for i in self._instances for t in self.templates]
        self._gate = HttpGate(urls, name=self.name, **self.options) if urls else None

    def evaluate(self):
        if self._instances is None:
            return GateResult(self.name, FAIL, "not bound to any instance yet")
        if self._gate is None:
            return GateResult(self.name, FAIL, "no instance to probe: the deployment has no green instance")
        result = self._gate.evaluate()
        result.details["instances"] = self._instances
        return result


def _check_templates(urls, where, templates):
    """URL templates name only URL_FIELDS, and only where the caller binds instances."""
    placeholders = {field: "x" for field in URL_FIELDS}
    has = [url for url in urls if "{" in url]
    if has and not templates:
        raise GateError(
            f"{where}.urls: {has[0]} has a placeholder; instance placeholders ({', '.join(URL_FIELDS)}) are for "
            "codedeploy_deployment's ready_gates and bake_gates, which bind them to the green instances"
        )
    for url in has:
        try:
            url.format(**placeholders)
        except (KeyError, IndexError, ValueError) as e:
            raise GateError(f"{where}.urls: {url} uses an unknown placeholder {e}; use {', '.join(URL_FIELDS)}") from e
    return bool(has)


def build_gates(raw, aws_client=None, option="gates", templates=False):
    """Gates from module parameters (``option`` names them in errors); ``aws_client(service)`` gives retrying
    clients for the AWS gates. With ``templates``, http URLs may hold instance placeholders (InstanceHttpGate).
    Bad options raise GateError before any gate is evaluated."""
    gates = []
    for index, spec in enumerate(raw or []):
        where = f"{option}[{index}]"
        kind = spec["type"]
        name = spec["name"] or f"{kind}[{index}]"
        needed = GATE_NEEDS[kind]
        if not spec[needed]:
            raise GateError(f"{where}.{needed} is required for a {kind} gate")
        if kind != "http" and aws_client is None:
            raise GateError(f"{where}: a {kind} gate needs boto3 and AWS credentials")
        try:
            if kind == "http":
                http = dict(
                    expected_status=tuple(spec["expected_status"]),
                    body_pattern=spec["body_pattern"],
                    timeout=spec["timeout"],
                    success_threshold=spec["success_threshold"],
                    failure_threshold=spec["failure_threshold"],
                    latency_ceiling_ms=spec["latency_ceiling_ms"],
                )
                if _check_templates(spec["urls"], where, templates):
                    HttpGate(["x"], **http)  # the options' own checks, now rather than at Ready
                    gate = InstanceHttpGate(spec["urls"], name, **http)
                else:
                    gate = HttpGate(spec["urls"], name=name, **http)
            elif kind == "target_health":
                elbv2 = aws_client("elbv2")
                group = describe_target_group(elbv2, spec["target_group"], f"{where}.target_group")
                gate = TargetHealthGate(
                    elbv2,
                    group["TargetGroupArn"],
                    min_healthy=spec["min_healthy"],
                    min_healthy_percent=spec["min_healthy_percent"],
                    failure_threshold=spec["failure_threshold"],
                    name=name,
                )
            else:
                gate = AlarmGate(aws_client("cloudwatch"), spec["alarm_names"], spec["insufficient_data"], name=name)
        except TargetGroupNotFound as e:
            raise GateError(str(e)) from e
        except ValueError as e:
            raise GateError(f"{where}: {e}") from e
        gates.append(gate)
    return gates
