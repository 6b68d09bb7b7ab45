#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: codedeploy_deployment_group
version_added: 0.1.0
short_description: Manage CodeDeploy deployment groups for EC2 Auto Scaling, blue/green or in-place
description:
  - Creates, updates (only what differs) and deletes a CodeDeploy deployment group on the C(Server) platform.
  - Blue/green on an Auto Scaling group is the default. The module refuses, before any AWS call that writes,
    the settings CodeDeploy accepts but that cannot work.
  - It refuses more than one target group for EC2 blue/green, because AllowTraffic then waits forever
    (seed 000, challenge 2).
  - It refuses V(copy_auto_scaling_group) without exactly one Auto Scaling group.
  - It refuses unknown deployment configs, missing roles or groups, and more than 10 alarms.
  - It warns when an Auto Scaling group uses health check type ELB (the warm-up flapping of seed 000, challenge 3)
    or a grace period shorter than O(app_warmup_seconds).
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  application:
    description: The CodeDeploy application (see M(bluegreen.aws.codedeploy_application)).
    type: str
    required: true
  name:
    description: Name of the deployment group.
    type: str
    required: true
  state:
    description: Whether the deployment group should exist.
    type: str
    choices: ['present', 'absent']
    default: present
  service_role:
    description: The IAM role CodeDeploy uses, by name or ARN. Required with O(state=present).
    type: str
  deployment_type:
    description: V(blue_green) replaces the instances, V(in_place) updates them.
    type: str
    choices: ['blue_green', 'in_place']
    default: blue_green
  auto_scaling_groups:
    description:
      - The Auto Scaling groups to deploy to.
      - With O(green_fleet=copy_auto_scaling_group), a successful deployment replaces the group with CodeDeploy's
        copy C(CodeDeploy_<name>_<deployment id>) and deletes the original. Re-running this task with the original
        name then keeps the copy (see RV(adopted_auto_scaling_group)) instead of failing on a group that no longer
        exists; the P(bluegreen.aws.codedeploy_fleet#role) role applies the fleet's settings to the copy.
    type: list
    elements: str
    default: []
  target_groups:
    description: Target group names. Exactly one for EC2 blue/green.
    type: list
    elements: str
    default: []
  deployment_config:
    description: A built-in or custom EC2 deployment configuration (minimum healthy hosts).
    type: str
    default: CodeDeployDefault.OneAtATime
  green_fleet:
    description: How the green instances are provisioned.
    type: str
    choices: ['copy_auto_scaling_group', 'discover_existing']
    default: copy_auto_scaling_group
  ready_action:
    description:
      - V(continue) reroutes traffic as soon as the green instances are ready.
      - V(stop) waits O(ready_wait_minutes) for a continue (for example by M(bluegreen.aws.codedeploy_deployment)'s
        gates), then stops the deployment.
    type: str
    choices: ['continue', 'stop']
    default: continue
  ready_wait_minutes:
    description: With O(ready_action=stop), how long to wait for the continue.
    type: int
    default: 0
  blue_termination:
    description: What happens to the blue instances after success.
    type: str
    choices: ['terminate', 'keep_alive']
    default: terminate
  termination_wait_minutes:
    description: Minutes before the blue instances are terminated (0-2880); the window for a fast rollback.
    type: int
    default: 5
  auto_rollback_events:
    description: Events that roll a deployment back. An empty list disables automatic rollback.
    type: list
    elements: str
    default: ['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_REQUEST']
  alarms:
    description: CloudWatch alarm names that stop the deployment (at most 10).
    type: list
    elements: str
    default: []
  ignore_alarm_poll_failure:
    description: Go on when the alarms cannot be read.
    type: bool
    default: false
  triggers:
    description: SNS notifications.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Trigger name.
        type: str
        required: true
      target_arn:
        description: SNS topic ARN.
        type: str
        required: true
      events:
        description: Events, for example C(DeploymentFailure).
        type: list
        elements: str
        required: true
  app_warmup_seconds:
    description: How long the application takes to become healthy; a shorter grace period on the groups is warned about.
    type: int
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Blue/green on the web group, traffic moved only after someone (or gates) continues
  bluegreen.aws.codedeploy_deployment_group:
    application: web
    name: web-prod
    service_role: CodeDeployServiceRole
    auto_scaling_groups: [web-prod]
    target_groups: [web-prod]
    ready_action: stop
    ready_wait_minutes: 30
    termination_wait_minutes: 60
    alarms: [web-prod-5xx]
    auto_rollback_events: [DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM, DEPLOYMENT_STOP_ON_REQUEST]
    app_warmup_seconds: 240
"""

RETURN = r"""
deployment_group:
  description: The deployment group's settings after the task (CodeDeploy's field names), null when absent.
  returned: always
  type: dict
  sample: {"deploymentConfigName": "CodeDeployDefault.OneAtATime", "autoScalingGroups": ["web-prod"]}
adopted_auto_scaling_group:
  description:
    - Set when O(auto_scaling_groups) names the original group but CodeDeploy has replaced it with its copy
      C(CodeDeploy_<group>_<deployment id>) after a successful deployment; the deployment group keeps the copy.
    - C(requested) is the name in O(auto_scaling_groups), C(current) the group that serves the deployment group.
      Null otherwise.
  returned: always
  type: dict
  sample: {"requested": "web-prod", "current": "CodeDeploy_web-prod_d-ABCDEFGHI"}
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import DeploymentGroupError
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import ensure_deployment_group
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import retry
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import validate_group


def main():
    argument_spec = dict(
        application=dict(type="str", required=True),
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        service_role=dict(type="str"),
        deployment_type=dict(type="str", choices=["blue_green", "in_place"], default="blue_green"),
        auto_scaling_groups=dict(type="list", elements="str", default=[]),
        target_groups=dict(type="list", elements="str", default=[]),
        deployment_config=dict(type="str", default="CodeDeployDefault.OneAtATime"),
        green_fleet=dict(
            type="str", choices=["copy_auto_scaling_group", "discover_existing"], default="copy_auto_scaling_group"
        ),
        ready_action=dict(type="str", choices=["continue", "stop"], default="continue"),
        ready_wait_minutes=dict(type="int", default=0),
        blue_termination=dict(type="str", choices=["terminate", "keep_alive"], default="terminate"),
        termination_wait_minutes=dict(type="int", default=5),
        auto_rollback_events=dict(
            type="list", elements="str", default=["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"]
        ),
        alarms=dict(type="list", elements="str", default=[]),
        ignore_alarm_poll_failure=dict(type="bool", default=False),
        triggers=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                name=dict(type="str", required=True),
                target_arn=dict(type="str", required=True),
                events=dict(type="list", elements="str", required=True),
            ),
        ),
        app_warmup_seconds=dict(type="int"),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ["service_role"])],
    )
    p = module.params
    if p["state"] == "present":
        try:
            validate_group(p)
        except DeploymentGroupError as e:
            module.fail_json(msg=str(e))

    backoff = retry()
    clients = [module.client(s, retry_decorator=backoff) for s in ("codedeploy", "iam", "autoscaling")]
    try:
        changed, before, after, warnings, adopted = ensure_deployment_group(*clients, p, module.check_mode)
    except DeploymentGroupError as e:
        module.fail_json(msg=str(e))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to manage CodeDeploy deployment group {p['application']}/{p['name']}")
    for warning in warnings:
        module.warn(warning)
    module.exit_json(
        changed=changed,
        deployment_group=after,
        adopted_auto_scaling_group=adopted,
        diff=dict(before=before or {}, after=after or {}),
    )


if __name__ == "__main__":
    main()
