# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""ELBv2 lookups shared by the ALB router and the target-health gate."""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code


class TargetGroupNotFound(LookupError):
    """The named target group does not exist; the message names the parameter that gave it."""


def describe_target_group(client, value, parameter):
    """A target group by name or ARN; an unknown group raises TargetGroupNotFound naming ``parameter``."""
    params = {"TargetGroupArns": [value]} if value.startswith("arn:") else {"Names": [value]}
    try:
        return client.describe_target_groups(aws_retry=True, **params)["TargetGroups"][0]
    except is_boto3_error_code(["TargetGroupNotFound", "ValidationError"]) as e:
        raise TargetGroupNotFound(f"{parameter}: target group {value} not found in this account and region") from e
