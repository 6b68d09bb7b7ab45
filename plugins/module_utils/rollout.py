# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The rollout engine: move traffic from a stable pool to a canary pool in gated steps.

A plan is a list of steps:

- ``{"weight": N}``: send N percent of the traffic to the canary pool (the rest to the stable pool),
  then read the router back and verify;
- ``{"pause": S}``: wait S seconds while every gate is evaluated each ``gate_interval``;
  ``{"pause": None}`` stops the run as ``paused`` until it is run again with ``promote``;
- ``{"gate": True}``: wait until every gate passes (or one fails).

Before the first weight above the current one, the pre-switch gates must pass: the canary pool
gets no traffic before it is healthy.  A failing gate aborts: with ``on_failure="rollback"`` all traffic
goes back to the stable pool and that is verified.  Everything runs under one ``timeout``.

The router's own state is the truth: a run first reads the current weights and skips the steps
already reached, so a run killed mid-canary converges when run again.  Clock and sleep are injected.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field

from ansible_collections.bluegreen.aws.plugins.module_utils.gates import FAIL
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import PASS
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import PENDING
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import GateResult

ON_FAILURE = ("rollback", "pause", "fail")


class RolloutError(Exception):
    """Bad plan or router state; the message names the parameter and the fix."""


@dataclass
class Step:
    weight: int | None = None
    pause: float | None = None
    until_promoted: bool = False
    gate: bool = False

    def describe(self):
        if self.weight is not None:
            return f"weight {self.weight}%"
        if self.until_promoted:
            return "pause until promoted"
        if self.pause is not None:
            return f"pause {self.pause:g}s"
        return "gate"


def parse_steps(raw, allow_partial=False):
    """Validate user steps (``[{"weight": 10}, {"pause": 30}, ...]``) into :class:`Step` objects."""
    if not raw:
        raise RolloutError('steps must list at least one step, for example [{"weight": 100}]')
    steps = []
    last = None
    for index, item in enumerate(raw):
        where = f"steps[{index}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise RolloutError(
                f"{where} must be one of {{weight: N}}, {{pause: SECONDS}}, {{pause: null}}, {{gate: true}}"
            )
        ((key, value),) = item.items()
        if key == "weight":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise RolloutError(f"{where}.weight must be an integer percentage from 0 to 100, got {value!r}")
            steps.append(Step(weight=value))
            last = value
        elif key == "pause":
            if value is None:
                steps.append(Step(until_promoted=True))
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise RolloutError(f"{where}.pause must be a number of seconds >= 0, or null to wait for promote")
            else:
                steps.append(Step(pause=float(value)))
        elif key == "gate":
            if value is not True:
                raise RolloutError(f"{where}.gate must be true")
            steps.append(Step(gate=True))
        else:
            raise RolloutError(f"{where} has unknown key {key!r}; use weight, pause or gate")
    if last is None:
        raise RolloutError("steps must contain at least one weight step")
    if last != 100 and not allow_partial:
        raise RolloutError(
            f"steps end at weight {last}%, not 100%: add {{weight: 100}} as the last step, "
            "or set allow_partial=true to stop at a partial weight on purpose"
        )
    return steps


@dataclass
class Outcome:
    status: str  # promoted | paused (for promote) | rolled_back | held (on_failure=pause) | failed
    weights: dict
    timeline: list = field(default_factory=list)
    reason: str = ""
    changed: bool = False


class Rollout:
    """Drive one router through a plan, with gates; see the module docstring."""

    def __init__(
        self,
        router,
        steps,
        gates=(),
        pre_gates=(),
        gate_interval=5.0,
        pre_gate_timeout=120.0,
        timeout=1800.0,
        on_failure="rollback",
        promote=False,
        clock=time.monotonic,
        sleep=time.sleep,
    ):
        if on_failure not in ON_FAILURE:
            raise RolloutError(f"on_failure must be one of {list(ON_FAILURE)}, got {on_failure!r}")
        if gate_interval <= 0 or timeout <= 0:
            raise RolloutError("gate_interval and timeout must be positive numbers of seconds")
        self.router = router
        self.steps = steps
        self.gates = list(gates)
        self.pre_gates = list(pre_gates)
        self.gate_interval = gate_interval
        self.pre_gate_timeout = pre_gate_timeout
        self.timeout = timeout
        self.on_failure = on_failure
        self.promote = promote
        self.clock = clock
        self.sleep = sleep
        self.timeline = []
        self._started = None
        self._changed = False

    # -- timeline -------------------------------------------------------------------------------------
    def _event(self, event, weights=None, reason="", gates=None):
        entry = {"t": round(self.clock() - self._started, 3), "event": event, "weights": dict(weights or {})}
        if reason:
            entry["reason"] = reason
        if gates:
            entry["gates"] = [g.to_dict() for g in gates]
        self.timeline.append(entry)
        return entry

    def _left(self):
        return self._started + self.timeout - self.clock()

    # -- router ---------------------------------------------------------------------------------------
    def _set(self, canary_weight):
        weights = self.router.weights_for(canary_weight)
        self.router.write(weights)
        actual = self.router.read()
        if actual != weights:
            raise RolloutError(f"router did not take the weights: wrote {weights}, read back {actual}")
        self._changed = True
        return actual

    # -- gates ----------------------------------------------------------------------------------------
    def _evaluate(self, gates):
        results = [g.evaluate() for g in gates]
        failed = [r for r in results if r.verdict == FAIL]
        if failed:
            return FAIL, results
        if all(r.verdict == PASS for r in results):
            return PASS, results
        return PENDING, results

    def _watch(self, seconds, weights, until_decided=False, gates=None, label="pause"):
        """Evaluate gates every interval for ``seconds``; returns the failing results, or None.

        With ``until_decided`` it returns as soon as every gate passes, and gates still undecided
        after ``seconds`` (None: no limit but the overall timeout) count as failed.
        """
        gates = self.gates if gates is None else gates
        end = None if seconds is None else self.clock() + seconds
        while True:
            results = []
            if gates:
                verdict, results = self._evaluate(gates)
                if verdict == FAIL:
                    return results
                if until_decided and verdict == PASS:
                    self._event("gates_passed", weights, gates=results)
                    return None
            elif until_decided:
                return None
            if self._left() <= 0:
                return [GateResult("timeout", FAIL, f"timeout of {self.timeout:g}s reached during {label}")]
            if end is not None and self.clock() >= end:
                if not until_decided:
                    return None
                pending = "; ".join(f"{r.name}: {r.reason}" for r in results if r.verdict == PENDING)
                return [GateResult("undecided", FAIL, f"{label} gates undecided after {seconds:g}s ({pending})")]
            wait = min(self.gate_interval, self._left())
            if end is not None:
                wait = min(wait, end - self.clock())
            self.sleep(wait)

    # -- abort ----------------------------------------------------------------------------------------
    def _abort(self, weights, results):
        reason = "; ".join(f"{r.name}: {r.reason}" for r in results if r.verdict == FAIL) or "gate failed"
        self._event("gate_failed", weights, reason, gates=results)
        if self.on_failure == "rollback":
            current = self.router.read()
            if current != self.router.weights_for(0):
                current = self._set(0)
            self._event("rolled_back", current, "all traffic on the stable pool, verified")
            return Outcome("rolled_back", current, self.timeline, reason, self._changed)
        status = "held" if self.on_failure == "pause" else "failed"
        self._event(status, weights, reason)
        return Outcome(status, weights, self.timeline, reason, self._changed)

    # -- run ------------------------------------------------------------------------------------------
    def run(self):
        self._started = self.clock()
        weights = self.router.read()
        current = self.router.canary_weight(weights)
        self._event("start", weights, f"canary at {current}%")
        target_steps = [s.weight for s in self.steps if s.weight is not None]
        final = target_steps[-1]
        if current == final and current == max(target_steps):
            self._event("done", weights, "already at the final weight")
            return Outcome("promoted", weights, self.timeline, "already at the final weight", False)

        # skip what the router shows was already reached (a re-run after a crash converges)
        resume = 0
        for index, step in enumerate(self.steps):
            if step.weight is not None and step.weight <= current:
                resume = index + 1
        if resume:
            self._event("resume", weights, f"steps before step {resume} already reached")

        pre_checked = False
        for index in range(resume, len(self.steps)):
            step = self.steps[index]
            if step.weight is not None:
                if step.weight > current and not pre_checked and self.pre_gates:
                    failing = self._watch(
                        self.pre_gate_timeout, weights, until_decided=True, gates=self.pre_gates, label="pre-switch"
                    )
                    if failing is not None:
                        return self._abort(weights, failing)
                    pre_checked = True
                if self._left() <= 0:
                    return self._abort(weights, [GateResult("timeout", FAIL, f"timeout of {self.timeout:g}s reached")])
                try:
                    weights = self._set(step.weight)
                except Exception as e:  # the router refused or is unreachable: do not leave a half-applied step
                    return self._abort(self.router.read(), [GateResult("router", FAIL, f"{type(e).__name__}: {e}")])
                current = step.weight
                self._event("weight", weights, step.describe())
            elif step.until_promoted:
                if not self.promote:
                    self._event("paused", weights, "waiting for promote")
                    return Outcome("paused", weights, self.timeline, "waiting for promote", self._changed)
                self._event("promoted", weights, "promote given")
            else:
                failing = self._watch(None if step.gate else step.pause, weights, step.gate, label=step.describe())
                if failing is not None:
                    return self._abort(weights, failing)
                if not step.gate:
                    self._event("pause_done", weights, step.describe())
        self._event("done", weights, f"canary at {current}%")
        return Outcome("promoted", weights, self.timeline, f"canary at {current}%", self._changed)
