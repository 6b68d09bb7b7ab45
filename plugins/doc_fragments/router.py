# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The router options shared by traffic_switch and traffic_info (module_utils/traffic.py ROUTER_ARGS).
    DOCUMENTATION = r"""
options:
  router:
    description: Which router splits the traffic.
    type: str
    choices: ['haproxy', 'nginx', 'alb']
    default: haproxy
  stable:
    description:
      - The pool that carries the traffic now. For HAProxy, the server name in O(haproxy.backend); for nginx, a key of
        O(nginx.servers); for ALB, a target group name or ARN.
    type: str
    required: true
  canary:
    description: The pool that receives the new version.
    type: str
    required: true
  haproxy:
    description: HAProxy router options.
    type: dict
    suboptions:
      socket:
        description: Path of HAProxy's stats socket, declared with C(level admin).
        type: path
        required: true
      backend:
        description: The backend holding one server per pool.
        type: str
        required: true
      config:
        description: HAProxy's configuration file; every weight change is written to it too, so a restart keeps it.
        type: path
  nginx:
    description: nginx router options.
    type: dict
    suboptions:
      upstream_file:
        description: The file holding the upstream block, included from nginx's C(http) block. Replaced atomically.
        type: path
        required: true
      upstream:
        description: Name of the upstream block.
        type: str
        required: true
      servers:
        description:
          - "The address (C(host:port)) of each pool, for example C({blue: 127.0.0.1:8081, green: 127.0.0.1:8082})."
        type: dict
        required: true
      conf:
        description: The main configuration for C(nginx -t) and C(nginx -s reload); nginx's default when omitted.
        type: path
      binary:
        description: The nginx executable.
        type: path
        default: nginx
  alb:
    description:
      - ALB router options. The forward action's weights between the O(stable) and O(canary) target groups are set;
        other actions, other target groups of the forward and C(TargetGroupStickinessConfig) are kept.
      - Target groups that do not exist, or that belong to another load balancer or VPC, are refused before any write.
      - Needs C(boto3). Credentials, region and C(endpoint_url) come from the usual AWS options, or from
        C(module_defaults) for C(group/bluegreen.aws.aws).
    type: dict
    suboptions:
      listener_arn:
        description: The listener.
        type: str
        required: true
      rule_arn:
        description: A rule of the listener to switch instead of its default action.
        type: str
"""
