#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: codedeploy_deployment_group_info
version_added: 0.1.0
short_description: Read a CodeDeploy deployment group and the Auto Scaling group that serves it now
description:
  - Reads one deployment group of an application.
  - After a successful blue/green deployment with C(COPY_AUTO_SCALING_GROUP) the group's original Auto Scaling
    group is gone and CodeDeploy's copy C(CodeDeploy_<group>_<deployment id>) serves the traffic;
    RV(auto_scaling_groups) names the groups the deployment group uses now, so provisioning can apply its settings
    to the right one (the P(bluegreen.aws.codedeploy_fleet#role) role does this).
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  application:
    description: The CodeDeploy application.
    type: str
    required: true
  name:
    description: The deployment group.
    type: str
    required: true
    aliases: [deployment_group]
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Which Auto Scaling group does web-prod deploy to now?
  bluegreen.aws.codedeploy_deployment_group_info:
    application: web
    name: web-prod
  register: group

- name: Show it
  ansible.builtin.debug:
    msg: "{{ group.auto_scaling_groups | first | default('none yet') }}"
"""

RETURN = r"""
exists:
  description: Whether the deployment group exists (false also when the application does not).
  returned: always
  type: bool
  sample: true
deployment_group:
  description:
    - The deployment group's settings, in the shape M(bluegreen.aws.codedeploy_deployment_group) returns.
    - Null when it does not exist.
  returned: always
  type: dict
  sample: {"deploymentConfigName": "CodeDeployDefault.OneAtATime", "autoScalingGroups": ["CodeDeploy_web-prod_d-A1"]}
auto_scaling_groups:
  description: The Auto Scaling groups the deployment group uses now; empty when it does not exist.
  returned: always
  type: list
  elements: str
  sample: ["CodeDeploy_web-prod_d-ABCDEFGHI"]
replacement:
  description: Whether the single Auto Scaling group is a copy CodeDeploy created during a blue/green deployment.
  returned: always
  type: bool
  sample: true
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import DeploymentGroupError
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import comparable
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import get_deployment_group
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import replacement_of
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import retry


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            application=dict(type="str", required=True),
            name=dict(type="str", required=True, aliases=["deployment_group"]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    client = module.client("codedeploy", retry_decorator=retry())
    try:
        info = get_deployment_group(client, p["application"], p["name"])
    except DeploymentGroupError:
        info = None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to read CodeDeploy deployment group {p['application']}/{p['name']}")
    group = None if info is None else comparable(info)
    names = [] if group is None else group["autoScalingGroups"]
    module.exit_json(
        changed=False,
        exists=group is not None,
        deployment_group=group,
        auto_scaling_groups=names,
        replacement=len(names) == 1 and replacement_of(p["name"], names[0]),
    )


if __name__ == "__main__":
    main()
