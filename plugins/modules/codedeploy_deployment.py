#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: codedeploy_deployment
version_added: 0.1.0
short_description: Create, follow, gate and stop CodeDeploy deployments of an S3 revision
description:
  - Creates a deployment of an S3 revision and waits for it with a timeline of statuses.
  - A revision that is already the group's last successful deployment is not deployed again (C(changed=false)).
  - When the group already has an active deployment, O(on_active) decides. V(fail) names the active deployment.
    V(attach) follows it instead of creating one.
  - For groups whose ready option is STOP_DEPLOYMENT, O(ready_gates) are evaluated when the deployment is C(Ready).
    ContinueDeployment(READY_WAIT) is sent only when they pass; otherwise the deployment is stopped with rollback.
    With no ready gates the module continues at once, unless O(continue_ready=false), which returns with status
    C(Ready) and leaves the deployment waiting (for a person in the console, or a later run with O(on_active=attach)).
  - During the blue instances' termination wait, O(bake_gates) are evaluated for O(bake_seconds). A failing bake gate
    stops the deployment with rollback, so traffic goes back to blue.
  - On failure the module returns diagnostics naming the instance, lifecycle event, script, error code and log tail.
  - O(state=stopped) stops the group's active deployment with rollback.
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  application:
    description: The CodeDeploy application.
    type: str
    required: true
  deployment_group:
    description: The deployment group.
    type: str
    required: true
  state:
    description: V(present) deploys O(revision); V(stopped) stops the active deployment with rollback.
    type: str
    choices: ['present', 'stopped']
    default: present
  revision:
    description: The S3 revision. Required with O(state=present).
    type: dict
    suboptions:
      bucket:
        description: S3 bucket.
        type: str
        required: true
      key:
        description: S3 key.
        type: str
        required: true
      bundle_type:
        description: Bundle type.
        type: str
        choices: ['zip', 'tar', 'tgz']
        default: zip
      version:
        description: S3 object version.
        type: str
      etag:
        description: S3 ETag.
        type: str
  description:
    description: Description of the deployment.
    type: str
  on_active:
    description:
      - What to do when the group already has an active deployment, including one that someone else started between
        this module's look and its CreateDeployment (AWS refuses the create with DeploymentLimitExceededException).
    type: str
    choices: ['fail', 'attach']
    default: fail
  wait:
    description: Follow the deployment to its end.
    type: bool
    default: true
  continue_ready:
    description:
      - Whether to send ContinueDeployment(READY_WAIT) when the deployment is C(Ready) and no O(ready_gates) are given.
      - V(false) returns at C(Ready) with traffic still on the original instances; the group's ready wait time
        then decides (nobody continuing means C(Stopped)).
      - Ignored when O(ready_gates) are given (they decide).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to follow it before failing with what it was waiting for.
    type: int
    default: 3600
  poll_interval:
    description: Seconds between two polls.
    type: float
    default: 5
  bake_seconds:
    description: How long to evaluate O(bake_gates).
    type: int
    default: 300
  gate_interval:
    description: Seconds between two gate evaluations.
    type: float
    default: 5
extends_documentation_fragment:
  - bluegreen.aws.gates.codedeploy
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Deploy v42, reroute only when the green fleet passes its deep health check, bake 10 minutes
  bluegreen.aws.codedeploy_deployment:
    application: web
    deployment_group: web-prod
    revision:
      bucket: releases
      key: web/web-v42.zip
      etag: "{{ bundle.etag }}"
    description: "v42 by {{ lookup('env', 'USER') }}"
    ready_gates:
      - type: target_health
        target_group: web-prod
        min_healthy: 2
    bake_gates:
      - type: cloudwatch_alarm
        alarm_names: [web-prod-5xx]
    bake_seconds: 600

- name: Stop the active deployment and return traffic to blue
  bluegreen.aws.codedeploy_deployment:
    application: web
    deployment_group: web-prod
    state: stopped
"""

RETURN = r"""
deployment_id:
  description: The deployment followed, null when nothing was deployed or stopped.
  returned: always
  type: str
  sample: d-ABCDEF123
status:
  description: Its last status.
  returned: always
  type: str
  sample: Succeeded
timeline:
  description: Statuses, gate evaluations and the requests the module made, with seconds since the start.
  returned: always
  type: list
  elements: dict
  sample: [{"t": 0.0, "status": "Created"}, {"t": 31.2, "status": "Ready"}]
diagnostics:
  description: The failed lifecycle events, per instance.
  returned: always
  type: list
  elements: dict
  sample: [{"instance_id": "i-0123", "lifecycle_event": "ValidateService", "script": "scripts/validate_service.sh",
            "error_code": "ScriptFailed", "message": "...", "log_tail": "..."}]
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import ActiveDeployment
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import DeploymentError
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import Tracker
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import active_deployment
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import create_deployment
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import deployment_targets
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import diagnostics
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import last_successful_revision
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import retry
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import GATE_OPTIONS
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import GateError
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import build_gates


def main():
    argument_spec = dict(
        application=dict(type="str", required=True),
        deployment_group=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "stopped"], default="present"),
        revision=dict(
            type="dict",
            options=dict(
                bucket=dict(type="str", required=True),
                key=dict(type="str", required=True, no_log=False),  # an S3 object key, not a secret
                bundle_type=dict(type="str", choices=["zip", "tar", "tgz"], default="zip"),
                version=dict(type="str"),
                etag=dict(type="str"),
            ),
        ),
        description=dict(type="str"),
        on_active=dict(type="str", choices=["fail", "attach"], default="fail"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=3600),
        poll_interval=dict(type="float", default=5),
        ready_gates=dict(type="list", elements="dict", default=[], options=GATE_OPTIONS),
        bake_gates=dict(type="list", elements="dict", default=[], options=GATE_OPTIONS),
        bake_seconds=dict(type="int", default=300),
        continue_ready=dict(type="bool", default=True),
        gate_interval=dict(type="float", default=5),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec, supports_check_mode=True, required_if=[("state", "present", ["revision"])]
    )
    p = module.params
    backoff = retry()

    def client(service):
        return module.client(service, retry_decorator=backoff)

    codedeploy = client("codedeploy")
    result = dict(deployment_id=None, status=None, timeline=[], diagnostics=[])
    try:
        ready_gates = build_gates(p["ready_gates"], client, option="ready_gates")
        bake_gates = build_gates(p["bake_gates"], client, option="bake_gates")
        active = active_deployment(codedeploy, p["application"], p["deployment_group"])
        if p["state"] == "stopped":
            if active is None:
                module.exit_json(changed=False, **result)
            if not module.check_mode:
                codedeploy.stop_deployment(deploymentId=active, autoRollbackEnabled=True, aws_retry=True)
            result.update(deployment_id=active, status="Stopped")
            module.exit_json(changed=True, **result)

        changed = False
        if active is not None:
            deployment_id = follow_active(module, active, result)
        elif last_successful_revision(codedeploy, p["application"], p["deployment_group"]) == revision_key(p):
            result["status"] = "Succeeded"
            module.exit_json(changed=False, **result)
        elif module.check_mode:
            result["status"] = "WouldCreate"
            module.exit_json(changed=True, **result)
        else:
            try:
                deployment_id = create_deployment(
                    codedeploy, p["application"], p["deployment_group"], p["revision"], p["description"]
                )
                changed = True
            except ActiveDeployment as e:  # started by someone else between our look and our create
                deployment_id = follow_active(module, e.deployment_id, result)
        result.update(deployment_id=deployment_id)
        if not p["wait"] or module.check_mode:
            module.exit_json(changed=changed, **result)
        tracker = Tracker(
            codedeploy,
            deployment_id,
            ready_gates=ready_gates,
            continue_ready=p["continue_ready"],
            bake_gates=bake_gates,
            bake_seconds=p["bake_seconds"],
            poll=p["poll_interval"],
            timeout=p["wait_timeout"],
            gate_interval=p["gate_interval"],
        )
        try:
            info = tracker.run()
        except DeploymentError as e:
            result.update(e.result)
            module.fail_json(msg=str(e), changed=changed, **result)
        result.update(status=info["status"], timeline=tracker.timeline)
        if info["status"] not in ("Succeeded", "Ready"):
            result["diagnostics"] = diagnostics(deployment_targets(codedeploy, deployment_id))
            reason = (info.get("errorInformation") or {}).get("message") or "; ".join(
                e["reason"] for e in tracker.timeline if "reason" in e
            )
            module.fail_json(msg=f"deployment {deployment_id} {info['status']}: {reason}", changed=changed, **result)
        module.exit_json(changed=changed, **result)
    except GateError as e:
        module.fail_json(msg=str(e), **result)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to deploy to {p['application']}/{p['deployment_group']}", **result)


def follow_active(module, active, result):
    """The deployment to follow when the group already has an active one: on_active=fail stops here, naming it."""
    if module.params["on_active"] == "fail":
        module.fail_json(
            msg=f"deployment group {module.params['deployment_group']} already has an active deployment {active}; "
            "set on_active=attach to follow it, or state=stopped to stop it",
            **result,
        )
    return active


def revision_key(p):
    revision = p["revision"] or {}
    return (revision.get("bucket"), revision.get("key"), revision.get("version"), revision.get("etag"))


if __name__ == "__main__":
    main()
