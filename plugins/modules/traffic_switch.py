#!/usr/bin/python

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: traffic_switch
version_added: 0.1.0
short_description: Move traffic from a stable pool to a canary pool in health-gated steps, with automatic rollback
description:
  - Drives a router (the place traffic is split) through a plan of steps, for example 10% to the canary,
    pause, 50%, pause, 100%, while health gates are evaluated every O(gate_interval) seconds during pauses.
  - Before the canary gets any traffic, the gates must pass (see O(pre_switch_check)), so an unhealthy canary never
    receives a request.
  - Gates decide C(pass), C(fail) or C(pending). A gate whose own source errors (AccessDenied, throttling past the
    retries, a refused connection) counts as failed, with the error in the reason.
  - A gate still undecided when a pause (or the pre-switch check) ends is never a pass. It fails, unless
    O(on_undecided=hold), which stops the run as RV(status=held) with the traffic where it is.
  - A failing gate, a gate error, a router error or the O(timeout) aborts; with O(on_failure=rollback) all traffic
    goes back to the stable pool and the module verifies it by reading the router back. If even that fails, the task
    fails with a message that says where the traffic is and how to put it on the stable pool.
  - The router's own state is the truth. The module reads the current weights first and skips the steps already
    reached, so a run that was killed mid-canary converges when run again, and a run at the final weight is
    C(changed=false).
  - Routers are V(haproxy), driven through its runtime API (no reload), the weights also persisted to its
    configuration; and V(nginx), an upstream file replaced atomically, checked with C(nginx -t), then reloaded.
    A reload closes idle keep-alive connections, which keep-alive clients see as failed requests (measured by
    C(make bench)); prefer HAProxy where clients keep connections open.
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  steps:
    description:
      - The plan, in order. Each item has exactly one key.
      - "C({weight: N}) sets N percent on the canary (0-100) and verifies it."
      - "C({pause: S}) waits S seconds while the gates are evaluated; C({pause: null}) stops the run with
        RV(status=paused) until it is run again with O(promote=true)."
      - "C({gate: true}) waits until every gate passes."
      - The last weight must be 100 unless O(allow_partial=true).
    type: list
    elements: dict
    default: [{weight: 100}]
  allow_partial:
    description: Allow a plan whose last weight is below 100 (a long-lived canary).
    type: bool
    default: false
  pre_switch_check:
    description: Require the gates to pass before the canary gets its first traffic.
    type: bool
    default: true
  pre_switch_timeout:
    description: Seconds the gates may take to pass before the first switch.
    type: float
    default: 120
  gate_interval:
    description: Seconds between two evaluations of the gates.
    type: float
    default: 5
  timeout:
    description: Seconds the whole run may take; reaching it aborts like a failing gate.
    type: float
    default: 1800
  on_failure:
    description:
      - What to do when a gate fails or the timeout is reached.
      - V(rollback) puts all traffic on the stable pool, verified. V(pause) and V(fail) leave the weights where
        they are. The task fails in every case.
    type: str
    choices: ['rollback', 'pause', 'fail']
    default: rollback
  on_undecided:
    description:
      - What a gate still undecided (C(pending)) at the end of a pause or of the pre-switch check means.
      - V(fail) treats it as a failed gate (O(on_failure) decides what happens to the traffic).
      - V(hold) stops the run with RV(status=held) and leaves the traffic where it is, so a person can look; the task
        fails and says so. Run it again to go on. It never counts as a pass.
    type: str
    choices: ['fail', 'hold']
    default: fail
  promote:
    description: "Continue past a C({pause: null}) step."
    type: bool
    default: false
notes:
  - In check mode the module reads the current weights and reports the plan without writing anything.
  - Supports diff mode (weights before and after).
extends_documentation_fragment:
  - bluegreen.aws.release.abort
  - bluegreen.aws.progress
  - bluegreen.aws.router
  - bluegreen.aws.gates
  - amazon.aws.common.modules
  - amazon.aws.region.modules
"""

EXAMPLES = r"""
- name: Canary v2 in the green slot behind HAProxy, roll back on the first bad health check
  bluegreen.aws.traffic_switch:
    router: haproxy
    haproxy:
      socket: /run/haproxy/admin.sock
      backend: app
      config: /etc/haproxy/haproxy.cfg
    stable: blue
    canary: green
    steps:
      - weight: 10
      - pause: 60
      - weight: 50
      - pause: 60
      - weight: 90
      - pause: 60
      - weight: 100
    gates:
      - name: green-health
        urls: ["http://127.0.0.1:8082/health/deep"]
        failure_threshold: 2
        latency_ceiling_ms: 500
    gate_interval: 5

- name: Same plan through nginx
  bluegreen.aws.traffic_switch:
    router: nginx
    nginx:
      upstream_file: /etc/nginx/conf.d/app-upstream.conf
      upstream: app
      servers: {blue: "127.0.0.1:8081", green: "127.0.0.1:8082"}
    stable: blue
    canary: green
    steps: [{weight: 10}, {pause: 60}, {weight: 100}]
    gates:
      - urls: ["http://127.0.0.1:8082/health"]

- name: ALB canary between two target groups, gated on target health and a 5xx alarm
  bluegreen.aws.traffic_switch:
    router: alb
    alb:
      listener_arn: "{{ listener_arn }}"
    stable: web-blue
    canary: web-green
    steps: [{weight: 10}, {pause: 120}, {weight: 50}, {pause: 120}, {weight: 100}]
    gates:
      - type: target_health
        target_group: web-green
        min_healthy: 2
      - type: cloudwatch_alarm
        alarm_names: [web-green-5xx]
    gate_interval: 15

- name: Hold at 20% until someone promotes
  bluegreen.aws.traffic_switch:
    haproxy: {socket: /run/haproxy/admin.sock, backend: app}
    stable: blue
    canary: green
    steps: [{weight: 20}, {pause: null}, {weight: 100}]
    promote: "{{ promote_release | default(false) }}"

- name: Canary that an operator can abort from another process (playbooks/abort.yml)
  bluegreen.aws.traffic_switch:
    haproxy: {socket: /run/haproxy/admin.sock, backend: app}
    stable: blue
    canary: green
    steps: [{weight: 10}, {pause: 600}, {weight: 50}, {pause: 600}, {weight: 100}]
    gates:
      - urls: ["http://127.0.0.1:8082/health"]
    abort:
      bucket: my-release-state
      application: web
      environment: prod
      lock_id: "{{ release_lock_taken.lock.id }}"
"""

RETURN = r"""
status:
  description:
    - V(promoted) (at the final weight), V(paused) (waiting for O(promote)), V(rolled_back) (a gate failed, all traffic
      back on the stable pool), V(held) (a gate failed with O(on_failure=pause), or stayed undecided with
      O(on_undecided=hold)), V(failed) (O(on_failure=fail), or the rollback itself failed, see RV(reason)),
      or V(planned) in check mode.
  returned: always
  type: str
  sample: promoted
weights:
  description: Percent per pool at the end, as read back from the router.
  returned: always
  type: dict
  sample: {"blue": 0, "green": 100}
weights_before:
  description: Percent per pool when the module started.
  returned: always
  type: dict
  sample: {"blue": 100, "green": 0}
live:
  description: The pool carrying all the traffic at the end, null while the traffic is split.
  returned: always
  type: str
  sample: green
reason:
  description: Why the run ended where it did.
  returned: always
  type: str
  sample: canary at 100%
plan:
  description: The steps, as understood.
  returned: always
  type: list
  elements: str
  sample: ["weight 10%", "pause 60s", "weight 100%"]
aborted:
  description: Whether an operator's abort mark ended the run (see O(abort)).
  returned: when O(abort) is given, except in check mode
  type: bool
  sample: false
abort_check:
  description: How the abort mark was watched.
  returned: when O(abort) is given, except in check mode
  type: dict
  contains:
    bucket:
      description: O(abort.bucket).
      type: str
      sample: my-release-state
    key:
      description: The mark's key.
      type: str
      sample: bluegreen/web/prod/abort.json
    checks:
      description: How many times the mark was read.
      type: int
      sample: 42
    errors:
      description: How many reads failed.
      type: int
      sample: 0
    last_error:
      description: The last read error, null when none.
      type: str
      sample: null
    mark:
      description: The abort mark that ended the run (who, reason, at, lock_id, version), null when none did.
      type: dict
      sample: {"who": "ops@laptop", "reason": "error rate", "at": "2026-01-01T12:03:00Z"}
timeline:
  description: What happened, in order; C(t) is seconds since the start.
  returned: always
  type: list
  elements: dict
  sample: [{"t": 0.0, "event": "start", "weights": {"blue": 100, "green": 0}, "reason": "canary at 0%"}]
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bluegreen.aws.plugins.module_utils.gates import GATE_OPTIONS
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import GateError
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import build_gates
from ansible_collections.bluegreen.aws.plugins.module_utils.progress import progress_file
from ansible_collections.bluegreen.aws.plugins.module_utils.release import ABORT_OPTIONS
from ansible_collections.bluegreen.aws.plugins.module_utils.release import abort_result
from ansible_collections.bluegreen.aws.plugins.module_utils.release import abort_watch
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import Rollout
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import RolloutError
from ansible_collections.bluegreen.aws.plugins.module_utils.rollout import parse_steps
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import RouterError
from ansible_collections.bluegreen.aws.plugins.module_utils.traffic import AWS_ERRORS
from ansible_collections.bluegreen.aws.plugins.module_utils.traffic import ROUTER_ARGS
from ansible_collections.bluegreen.aws.plugins.module_utils.traffic import aws_clients
from ansible_collections.bluegreen.aws.plugins.module_utils.traffic import build_router


def main():
    argument_spec = dict(
        ROUTER_ARGS,
        steps=dict(type="list", elements="dict", default=[{"weight": 100}]),
        allow_partial=dict(type="bool", default=False),
        gates=dict(type="list", elements="dict", default=[], options=GATE_OPTIONS),
        pre_switch_check=dict(type="bool", default=True),
        pre_switch_timeout=dict(type="float", default=120),
        gate_interval=dict(type="float", default=5),
        timeout=dict(type="float", default=1800),
        on_failure=dict(type="str", choices=["rollback", "pause", "fail"], default="rollback"),
        on_undecided=dict(type="str", choices=["fail", "hold"], default="fail"),
        promote=dict(type="bool", default=False),
        abort=dict(type="dict", options=ABORT_OPTIONS),
        progress_file=dict(type="path"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True, check_boto3=False)
    p = module.params
    try:
        steps = parse_steps(p["steps"], allow_partial=p["allow_partial"])
        aws_client = aws_clients(module)
        gates = build_gates(p["gates"], aws_client, option="gates")
        router = build_router(p, aws_client)
        watcher = abort_watch(module)
        engine = Rollout(
            router,
            steps,
            gates=gates,
            pre_gates=gates if p["pre_switch_check"] else [],
            gate_interval=p["gate_interval"],
            pre_gate_timeout=p["pre_switch_timeout"],
            timeout=p["timeout"],
            on_failure=p["on_failure"],
            on_undecided=p["on_undecided"],
            promote=p["promote"],
            abort=watcher,
            progress=progress_file(p["progress_file"], "traffic_switch"),
        )
        before = router.read()
    except (RolloutError, RouterError, GateError) as e:
        module.fail_json(msg=str(e))
    except AWS_ERRORS as e:  # router=alb
        module.fail_json_aws(e, msg="Failed to read the router's weights")

    plan = [s.describe() for s in steps]
    final = router.weights_for([s.weight for s in steps if s.weight is not None][-1])
    result = dict(weights_before=before, plan=plan)
    if module.check_mode:
        changed = before != final
        diff = dict(before=dict(weights=before), after=dict(weights=final))
        module.exit_json(
            changed=changed,
            status="planned",
            weights=before,
            live=router.live(before),
            reason="check mode: nothing written",
            timeline=[],
            diff=diff,
            **result,
        )

    try:
        outcome = engine.run()
    except (RolloutError, RouterError) as e:
        module.fail_json(msg=str(e), **result)
    except AWS_ERRORS as e:  # router=alb: only the first read raises (later errors end in a verified rollback)
        module.fail_json_aws(e, msg="Failed to read the listener's weights; nothing was changed", **result)

    result.update(
        changed=outcome.changed,
        status=outcome.status,
        weights=outcome.weights,
        live=router.live(outcome.weights),
        reason=outcome.reason,
        timeline=outcome.timeline,
        diff=dict(before=dict(weights=before), after=dict(weights=outcome.weights)),
    )
    result.update(abort_result(module, watcher))
    if outcome.status in ("rolled_back", "held", "failed"):
        module.fail_json(msg=f"traffic switch {outcome.status}: {outcome.reason}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
