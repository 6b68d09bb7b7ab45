#!/usr/bin/python

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: traffic_info
version_added: 0.1.0
short_description: Read how a router splits traffic between two pools, which pool is live, and their health
description:
  - Reads the weights from the router itself (never from a file on the controller), so the answer is right even
    after a crashed or manual switch.
author:
  - bluegreen.aws contributors (@bluegreen-aws)
extends_documentation_fragment:
  - bluegreen.aws.router
  - amazon.aws.common.modules
  - amazon.aws.region.modules
"""

EXAMPLES = r"""
- name: Which slot is live?
  bluegreen.aws.traffic_info:
    haproxy: {socket: /run/haproxy/admin.sock, backend: app}
    stable: blue
    canary: green
  register: traffic

- name: Deploy into the slot that is not live
  ansible.builtin.debug:
    msg: "next slot: {{ 'green' if traffic.live == 'blue' else 'blue' }}"
"""

RETURN = r"""
weights:
  description: Percent per pool.
  returned: always
  type: dict
  sample: {"blue": 100, "green": 0}
live:
  description: The pool carrying all the traffic, null while the traffic is split between the pools.
  returned: always
  type: str
  sample: blue
health:
  description: The router's view of each pool (for HAProxy, the server status and last check).
  returned: always
  type: dict
  sample: {"blue": {"status": "UP", "check_status": "L7OK"}, "green": {"status": "DOWN", "check_status": "L7STS"}}
router:
  description: The router type.
  returned: always
  type: str
  sample: haproxy
stable:
  description: The first pool, as given.
  returned: always
  type: str
  sample: blue
canary:
  description: The second pool, as given.
  returned: always
  type: str
  sample: green
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import RouterError
from ansible_collections.bluegreen.aws.plugins.module_utils.traffic import AWS_ERRORS
from ansible_collections.bluegreen.aws.plugins.module_utils.traffic import ROUTER_ARGS
from ansible_collections.bluegreen.aws.plugins.module_utils.traffic import aws_clients
from ansible_collections.bluegreen.aws.plugins.module_utils.traffic import build_router
from ansible_collections.bluegreen.aws.plugins.module_utils.traffic import describe


def main():
    module = AnsibleAWSModule(argument_spec=dict(ROUTER_ARGS), supports_check_mode=True, check_boto3=False)
    try:
        info = describe(build_router(module.params, aws_clients(module)))
    except RouterError as e:
        module.fail_json(msg=str(e))
    except AWS_ERRORS as e:  # router=alb
        module.fail_json_aws(e, msg="Failed to read the router's weights")
    module.exit_json(changed=False, **info)


if __name__ == "__main__":
    main()
