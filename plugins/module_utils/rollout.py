# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The rollout engine: move traffic from a stable pool to a canary pool in gated steps.

A plan is a list of steps:

- ``{"weight": N}``: send N percent of the traffic to the canary pool (the rest to the stable pool),
  then read the router back and verify;
- ``{"pause": S}``: wait S seconds while every gate is evaluated each ``gate_interval``;
  ``{"pause": None}`` stops the run as ``paused`` until it is run again with ``promote``;
- ``{"gate": True}``: wait until every gate passes (or one fails).

An ``abort()`` callable (an operator's abort mark, read by the caller) is asked before every step and every gate
evaluation: a reason it returns aborts the run like a failed gate, within one gate interval.

Before the first weight above the current one, the pre-switch gates must pass: the canary pool
gets no traffic before it is healthy.  Gates are evaluated by :func:`gates.watch`, the collection's one gate
loop: a gate that raises fails, and gates still undecided when a pause (or the pre-switch check) ends fail too,
unless ``on_undecided="hold"`` (the run then ends ``held``, traffic where it is).  A failure of any kind (gate,
gate error, router error, timeout) aborts: with ``on_failure="rollback"`` all traffic goes back to the stable pool
and that is verified by reading the router back; when even that fails, the run ends ``failed`` with a reason that
says where the traffic is and how to fix it.  Everything runs under one ``timeout``.

The router's own state is the truth: a run first reads the current weights and skips the steps
already reached, so a run killed mid-canary converges when run again.  Clock and sleep are injected.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field

from ansible_collections.bluegreen.aws.plugins.module_utils.gates import FAIL
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import HELD
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import ON_UNDECIDED
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import Decision
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import GateResult
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import watch

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
    status: str  # promoted | paused (for promote) | rolled_back | held (on_failure=pause, on_undecided=hold) | failed
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
        on_undecided="fail",
        promote=False,
        abort=None,
        clock=time.monotonic,
        sleep=time.sleep,
        progress=None,
    ):
        if on_failure not in ON_FAILURE:
            raise RolloutError(f"on_failure must be one of {list(ON_FAILURE)}, got {on_failure!r}")
        if on_undecided not in ON_UNDECIDED:
            raise RolloutError(f"on_undecided must be one of {list(ON_UNDECIDED)}, got {on_undecided!r}")
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
        self.on_undecided = on_undecided
        self.promote = promote
        self.abort = abort
        self.clock = clock
        self.sleep = sleep
        self.progress = progress  # progress(entry): every timeline event and gate evaluation as it happens
        self.timeline = []
        self._started = None
        self._changed = False
        self._written = None

    # -- timeline -------------------------------------------------------------------------------------
    def _event(self, event, weights=None, reason="", gates=None):
        entry = {"t": round(self.clock() - self._started, 3), "event": event, "weights": dict(weights or {})}
        if reason:
            entry["reason"] = reason
        if gates:
            entry["gates"] = [g.to_dict() for g in gates]
        self.timeline.append(entry)
        if self.progress:
            self.progress(dict(entry))
        return entry

    # -- router ---------------------------------------------------------------------------------------
    def _set(self, canary_weight):
        weights = self.router.weights_for(canary_weight)
        self._written = weights
        self.router.write(weights)
        actual = self.router.read()
        if actual != weights:
            raise RolloutError(f"router did not take the weights: wrote {weights}, read back {actual}")
        self._changed = True
        return actual

    # -- gates ----------------------------------------------------------------------------------------
    def _watch(self, gates, seconds, weights, until_pass, label):
        """One gate window through the gate engine, under the overall timeout; each evaluation goes to ``progress``
        (not to the timeline, which keeps the decisions)."""

        def record(results):
            entry = {"t": round(self.clock() - self._started, 3), "event": "gates", "label": label}
            entry.update(weights=dict(weights or {}), gates=[r.to_dict() for r in results])
            self.progress(entry)

        return watch(
            gates,
            seconds,
            self.gate_interval,
            until_pass=until_pass,
            on_undecided=self.on_undecided,
            deadline=self._started + self.timeout,
            label=label,
            clock=self.clock,
            sleep=self.sleep,
            abort=self.abort,
            record=record if self.progress else None,
        )

    # -- abort ----------------------------------------------------------------------------------------
    def _abort(self, weights, decision):
        """End the run after a failed or held window; every path ends on the stable pool or says where traffic is."""
        if decision.verdict == HELD:
            self._event("held", weights, decision.reason, gates=decision.results)
            reason = f"{decision.reason}; traffic left at {weights} (on_undecided=hold): run again to go on"
            return Outcome("held", weights, self.timeline, reason, self._changed)
        reason = decision.reason or "gate failed"
        self._event("gate_failed", weights, reason, gates=decision.results)
        if self.on_failure != "rollback" and not decision.aborted:
            status = "held" if self.on_failure == "pause" else "failed"
            self._event(status, weights, reason)
            return Outcome(status, weights, self.timeline, reason, self._changed)
        stable = self.router.weights_for(0)
        try:
            current = self.router.read()
            if current != stable:
                current = self._set(0)
        except Exception as e:  # the rollback itself failed: say where the traffic is and how to fix it
            return self._rollback_failed(weights, reason, e)
        self._event("rolled_back", current, "all traffic on the stable pool, verified")
        return Outcome("rolled_back", current, self.timeline, reason, self._changed)

    def _rollback_failed(self, weights, reason, error):
        try:
            where = f"the router now reads {self.router.read()}"
        except Exception as e:
            where = (
                f"the router cannot be read ({type(e).__name__}: {e}); last weights read {weights}, "
                f"last weights written {self._written}"
            )
        message = (
            f"{reason}; ROLLBACK FAILED ({type(error).__name__}: {error}): {where}. "
            f"Traffic may still reach the canary pool {self.router.canary}. Fix the router, then run again with "
            f"steps [{{weight: 0}}] (allow_partial: true) or swap stable and canary with steps [{{weight: 100}}] "
            f"to put all traffic on {self.router.stable}"
        )
        self._event("rollback_failed", weights, message)
        return Outcome("failed", weights, self.timeline, message, True)

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

        state = {"weights": weights, "current": current, "pre_checked": False}
        try:
            for index in range(resume, len(self.steps)):
                decision = self._step(self.steps[index], state)
                if isinstance(decision, Outcome):
                    return decision
                if decision is not None and not decision.passed:
                    return self._abort(state["weights"], decision)
        except Exception as e:  # a router or engine error mid-run: never leave a half-applied step
            failure = GateResult("router", FAIL, f"{type(e).__name__}: {e}")
            return self._abort(state["weights"], Decision(FAIL, [failure], f"router: {failure.reason}"))
        self._event("done", state["weights"], f"canary at {state['current']}%")
        return Outcome("promoted", state["weights"], self.timeline, f"canary at {state['current']}%", self._changed)

    def _step(self, step, state):
        """Run one step; returns a gate Decision, an Outcome (paused for promote), or None."""
        aborted = self.abort() if self.abort else None
        if aborted:
            return Decision(FAIL, [GateResult("abort", FAIL, aborted)], f"aborted: {aborted}", aborted=True)
        if step.weight is not None:
            if step.weight > state["current"] and not state["pre_checked"] and self.pre_gates:
                decision = self._watch(self.pre_gates, self.pre_gate_timeout, state["weights"], True, "pre-switch")
                if not decision.passed:
                    return decision
                self._event("gates_passed", state["weights"], gates=decision.results)
                state["pre_checked"] = True
            if self.clock() >= self._started + self.timeout:
                reason = f"timeout of {self.timeout:g}s reached before {step.describe()}"
                return Decision(FAIL, [GateResult("timeout", FAIL, reason)], reason)
            state["weights"] = self._set(step.weight)
            state["current"] = step.weight
            self._event("weight", state["weights"], step.describe())
            return None
        if step.until_promoted:
            if not self.promote:
                self._event("paused", state["weights"], "waiting for promote")
                return Outcome("paused", state["weights"], self.timeline, "waiting for promote", self._changed)
            self._event("promoted", state["weights"], "promote given")
            return None
        decision = self._watch(
            self.gates, None if step.gate else step.pause, state["weights"], step.gate, step.describe()
        )
        if decision.passed:
            self._event("gates_passed" if step.gate else "pause_done", state["weights"], step.describe())
        return decision
