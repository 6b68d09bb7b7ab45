"""The rollout engine with an in-memory router and an injected clock: runs in milliseconds."""

import pytest

from ansible_collections.bluegreen.aws.plugins.module_utils.gates import FAIL
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import PASS
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import PENDING
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import GateResult
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import Rollout
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import RolloutError
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import parse_steps
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import Router
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import RouterError


class MemoryRouter(Router):
    def __init__(self, canary=0, lie=False):
        super().__init__("blue", "green")
        self.state = self.weights_for(canary)
        self.writes = []
        self.lie = lie

    def read(self):
        return dict(self.state)

    def write(self, weights):
        self.writes.append(dict(weights))
        if not self.lie:
            self.state = dict(weights)


class Gate:
    """Verdicts scripted by time: [(from_t, verdict), ...]."""

    def __init__(self, clock, script, name="gate"):
        self.clock = clock
        self.script = script
        self.name = name
        self.calls = []

    def evaluate(self):
        self.calls.append(self.clock.now)
        verdict = [v for t, v in self.script if self.clock.now >= t][-1]
        return GateResult(self.name, verdict, f"{verdict} at {self.clock.now:g}")


CANARY = [{"weight": 10}, {"pause": 30}, {"weight": 50}, {"pause": 30}, {"weight": 90}, {"pause": 30}, {"weight": 100}]


def rollout(router, clock, steps=None, **kwargs):
    kwargs.setdefault("gate_interval", 5)
    return Rollout(router, parse_steps(steps or CANARY), clock=clock, sleep=clock.sleep, **kwargs)


def test_healthy_canary_is_promoted_through_every_step(clock):
    router = MemoryRouter()
    gate = Gate(clock, [(0, PASS)])
    outcome = rollout(router, clock, gates=[gate], pre_gates=[gate]).run()
    assert outcome.status == "promoted" and outcome.changed
    assert router.writes == [
        {"blue": 90, "green": 10},
        {"blue": 50, "green": 50},
        {"blue": 10, "green": 90},
        {"blue": 0, "green": 100},
    ]
    assert [e["event"] for e in outcome.timeline if e["event"] == "weight"] == ["weight"] * 4
    assert clock.now == 90
    # gates evaluated continuously during pauses: every 5 s of three 30 s pauses, plus the pre-switch check
    assert len(gate.calls) >= 3 * 6


def test_unhealthy_canary_never_gets_traffic(clock):
    router = MemoryRouter()
    pre = Gate(clock, [(0, PENDING), (20, FAIL)], name="canary-health")
    outcome = rollout(router, clock, pre_gates=[pre], pre_gate_timeout=60).run()
    assert outcome.status == "rolled_back"
    assert router.writes == []  # not a single weight was given to the canary
    assert "canary-health" in outcome.reason
    assert outcome.weights == {"blue": 100, "green": 0}


def test_pre_switch_gate_undecided_until_timeout_aborts(clock):
    router = MemoryRouter()
    pre = Gate(clock, [(0, PENDING)], name="slow")
    outcome = rollout(router, clock, pre_gates=[pre], pre_gate_timeout=15).run()
    assert outcome.status == "rolled_back" and router.writes == []
    assert clock.now <= 15 + 5


def test_canary_failing_mid_pause_is_rolled_back_within_one_gate_interval(clock):
    router = MemoryRouter()
    gate = Gate(clock, [(0, PASS), (42, FAIL)])
    outcome = rollout(router, clock, gates=[gate]).run()
    assert outcome.status == "rolled_back"
    assert router.state == {"blue": 100, "green": 0}
    failed = next(e for e in outcome.timeline if e["event"] == "gate_failed")
    rolled = next(e for e in outcome.timeline if e["event"] == "rolled_back")
    assert failed["weights"] == {"blue": 50, "green": 50}
    assert 42 <= failed["t"] <= 42 + 5  # observed within one gate interval
    assert rolled["t"] == failed["t"]  # rollback is immediate (router writes take no engine time)
    assert router.writes[-1] == {"blue": 100, "green": 0}


@pytest.mark.parametrize("on_failure, status", [("pause", "held"), ("fail", "failed")])
def test_on_failure_pause_or_fail_leaves_weights_where_they_are(on_failure, status, clock):
    router = MemoryRouter()
    gate = Gate(clock, [(0, PASS), (12, FAIL)])
    outcome = rollout(router, clock, gates=[gate], on_failure=on_failure).run()
    assert outcome.status == status
    assert router.state == {"blue": 90, "green": 10}


def test_timeout_aborts_and_rolls_back(clock):
    router = MemoryRouter()
    outcome = rollout(router, clock, gates=[Gate(clock, [(0, PASS)])], timeout=40).run()
    assert outcome.status == "rolled_back" and "overall timeout reached during pause 30s" in outcome.reason
    assert router.state == {"blue": 100, "green": 0}
    assert clock.now <= 40


def test_write_not_taken_is_detected_by_verify_and_aborts(clock):
    router = MemoryRouter(lie=True)
    outcome = rollout(router, clock).run()
    assert outcome.status == "rolled_back"
    assert "router did not take the weights: wrote {'blue': 90, 'green': 10}" in outcome.reason
    assert router.state == {"blue": 100, "green": 0}


class FlakyRouter(MemoryRouter):
    """Refuses its second write (say, ModifyListener throttled past its retries)."""

    def write(self, weights):
        if len(self.writes) == 1:
            self.writes.append("refused")
            raise RuntimeError("Throttling: Rate exceeded")
        super().write(weights)


def test_router_error_mid_rollout_rolls_back(clock):
    router = FlakyRouter()
    outcome = rollout(router, clock).run()
    assert outcome.status == "rolled_back"
    assert "router: RuntimeError: Throttling" in outcome.reason
    assert router.state == {"blue": 100, "green": 0}
    assert router.writes == [{"blue": 90, "green": 10}, "refused", {"blue": 100, "green": 0}]


def test_rerun_after_crash_resumes_from_router_state(clock):
    router = MemoryRouter(canary=50)
    outcome = rollout(router, clock, gates=[Gate(clock, [(0, PASS)])]).run()
    assert outcome.status == "promoted"
    assert router.writes == [{"blue": 10, "green": 90}, {"blue": 0, "green": 100}]
    assert any(e["event"] == "resume" for e in outcome.timeline)


def test_rerun_when_already_promoted_changes_nothing(clock):
    router = MemoryRouter(canary=100)
    outcome = rollout(router, clock).run()
    assert outcome.status == "promoted" and outcome.changed is False and router.writes == []


def test_pause_until_promoted_stops_then_continues_with_promote(clock):
    steps = [{"weight": 20}, {"pause": None}, {"weight": 100}]
    router = MemoryRouter()
    first = rollout(router, clock, steps=steps).run()
    assert first.status == "paused" and router.state == {"blue": 80, "green": 20}
    again = rollout(router, clock, steps=steps).run()
    assert again.status == "paused" and again.changed is False
    final = rollout(router, clock, steps=steps, promote=True).run()
    assert final.status == "promoted" and router.state == {"blue": 0, "green": 100}


def test_gate_step_waits_for_gates_to_pass(clock):
    steps = [{"weight": 10}, {"gate": True}, {"weight": 100}]
    router = MemoryRouter()
    gate = Gate(clock, [(0, PENDING), (17, PASS)])
    outcome = rollout(router, clock, steps=steps, gates=[gate]).run()
    assert outcome.status == "promoted" and 17 <= clock.now <= 22


def test_rollback_when_nothing_moved_yet_writes_nothing(clock):
    router = MemoryRouter()
    outcome = rollout(router, clock, pre_gates=[Gate(clock, [(0, FAIL)])]).run()
    assert outcome.status == "rolled_back" and outcome.changed is False and router.writes == []


@pytest.mark.parametrize(
    "steps, message",
    [
        ([], "steps must list at least one step"),
        ([{"weight": 101}], r"steps\[0\].weight must be an integer percentage from 0 to 100"),
        ([{"weight": -1}], r"steps\[0\].weight must be an integer"),
        ([{"weight": "10"}], r"steps\[0\].weight must be an integer"),
        ([{"weight": 10}, {"pause": 5}], r"steps end at weight 10%, not 100%"),
        ([{"pause": 5}], "at least one weight step"),
        ([{"pause": -3}, {"weight": 100}], r"steps\[0\].pause must be a number of seconds"),
        ([{"wait": 3}], r"steps\[0\] has unknown key 'wait'"),
        ([{"weight": 10, "pause": 3}], r"steps\[0\] must be one of"),
    ],
)
def test_bad_steps_are_refused(steps, message):
    with pytest.raises(RolloutError, match=message):
        parse_steps(steps)


def test_partial_rollout_allowed_when_said():
    assert [s.weight for s in parse_steps([{"weight": 10}], allow_partial=True)] == [10]


def test_bad_engine_options_and_pools():
    with pytest.raises(RolloutError, match="on_failure must be one of"):
        Rollout(MemoryRouter(), parse_steps([{"weight": 100}]), on_failure="retry")
    with pytest.raises(RouterError, match="two different pools"):
        Router("blue", "blue")


def test_normalize_any_scale():
    router = MemoryRouter()
    assert router.normalize({"blue": 1, "green": 1}) == {"blue": 50, "green": 50}
    assert router.normalize({"blue": 0, "green": 0}) == {"blue": 0, "green": 0}
    assert router.live({"blue": 0, "green": 100}) == "green"
    assert router.live({"blue": 50, "green": 50}) is None


# -- issue 11: an undecided gate never promotes, errors roll back, a failed rollback says where traffic is -------------
def test_gate_still_pending_at_the_end_of_a_pause_rolls_back_without_the_pre_switch_check(clock):
    """Passes at first (the canary gets 10%), then stays undecided: the pause must not move on to 50%."""
    router = MemoryRouter()
    gate = Gate(clock, [(0, PASS), (3, PENDING)], name="flapping")
    outcome = rollout(router, clock, gates=[gate]).run()
    assert outcome.status == "rolled_back"
    assert router.writes == [{"blue": 90, "green": 10}, {"blue": 100, "green": 0}]
    assert "pause 30s: gates undecided after 30s (flapping: pending at 30)" in outcome.reason
    assert router.state == {"blue": 100, "green": 0}


def test_gate_still_pending_at_the_end_of_a_pause_holds_with_on_undecided_hold(clock):
    router = MemoryRouter()
    gate = Gate(clock, [(0, PASS), (3, PENDING)], name="alarm")
    outcome = rollout(router, clock, gates=[gate], on_undecided="hold").run()
    assert outcome.status == "held"
    assert router.writes == [{"blue": 90, "green": 10}]  # traffic unchanged, not moved on, not rolled back
    assert outcome.weights == {"blue": 90, "green": 10}
    assert "traffic left at {'blue': 90, 'green': 10} (on_undecided=hold)" in outcome.reason
    assert outcome.timeline[-1]["event"] == "held"


def test_pre_switch_check_undecided_holds_before_any_weight_with_hold(clock):
    router = MemoryRouter()
    outcome = rollout(router, clock, pre_gates=[Gate(clock, [(0, PENDING)])], on_undecided="hold").run()
    assert outcome.status == "held" and router.writes == []


class RaisingGate:
    """Passes, then its backing call errors (AccessDenied, throttling past retries)."""

    name = "alarms"

    def __init__(self, clock, after):
        self.clock = clock
        self.after = after

    def evaluate(self):
        if self.clock.now >= self.after:
            raise RuntimeError("An error occurred (AccessDenied) when calling the DescribeAlarms operation")
        return GateResult(self.name, PASS, "OK")


def test_a_gate_raising_mid_canary_rolls_back_verified(clock):
    router = MemoryRouter()
    outcome = rollout(router, clock, gates=[RaisingGate(clock, after=40)]).run()
    assert outcome.status == "rolled_back"
    assert router.state == {"blue": 100, "green": 0}
    assert "alarms: gate error: RuntimeError: An error occurred (AccessDenied)" in outcome.reason
    assert outcome.timeline[-1] == {
        "t": outcome.timeline[-1]["t"],
        "event": "rolled_back",
        "weights": {"blue": 100, "green": 0},
        "reason": "all traffic on the stable pool, verified",
    }


class BrokenRouter(MemoryRouter):
    """Takes the first weight, then refuses every write (and, with ``unreadable``, every read after that)."""

    def __init__(self, unreadable=False):
        super().__init__()
        self.unreadable = unreadable

    def write(self, weights):
        if self.writes:
            raise RuntimeError("ModifyListener: AccessDenied")
        super().write(weights)

    def read(self):
        if self.unreadable and self.writes:
            raise RuntimeError("DescribeListeners: endpoint unreachable")
        return super().read()


def test_router_failing_during_rollback_names_where_traffic_is_and_the_fix(clock):
    router = BrokenRouter()
    outcome = rollout(router, clock, gates=[Gate(clock, [(0, PASS), (12, FAIL)])]).run()
    assert outcome.status == "failed"
    assert "ROLLBACK FAILED (RuntimeError: ModifyListener: AccessDenied)" in outcome.reason
    assert "the router now reads {'blue': 90, 'green': 10}" in outcome.reason
    assert "put all traffic on blue" in outcome.reason
    assert outcome.timeline[-1]["event"] == "rollback_failed"


def test_unreadable_router_during_rollback_gives_the_last_known_weights(clock):
    router = BrokenRouter(unreadable=True)
    outcome = rollout(router, clock, gates=[Gate(clock, [(0, PASS), (12, FAIL)])]).run()
    assert outcome.status == "failed" and router.writes == [{"blue": 90, "green": 10}]
    assert "the router cannot be read (RuntimeError: DescribeListeners: endpoint unreachable)" in outcome.reason
    # the first write went through but could not be read back: both are said, the traffic may be at either
    assert "last weights read {'blue': 100, 'green': 0}" in outcome.reason
    assert "last weights written {'blue': 90, 'green': 10}" in outcome.reason


def test_bad_on_undecided_is_refused():
    with pytest.raises(RolloutError, match="on_undecided must be one of"):
        Rollout(MemoryRouter(), parse_steps([{"weight": 100}]), on_undecided="pass")


def test_an_abort_mark_wins_mid_pause_within_one_gate_interval(clock):
    router = MemoryRouter()

    def marked():
        return "aborted by ops@host: bad latency" if clock.now >= 47 else None

    outcome = rollout(router, clock, gates=[Gate(clock, [(0, PASS)])], abort=marked).run()
    assert outcome.status == "rolled_back" and router.state == {"blue": 100, "green": 0}
    failed = next(e for e in outcome.timeline if e["event"] == "gate_failed")
    assert failed["weights"] == {"blue": 50, "green": 50} and 47 <= failed["t"] <= 47 + 5
    assert outcome.reason == "aborted: aborted by ops@host: bad latency"


def test_an_abort_mark_wins_while_paused_for_promote(clock):
    steps = [{"weight": 20}, {"pause": None}, {"weight": 100}]
    router = MemoryRouter(canary=20)
    outcome = rollout(router, clock, steps=steps, promote=True, abort=lambda: "abort.yml by ops").run()
    assert outcome.status == "rolled_back" and router.state == {"blue": 100, "green": 0}


def test_an_abort_rolls_back_even_with_on_failure_pause(clock):
    router = MemoryRouter()

    def marked():
        return "abort.yml by ops" if clock.now >= 12 else None

    outcome = rollout(router, clock, gates=[Gate(clock, [(0, PASS)])], on_failure="pause", abort=marked).run()
    assert outcome.status == "rolled_back" and router.state == {"blue": 100, "green": 0}


def test_progress_sees_every_event_and_gate_evaluation_as_it_happens(clock):
    router = MemoryRouter()
    gate = Gate(clock, [(0, PASS), (40, FAIL)])
    seen = []

    def progress(entry):  # what the router holds when the event is reported: reported as it happens, not after
        seen.append((clock.now, router.read()["green"], entry))

    outcome = rollout(router, clock, gates=[gate], pre_gates=[gate], progress=progress).run()
    assert outcome.status == "rolled_back"
    events = [e for unused, unused_green, e in seen if e["event"] != "gates"]
    assert events == outcome.timeline  # every timeline event, in order, and nothing else but gate evaluations
    evaluations = [(t, e) for t, unused, e in seen if e["event"] == "gates"]
    assert len(evaluations) == len(gate.calls)
    assert {e["label"] for unused, e in evaluations} == {"pre-switch", "pause 30s"}
    assert evaluations[-1][1]["gates"][0]["verdict"] == FAIL
    # the 10% step was reported when the router had 10%, before the clock reached the 50% step
    (first_weight,) = [(t, green) for t, green, e in seen if e["event"] == "weight" and e["weights"]["green"] == 10]
    assert first_weight == (0, 10)
