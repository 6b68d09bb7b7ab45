"""gates.py against a real HTTP server on loopback."""

import http.server
import socket
import threading
import time

import pytest

from ansible_collections.bluegreen.aws.plugins.module_utils.gates import FAIL
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import HELD
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import PASS
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import PENDING
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import GateResult
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import HttpGate
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import evaluate_gates
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import http_probe
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import watch


class App(http.server.BaseHTTPRequestHandler):
    status = 200
    body = b'{"status": "UP"}'
    delay = 0.0

    def do_GET(self):
        time.sleep(type(self).delay)
        self.send_response(type(self).status)
        self.send_header("Content-Length", str(len(type(self).body)))
        self.end_headers()
        try:
            self.wfile.write(type(self).body)
        except BrokenPipeError:
            pass  # the probe timed out and went away (test_probe_timeout)

    def log_message(self, *args):
        pass


@pytest.fixture
def app():
    handler = type("Handler", (App,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_port}/health"
    yield handler
    server.shutdown()
    server.server_close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_probe_healthy(app):
    result = http_probe(app.url, body_pattern=r'"status":\s*"UP"')
    assert result.ok and result.status == 200 and result.error is None


def test_probe_unexpected_status(app):
    app.status = 503
    result = http_probe(app.url)
    assert not result.ok and result.status == 503 and "503" in result.error


def test_probe_accepts_listed_statuses(app):
    app.status = 204
    app.body = b""
    assert http_probe(app.url, expected_status=(200, 204)).ok


def test_probe_body_mismatch(app):
    app.body = b'{"status": "DOWN"}'
    result = http_probe(app.url, body_pattern=r'"status":\s*"UP"')
    assert not result.ok and "body does not match" in result.error


def test_probe_connection_refused():
    result = http_probe(f"http://127.0.0.1:{free_port()}/health", timeout=1)
    assert not result.ok and result.status is None and "Connection" in result.error


def test_probe_timeout(app):
    app.delay = 0.5
    result = http_probe(app.url, timeout=0.1)
    assert not result.ok and "timed out" in result.error.lower()


def test_gate_needs_consecutive_successes(app):
    gate = HttpGate([app.url], success_threshold=2, failure_threshold=2)
    assert gate.evaluate().verdict == PENDING
    assert gate.evaluate().verdict == PASS


def test_gate_failure_resets_success_count_and_fails_at_threshold(app):
    gate = HttpGate([app.url], success_threshold=2, failure_threshold=2)
    assert gate.evaluate().verdict == PENDING
    app.status = 500
    assert gate.evaluate().verdict == PENDING
    result = gate.evaluate()
    assert result.verdict == FAIL and app.url in result.reason
    assert result.details["probes"][app.url]["status"] == 500


def test_gate_latency_ceiling_counts_slow_answers_as_bad(app):
    app.delay = 0.05
    result = HttpGate([app.url], failure_threshold=1, latency_ceiling_ms=1).evaluate()
    assert result.verdict == FAIL and "above ceiling" in result.reason


def test_gate_over_several_urls_fails_when_one_fails(app):
    gate = HttpGate([app.url, f"http://127.0.0.1:{free_port()}/"], failure_threshold=1)
    result = gate.evaluate()
    assert result.verdict == FAIL and "1 URL(s) failed" in result.reason


def test_gate_rejects_bad_thresholds():
    with pytest.raises(ValueError):
        HttpGate([])
    with pytest.raises(ValueError):
        HttpGate(["http://x/"], success_threshold=0)


class Scripted:
    name = "scripted"

    def __init__(self, verdicts):
        self.verdicts = list(verdicts)
        self.calls = 0

    def evaluate(self):
        self.calls += 1
        return GateResult(self.name, self.verdicts.pop(0) if len(self.verdicts) > 1 else self.verdicts[0], "why")


def test_watch_until_pass_returns_first_decision(clock):
    gate = Scripted([PENDING, PENDING, PASS])
    decision = watch([gate], 60, 5, until_pass=True, clock=clock, sleep=clock.sleep)
    assert decision.verdict == PASS and decision.passed
    assert gate.calls == 3 and clock.now == 10


def test_watch_undecided_at_the_end_of_a_window_fails_with_the_last_reason(clock):
    gate = Scripted([PENDING])
    decision = watch([gate], 12, 5, until_pass=True, label="ready", clock=clock, sleep=clock.sleep)
    assert decision.verdict == FAIL and not decision.passed
    assert decision.reason == "ready: gates undecided after 12s (scripted: why)"
    assert clock.now == 12 and decision.results[-1].name == "undecided"


def test_watch_a_pause_that_ends_pending_is_never_a_pass(clock):
    """The rule that used to promote a canary: pass, then pending at the end of the pause."""
    gate = Scripted([PASS, PASS, PENDING])
    decision = watch([gate], 10, 5, clock=clock, sleep=clock.sleep)
    assert decision.verdict == FAIL and "undecided" in decision.reason
    assert gate.calls == 3


def test_watch_a_pause_passes_only_when_the_last_evaluation_passed(clock):
    gate = Scripted([PENDING, PASS, PASS])
    decision = watch([gate], 10, 5, clock=clock, sleep=clock.sleep)
    assert decision.verdict == PASS and clock.now == 10 and gate.calls == 3


def test_watch_on_undecided_hold_holds_and_does_not_pass(clock):
    decision = watch([Scripted([PENDING])], 10, 5, on_undecided="hold", clock=clock, sleep=clock.sleep)
    assert decision.verdict == HELD and not decision.passed
    assert "undecided after 10s" in decision.reason


def test_watch_a_failing_gate_fails_at_once_even_with_hold(clock):
    decision = watch([Scripted([PENDING, FAIL])], 60, 5, on_undecided="hold", clock=clock, sleep=clock.sleep)
    assert decision.verdict == FAIL and clock.now == 5


class Raising:
    name = "alarms"

    def evaluate(self):
        raise RuntimeError("AccessDenied: not authorized to perform cloudwatch:DescribeAlarms")


def test_a_gate_that_raises_is_a_fail_carrying_the_error(clock):
    verdict, results = evaluate_gates([Scripted([PASS]), Raising()])
    assert verdict == FAIL
    assert results[1].verdict == FAIL and "AccessDenied" in results[1].reason and results[1].name == "alarms"
    decision = watch([Raising()], 60, 5, clock=clock, sleep=clock.sleep)
    assert decision.verdict == FAIL and "AccessDenied" in decision.reason and clock.now == 0


def test_watch_deadline_fails_whatever_the_gates_say(clock):
    decision = watch([Scripted([PASS])], None, 5, deadline=12, label="pause 30s", clock=clock, sleep=clock.sleep)
    assert decision.verdict == FAIL and decision.reason == "overall timeout reached during pause 30s"
    assert clock.now == 12


def test_watch_stop_ends_the_window_early_with_the_last_verdict(clock):
    ended = iter([None, None, "deployment Succeeded"])
    gate = Scripted([PASS])
    decision = watch([gate], 300, 5, stop=lambda: next(ended), clock=clock, sleep=clock.sleep)
    assert decision.verdict == PASS and "deployment Succeeded" in decision.reason and clock.now == 10
    assert gate.calls == 2


def test_watch_without_gates(clock):
    assert watch([], 30, 5, clock=clock, sleep=clock.sleep).verdict == PASS and clock.now == 30
    assert watch([], None, 5, until_pass=True, deadline=99, clock=clock, sleep=clock.sleep).verdict == PASS
    assert clock.now == 30


def test_watch_refuses_a_window_without_end_and_a_bad_on_undecided(clock):
    with pytest.raises(ValueError, match="needs an end"):
        watch([Scripted([PASS])], None, 5, clock=clock)
    with pytest.raises(ValueError, match="on_undecided"):
        watch([Scripted([PASS])], 5, 5, on_undecided="pass", clock=clock)


def test_watch_an_abort_fails_the_window_whatever_the_gates_say(clock):
    marks = iter([None, "aborted by ops"])
    decision = watch(
        [Scripted([PENDING])], 60, 5, on_undecided="hold", abort=lambda: next(marks), clock=clock, sleep=clock.sleep
    )
    assert decision.verdict == FAIL and decision.reason == "aborted: aborted by ops" and clock.now == 5
