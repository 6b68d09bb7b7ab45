# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Health gates: one protocol, evaluated repeatedly until they pass or fail.

A gate is any object with a ``name`` and an ``evaluate()`` method returning a
:class:`GateResult` whose verdict is ``pass``, ``fail`` or ``pending`` (not decided yet:
keep waiting).  :func:`wait_for_gate` drives a gate to a decision with an injected clock,
so callers (the lifecycle completer, the rollout engine) never write their own loops.
"""

from __future__ import annotations

import re
import time
import urllib.error
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field

from ansible.module_utils.urls import open_url

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


def wait_for_gate(gate, timeout, interval, clock=time.monotonic, sleep=time.sleep):
    """Evaluate ``gate`` every ``interval`` seconds until it passes or fails.

    A gate still pending after ``timeout`` seconds fails, with the last answer in its reason.
    """
    deadline = clock() + timeout
    while True:
        result = gate.evaluate()
        if result.verdict != PENDING:
            return result
        if clock() + interval > deadline:
            return GateResult(gate.name, FAIL, f"undecided after {timeout}s: {result.reason}", result.details)
        sleep(interval)


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
