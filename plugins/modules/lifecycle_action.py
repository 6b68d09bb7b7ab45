#!/usr/bin/python

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lifecycle_action
version_added: 0.1.0
short_description: Complete Auto Scaling lifecycle actions for instances waiting in Pending:Wait or Terminating:Wait
description:
  - Finds the instances of an Auto Scaling group that wait in a lifecycle hook and completes their lifecycle
    actions with V(CONTINUE) or V(ABANDON), or records a heartbeat to extend the wait.
  - Acts on any hook of the transition by default, including the launch hook CodeDeploy adds to a group it
    deploys to. A scale-out without a deployment otherwise sits in V(Pending:Wait) until that hook times out.
  - While a CodeDeploy deployment of the group is active, CodeDeploy completes its own hook once it has installed
    the revision. Completing that hook with V(CONTINUE) and no O(health_check) is then refused, before any write
    (the module looks the deployment up with read-only CodeDeploy calls).
  - An instance that CodeDeploy's automatic deployment is installing (a deployment with creator C(autoscaling), by
    which CodeDeploy deploys the group's last successful revision to a scaled-out instance and then completes its own
    hook) is never completed by this module, health check or not. It is reported with
    RV(instances[].action=left_to_codedeploy) and the deployment in RV(instances[].deployment), with a warning.
  - An instance that has already left the wait state (for example completed by CodeDeploy between the
    describe and the completion) is reported with RV(instances[].action=already_done) and does not fail
    the task or mark it changed.
  - Optionally gates each V(CONTINUE) on an HTTP health check of the instance.
  - Polls with one C(DescribeAutoScalingGroups) call per poll, whatever the number of instances.
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  group_name:
    description:
      - Name of the Auto Scaling group.
    type: str
    required: true
    aliases: ['autoscaling_group_name']
  hook_name:
    description:
      - Name of the lifecycle hook to complete.
      - When omitted, every hook of O(transition) on the group is completed for each instance,
        including the CodeDeploy-managed launch hook.
    type: str
  instance_ids:
    description:
      - The instances to act on.
      - When omitted, every instance of the group that waits in the O(transition) wait state.
      - Instances that are not waiting are reported, not failed.
    type: list
    elements: str
    default: []
  transition:
    description:
      - V(launching) acts on instances in C(Pending:Wait), V(terminating) on instances in C(Terminating:Wait).
    type: str
    choices: ['launching', 'terminating']
    default: launching
  result:
    description:
      - The lifecycle action result. V(CONTINUE) lets a launching instance go InService;
        V(ABANDON) terminates it. For terminating instances both let the termination go on.
    type: str
    choices: ['CONTINUE', 'ABANDON']
    default: CONTINUE
  heartbeat:
    description:
      - Record a lifecycle action heartbeat instead of completing, extending the wait by the hook's
        heartbeat timeout. O(wait) is ignored; O(result=ABANDON) with it is refused (they contradict).
    type: bool
    default: false
  wait:
    description:
      - Wait until the completed instances have left the wait state.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to wait for the instances to leave the wait state.
      - When the time is up the task fails and names the instances still waiting.
    type: int
    default: 300
  poll_interval:
    description:
      - Seconds between two polls while waiting.
    type: int
    default: 5
  health_check:
    description:
      - Before a V(CONTINUE), probe each instance over HTTP; only instances whose probe passes are continued.
      - Instances that fail are left waiting and the task fails (O(health_check.on_failure=fail)),
        or are abandoned (O(health_check.on_failure=abandon)) so the group replaces them.
    type: dict
    suboptions:
      url:
        description:
          - URL to probe. Python format placeholders are filled per instance
            with C({instance_id}), C({private_ip}), C({public_ip}), C({private_dns}) and C({availability_zone}).
        type: str
        required: true
      expected_status:
        description: HTTP status codes that count as healthy.
        type: list
        elements: int
        default: [200]
      body_pattern:
        description: Regular expression the response body must match.
        type: str
      timeout:
        description: Timeout of one request in seconds.
        type: int
        default: 5
      interval:
        description: Seconds between two probes of an instance.
        type: int
        default: 5
      wait_timeout:
        description: Seconds an instance may take to pass before it counts as failed.
        type: int
        default: 300
      success_threshold:
        description: Consecutive good answers needed to pass.
        type: int
        default: 1
      failure_threshold:
        description: Consecutive bad answers that fail the instance.
        type: int
        default: 3
      on_failure:
        description: What to do with an instance that fails its health check.
        type: str
        choices: ['fail', 'abandon']
        default: fail
notes:
  - In check mode the module describes the group and its hooks, runs the health checks (they do not change
    anything), and reports what it would complete without calling C(CompleteLifecycleAction).
  - Unlike M(community.aws.autoscaling_complete_lifecycle_action), an instance that is no longer waiting is not
    an error, and the task reports C(changed) honestly.
extends_documentation_fragment:
  - bluegreen.aws.progress
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Let every instance stuck in Pending:Wait (any hook, CodeDeploy's included) go InService
  bluegreen.aws.lifecycle_action:
    group_name: web-prod

- name: Continue only instances whose deep health check passes, replace the others
  bluegreen.aws.lifecycle_action:
    group_name: web-prod
    health_check:
      url: "http://{private_ip}:8080/health/deep"
      body_pattern: '"status":\s*"UP"'
      success_threshold: 2
      on_failure: abandon

- name: Give a slow bootstrap more time instead of completing
  bluegreen.aws.lifecycle_action:
    group_name: web-prod
    hook_name: warm-up
    instance_ids: ["i-0123456789abcdef0"]
    heartbeat: true

- name: Let draining instances terminate now
  bluegreen.aws.lifecycle_action:
    group_name: web-prod
    transition: terminating
    result: CONTINUE
"""

RETURN = r"""
instances:
  description: One entry per instance considered.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: The instance id.
      type: str
      returned: always
      sample: i-0123456789abcdef0
    lifecycle_state:
      description: The instance's lifecycle state when the module started, or null when it is not in the group.
      type: str
      returned: always
      sample: Pending:Wait
    action:
      description:
        - What the module did.
        - V(completed), V(heartbeat), V(abandoned_by_gate) (health check failed, O(health_check.on_failure=abandon)),
          V(would_complete) and V(would_heartbeat) (check mode), V(already_done) (left the wait state before the
          completion arrived), V(not_waiting), V(not_in_group), V(gate_failed), V(left_to_codedeploy) (CodeDeploy's
          automatic deployment to it runs and completes CodeDeploy's hook).
      type: str
      returned: always
      sample: completed
    result:
      description: The lifecycle action result sent, null when none was sent.
      type: str
      returned: always
      sample: CONTINUE
    hooks:
      description: The hooks the action was recorded for.
      type: list
      elements: str
      returned: always
      sample: ["CodeDeploy-managed-automatic-launch-deployment-hook-web-1234"]
    final_state:
      description: The lifecycle state after waiting, null when the module did not wait for this instance.
      type: str
      returned: always
      sample: InService
    deployment:
      description: With RV(instances[].action=left_to_codedeploy), CodeDeploy's deployment to the instance; else null.
      type: str
      returned: always
      sample: d-A1B2C3D4E
    gate:
      description: The health check verdict, null without O(health_check).
      type: dict
      returned: always
      sample: {"name": "http:i-0123456789abcdef0", "verdict": "pass", "reason": "1 URL(s) healthy", "details": {}}
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.bluegreen.aws.plugins.module_utils.lifecycle import HealthCheck
from ansible_collections.bluegreen.aws.plugins.module_utils.lifecycle import LifecycleError
from ansible_collections.bluegreen.aws.plugins.module_utils.lifecycle import Request
from ansible_collections.bluegreen.aws.plugins.module_utils.lifecycle import run
from ansible_collections.bluegreen.aws.plugins.module_utils.lifecycle import validate
from ansible_collections.bluegreen.aws.plugins.module_utils.progress import progress_file


def build_request(params):
    check = params["health_check"]
    return Request(
        group_name=params["group_name"],
        transition=params["transition"],
        hook_name=params["hook_name"],
        instance_ids=params["instance_ids"],
        result=params["result"],
        heartbeat=params["heartbeat"],
        wait=params["wait"] and not params["heartbeat"],
        wait_timeout=params["wait_timeout"],
        poll_interval=params["poll_interval"],
        health_check=(
            None if check is None else HealthCheck(**dict(check, expected_status=tuple(check["expected_status"])))
        ),
    )


def main():
    argument_spec = dict(
        group_name=dict(type="str", required=True, aliases=["autoscaling_group_name"]),
        hook_name=dict(type="str"),
        instance_ids=dict(type="list", elements="str", default=[]),
        transition=dict(type="str", choices=["launching", "terminating"], default="launching"),
        result=dict(type="str", choices=["CONTINUE", "ABANDON"], default="CONTINUE"),
        heartbeat=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
        poll_interval=dict(type="int", default=5),
        health_check=dict(
            type="dict",
            options=dict(
                url=dict(type="str", required=True),
                expected_status=dict(type="list", elements="int", default=[200]),
                body_pattern=dict(type="str"),
                timeout=dict(type="int", default=5),
                interval=dict(type="int", default=5),
                wait_timeout=dict(type="int", default=300),
                success_threshold=dict(type="int", default=1),
                failure_threshold=dict(type="int", default=3),
                on_failure=dict(type="str", choices=["fail", "abandon"], default="fail"),
            ),
        ),
        progress_file=dict(type="path"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)

    request = build_request(module.params)
    try:
        validate(request)
    except LifecycleError as e:
        module.fail_json(msg=str(e))

    retry = AWSRetry.jittered_backoff()
    client = module.client("autoscaling", retry_decorator=retry)
    ec2 = module.client("ec2", retry_decorator=retry) if request.health_check else None
    codedeploy = module.client("codedeploy", retry_decorator=retry)
    try:
        changed, instances, timed_out = run(
            client,
            request,
            check_mode=module.check_mode,
            ec2=ec2,
            codedeploy=codedeploy,
            progress=progress_file(module.params["progress_file"], "lifecycle_action"),
        )
    except LifecycleError as e:
        module.fail_json(msg=str(e))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to complete lifecycle actions of Auto Scaling group {request.group_name}")

    gate_failed = [i["instance_id"] for i in instances if i["action"] == "gate_failed"]
    if gate_failed:
        module.fail_json(
            msg=f"health_check failed for {', '.join(gate_failed)}; they were left waiting "
            "(set health_check.on_failure=abandon to replace them instead)",
            changed=changed,
            instances=instances,
        )
    if timed_out:
        module.fail_json(
            msg=f"wait_timeout: {', '.join(timed_out)} still in the wait state after {request.wait_timeout}s "
            "(another hook may still hold them; see instances[].hooks)",
            changed=changed,
            instances=instances,
        )
    for entry in instances:
        if entry["action"] == "not_in_group":
            module.warn(f"{entry['instance_id']} is not an instance of {request.group_name}: nothing done for it")
        if entry["action"] == "left_to_codedeploy":
            module.warn(
                f"{entry['instance_id']} is left to CodeDeploy: its deployment {entry['deployment']} (creator "
                "autoscaling) installs the group's last successful revision and completes CodeDeploy's launch hook "
                "when it ends; this task did not complete it"
            )
        if entry["action"] == "abandoned_by_gate":
            module.warn(f"{entry['instance_id']} failed its health check and was abandoned: {entry['gate']['reason']}")
    module.exit_json(changed=changed, instances=instances)


if __name__ == "__main__":
    main()
