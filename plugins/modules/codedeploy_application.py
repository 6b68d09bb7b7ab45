#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: codedeploy_application
version_added: 0.1.0
short_description: Manage AWS CodeDeploy applications for EC2/on-premises deployments
description:
  - Creates, tags and deletes a CodeDeploy application with the C(Server) compute platform (EC2 and Auto Scaling
    groups), the platform this collection's blue/green deployments use.
  - Idempotent; check mode and diff mode report what would change.
  - Deleting an application deletes its deployment groups too (CodeDeploy's behaviour).
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  name:
    description: Name of the application.
    type: str
    required: true
    aliases: ['application_name']
  state:
    description: Whether the application should exist.
    type: str
    choices: ['present', 'absent']
    default: present
  tags:
    description:
      - Tags of the application. Omitted, the tags are left as they are.
    type: dict
    aliases: ['resource_tags']
  purge_tags:
    description: Remove the tags that are not in O(tags) (only when O(tags) is given).
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The application the web service deploys as
  bluegreen.aws.codedeploy_application:
    name: web
    tags:
      team: platform

- name: Remove it (and its deployment groups)
  bluegreen.aws.codedeploy_application:
    name: web
    state: absent
"""

RETURN = r"""
application:
  description: The application after the task, null when it does not exist.
  returned: always
  type: dict
  contains:
    name:
      description: Its name.
      type: str
      returned: success
      sample: web
    id:
      description: Its id (null in check mode before creation).
      type: str
      returned: success
      sample: 0b9e3c4a-1f2d-4c6e-9a8b-7d6e5f4a3b2c
    compute_platform:
      description: Always C(Server).
      type: str
      returned: success
      sample: Server
    tags:
      description: Its tags.
      type: dict
      returned: success
      sample: {"team": "platform"}
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.iam import get_aws_account_info
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import application_arn
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import ensure_application
from ansible_collections.bluegreen.aws.plugins.module_utils.codedeploy import retry


def main():
    argument_spec = dict(
        name=dict(type="str", required=True, aliases=["application_name"]),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    name = module.params["name"]
    if not name or len(name) > 100:
        module.fail_json(msg="name must be 1 to 100 characters long")

    client = module.client("codedeploy", retry_decorator=retry())
    try:
        account_id, partition = get_aws_account_info(module)

        def arn_of(app):
            return application_arn(partition, module.region, account_id, app)

        changed, before, after = ensure_application(
            client,
            name,
            module.params["state"],
            module.params["tags"],
            module.params["purge_tags"],
            arn_of,
            module.check_mode,
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to manage CodeDeploy application {name}")
    module.exit_json(changed=changed, application=after, diff=dict(before=before or {}, after=after or {}))


if __name__ == "__main__":
    main()
