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
