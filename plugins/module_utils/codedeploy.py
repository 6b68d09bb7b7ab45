# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""CodeDeploy: applications (and, as the collection grows, deployment groups and deployments).

Plain Python on a CodeDeploy client wrapped with ``AWSRetry``; every call passes ``aws_retry=True``.
"""

from __future__ import annotations

try:
    from botocore.exceptions import ClientError
except ImportError:  # handled by AnsibleAWSModule
    ClientError = Exception


def _code(error):
    return error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""


def get_application(client, name):
    """The application as ``{"name", "id", "compute_platform", "tags"}``, or None when it does not exist."""
    try:
        info = client.get_application(applicationName=name, aws_retry=True)["application"]
    except ClientError as e:
        if _code(e) == "ApplicationDoesNotExistException":
            return None
        raise
    return {
        "name": info["applicationName"],
        "id": info.get("applicationId"),
        "compute_platform": info.get("computePlatform", "Server"),
    }


def application_arn(partition, region, account_id, name):
    return f"arn:{partition}:codedeploy:{region}:{account_id}:application:{name}"


def get_tags(client, arn):
    answer = client.list_tags_for_resource(ResourceArn=arn, aws_retry=True)
    return {t["Key"]: t["Value"] for t in answer.get("Tags", [])}


def tag_changes(current, wanted, purge):
    """(tags to set, keys to remove) to go from ``current`` to ``wanted``."""
    to_set = {k: v for k, v in (wanted or {}).items() if current.get(k) != v}
    to_remove = [k for k in current if purge and wanted is not None and k not in wanted]
    return to_set, to_remove


def ensure_application(client, name, state, tags, purge_tags, arn_of, check_mode):
    """Make the application present (with ``tags``) or absent; returns (changed, before, after)."""
    current = get_application(client, name)
    before = None
    if current is not None:
        before = dict(current, tags=get_tags(client, arn_of(name)))
    if state == "absent":
        if current is None:
            return False, None, None
        if not check_mode:
            client.delete_application(applicationName=name, aws_retry=True)
        return True, before, None

    if current is None:
        after = {"name": name, "id": None, "compute_platform": "Server", "tags": dict(tags or {})}
        if check_mode:
            return True, None, after
        created = client.create_application(
            applicationName=name,
            computePlatform="Server",
            tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            aws_retry=True,
        )
        after["id"] = created.get("applicationId")
        return True, None, after

    to_set, to_remove = tag_changes(before["tags"], tags, purge_tags)
    after = dict(before, tags={k: v for k, v in {**before["tags"], **to_set}.items() if k not in to_remove})
    if not to_set and not to_remove:
        return False, before, after
    if not check_mode:
        if to_set:
            client.tag_resource(
                ResourceArn=arn_of(name), Tags=[{"Key": k, "Value": v} for k, v in to_set.items()], aws_retry=True
            )
        if to_remove:
            client.untag_resource(ResourceArn=arn_of(name), TagKeys=to_remove, aws_retry=True)
    return True, before, after
