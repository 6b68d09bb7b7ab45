# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The gate options of module_utils/traffic.py GATE_OPTIONS. ansible-test needs literal strings here, so the
    # sub-options are written out for each option that takes gates; tests/unit/plugins/test_doc_fragments.py
    # fails when the copies or GATE_OPTIONS drift apart.

    # traffic_switch
    DOCUMENTATION = r"""
options:
  gates:
    description:
      - Gates evaluated before the switch and during every pause. All must pass; one failing aborts.
    type: list
    elements: dict
    default: []
    suboptions:
      type:
        description:
          - V(http) probes C(urls).
          - V(target_health) counts the healthy targets of C(target_group) (one DescribeTargetHealth a poll).
          - V(cloudwatch_alarm) fails when one of C(alarm_names) is in ALARM.
        type: str
        choices: ['http', 'target_health', 'cloudwatch_alarm']
        default: http
      name:
        description: A name for the timeline.
        type: str
      urls:
        description:
          - URLs to probe (typically the canary pool's health endpoints). Required for V(http).
          - In O(bluegreen.aws.codedeploy_deployment#module:ready_gates) and
            O(bluegreen.aws.codedeploy_deployment#module:bake_gates) a URL may hold
            C({private_ip}), C({instance_id}), C({public_ip}), C({private_dns}) or C({availability_zone}). It is then
            probed once per green (replacement) instance of the deployment, and every instance must pass.
        type: list
        elements: str
      expected_status:
        description: Healthy status codes (V(http)).
        type: list
        elements: int
        default: [200]
      body_pattern:
        description: Regular expression the body must match (V(http)).
        type: str
      timeout:
        description: Timeout of one probe in seconds (V(http)).
        type: float
        default: 5.0
      success_threshold:
        description: Consecutive good answers for the gate to pass (V(http)).
        type: int
        default: 1
      failure_threshold:
        description: Consecutive bad answers that fail the gate (V(http), V(target_health)).
        type: int
        default: 3
      latency_ceiling_ms:
        description: A good answer slower than this counts as bad (V(http)).
        type: float
      target_group:
        description: Target group name or ARN (V(target_health)).
        type: str
      min_healthy:
        description: Healthy targets needed (V(target_health)).
        type: int
        default: 1
      min_healthy_percent:
        description: Percentage of the group's targets that must be healthy (V(target_health)).
        type: int
        default: 100
      alarm_names:
        description: CloudWatch alarm names, at most 100 (V(cloudwatch_alarm)).
        type: list
        elements: str
      insufficient_data:
        description: How an alarm in INSUFFICIENT_DATA counts (V(cloudwatch_alarm)); V(pending) waits.
        type: str
        choices: ['pass', 'pending', 'fail']
        default: pending
"""

    # codedeploy_deployment
    CODEDEPLOY = r"""
options:
  ready_gates:
    description:
      - Gates that must pass, when the deployment is Ready, before traffic is rerouted.
    type: list
    elements: dict
    default: []
    suboptions:
      type:
        description:
          - V(http) probes C(urls).
          - V(target_health) counts the healthy targets of C(target_group) (one DescribeTargetHealth a poll).
          - V(cloudwatch_alarm) fails when one of C(alarm_names) is in ALARM.
        type: str
        choices: ['http', 'target_health', 'cloudwatch_alarm']
        default: http
      name:
        description: A name for the timeline.
        type: str
      urls:
        description:
          - URLs to probe (typically the canary pool's health endpoints). Required for V(http).
          - In O(bluegreen.aws.codedeploy_deployment#module:ready_gates) and
            O(bluegreen.aws.codedeploy_deployment#module:bake_gates) a URL may hold
            C({private_ip}), C({instance_id}), C({public_ip}), C({private_dns}) or C({availability_zone}). It is then
            probed once per green (replacement) instance of the deployment, and every instance must pass.
        type: list
        elements: str
      expected_status:
        description: Healthy status codes (V(http)).
        type: list
        elements: int
        default: [200]
      body_pattern:
        description: Regular expression the body must match (V(http)).
        type: str
      timeout:
        description: Timeout of one probe in seconds (V(http)).
        type: float
        default: 5.0
      success_threshold:
        description: Consecutive good answers for the gate to pass (V(http)).
        type: int
        default: 1
      failure_threshold:
        description: Consecutive bad answers that fail the gate (V(http), V(target_health)).
        type: int
        default: 3
      latency_ceiling_ms:
        description: A good answer slower than this counts as bad (V(http)).
        type: float
      target_group:
        description: Target group name or ARN (V(target_health)).
        type: str
      min_healthy:
        description: Healthy targets needed (V(target_health)).
        type: int
        default: 1
      min_healthy_percent:
        description: Percentage of the group's targets that must be healthy (V(target_health)).
        type: int
        default: 100
      alarm_names:
        description: CloudWatch alarm names, at most 100 (V(cloudwatch_alarm)).
        type: list
        elements: str
      insufficient_data:
        description: How an alarm in INSUFFICIENT_DATA counts (V(cloudwatch_alarm)); V(pending) waits.
        type: str
        choices: ['pass', 'pending', 'fail']
        default: pending

  bake_gates:
    description:
      - Gates evaluated during the termination wait; one failing stops the deployment with rollback.
    type: list
    elements: dict
    default: []
    suboptions:
      type:
        description:
          - V(http) probes C(urls).
          - V(target_health) counts the healthy targets of C(target_group) (one DescribeTargetHealth a poll).
          - V(cloudwatch_alarm) fails when one of C(alarm_names) is in ALARM.
        type: str
        choices: ['http', 'target_health', 'cloudwatch_alarm']
        default: http
      name:
        description: A name for the timeline.
        type: str
      urls:
        description:
          - URLs to probe (typically the canary pool's health endpoints). Required for V(http).
          - In O(bluegreen.aws.codedeploy_deployment#module:ready_gates) and
            O(bluegreen.aws.codedeploy_deployment#module:bake_gates) a URL may hold
            C({private_ip}), C({instance_id}), C({public_ip}), C({private_dns}) or C({availability_zone}). It is then
            probed once per green (replacement) instance of the deployment, and every instance must pass.
        type: list
        elements: str
      expected_status:
        description: Healthy status codes (V(http)).
        type: list
        elements: int
        default: [200]
      body_pattern:
        description: Regular expression the body must match (V(http)).
        type: str
      timeout:
        description: Timeout of one probe in seconds (V(http)).
        type: float
        default: 5.0
      success_threshold:
        description: Consecutive good answers for the gate to pass (V(http)).
        type: int
        default: 1
      failure_threshold:
        description: Consecutive bad answers that fail the gate (V(http), V(target_health)).
        type: int
        default: 3
      latency_ceiling_ms:
        description: A good answer slower than this counts as bad (V(http)).
        type: float
      target_group:
        description: Target group name or ARN (V(target_health)).
        type: str
      min_healthy:
        description: Healthy targets needed (V(target_health)).
        type: int
        default: 1
      min_healthy_percent:
        description: Percentage of the group's targets that must be healthy (V(target_health)).
        type: int
        default: 100
      alarm_names:
        description: CloudWatch alarm names, at most 100 (V(cloudwatch_alarm)).
        type: list
        elements: str
      insufficient_data:
        description: How an alarm in INSUFFICIENT_DATA counts (V(cloudwatch_alarm)); V(pending) waits.
        type: str
        choices: ['pass', 'pending', 'fail']
        default: pending
"""
