#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: codedeploy_deployment_info
version_added: 0.1.0
short_description: Read a CodeDeploy deployment, its targets and their lifecycle events
description:
  - Reads one deployment by O(deployment_id), or the newest deployment of a deployment group.
  - The newest deployment of a group skips CodeDeploy's automatic deployments (creator C(autoscaling), made when a
    scale-out launches an instance, and C(CodeDeployAutoUpdate)); they deploy the last successful revision and are
    not releases.
  - Returns the deployment, every target with its lifecycle events, and the failed events as diagnostics.
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  deployment_id:
    description: The deployment. Mutually exclusive with O(application) and O(deployment_group).
    type: str
  application:
    description: The application, with O(deployment_group), to read its newest deployment.
    type: str
  deployment_group:
    description: The deployment group, with O(application).
    type: str
  include_targets:
    description: Read the targets and their lifecycle events too.
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: What happened in the last deployment of web-prod?
  bluegreen.aws.codedeploy_deployment_info:
    application: web
    deployment_group: web-prod
  register: last

- name: Show the hooks that failed
  ansible.builtin.debug:
    var: last.diagnostics
"""

RETURN = r"""
deployment:
  description: The deployment (CodeDeploy's GetDeployment fields in snake_case), null when the group has none.
  returned: always
  type: dict
  sample: {"deployment_id": "d-ABCDEF123", "status": "Succeeded"}
targets:
  description: The targets with their status, label (Blue or Green) and lifecycle events.
  returned: when O(include_targets=true)
  type: list
  elements: dict
  sample: [{"target_id": "i-0123", "status": "Succeeded", "instance_label": "Green", "lifecycle_events": []}]
diagnostics:
  description: The failed lifecycle events, per instance.
  returned: always
  type: list
  elements: dict
  sample: [{"instance_id": "i-0123", "lifecycle_event": "ValidateService", "script": "scripts/validate_service.sh"}]
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import deployment_targets
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import diagnostics
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import latest_deployment
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import retry


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            deployment_id=dict(type="str"),
            application=dict(type="str"),
            deployment_group=dict(type="str"),
            include_targets=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
        mutually_exclusive=[("deployment_id", "application"), ("deployment_id", "deployment_group")],
        required_together=[("application", "deployment_group")],
        required_one_of=[("deployment_id", "application")],
    )
    p = module.params
    client = module.client("codedeploy", retry_decorator=retry())
    try:
        deployment_id = p["deployment_id"] or latest_deployment(client, p["application"], p["deployment_group"])
        if deployment_id is None:
            module.exit_json(changed=False, deployment=None, targets=[], diagnostics=[])
        info = client.get_deployment(deploymentId=deployment_id, aws_retry=True)["deploymentInfo"]
        targets = deployment_targets(client, deployment_id) if p["include_targets"] else []
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Failed to read the CodeDeploy deployment")
    module.exit_json(
        changed=False,
        deployment=camel_dict_to_snake_dict(info),
        targets=[camel_dict_to_snake_dict(t) for t in targets],
        diagnostics=diagnostics(targets),
    )


if __name__ == "__main__":
    main()
