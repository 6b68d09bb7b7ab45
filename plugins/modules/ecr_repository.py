#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecr_repository
version_added: 0.2.0
short_description: An ECR repository whose version tags are immutable while C(<env>-current) moves
description:
  - Creates, updates or deletes the ECR repository O(name), with its image tag mutability and wildcard exclusion
    filters, scan on push, the lifecycle policy and the repository's tags. Settings left unset are not managed.
  - With O(image_tag_mutability=immutable_with_exclusion) and O(exclusion_filters=[*-current]), a version tag once
    pushed always names the same image while C(<env>-current) follows the last good release
    (M(bluegreen.aws.ecr_release_tag)).
  - community.aws.ecs_ecr knows only C(mutable) and C(immutable), sets one of them on every run, and takes no tags;
    this module exists for those gaps.
  - New repositories are encrypted with AES256 (ECR's default).
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  name:
    description: The repository name.
    type: str
    required: true
  registry_id:
    description: The registry (account) that owns O(name); the caller's by default.
    type: str
  state:
    description: Whether the repository exists.
    type: str
    choices: [present, absent]
    default: present
  force_absent:
    description:
      - With O(state=absent), delete the repository together with its images. Without it a repository that holds
        images is not deleted and the task fails saying so.
    type: bool
    default: false
  image_tag_mutability:
    description:
      - Whether a tag can be moved to another image. The C(_with_exclusion) values invert the rule for the tags
        O(exclusion_filters) match.
      - Unset, a new repository gets ECR's default (C(mutable)) and an existing one is left as it is.
    type: str
    choices: [mutable, immutable, immutable_with_exclusion, mutable_with_exclusion]
  exclusion_filters:
    description:
      - Wildcard filters (C(*) any characters) of the tags excepted from O(image_tag_mutability); at most 5.
      - Required with the C(_with_exclusion) values, refused with the others.
    type: list
    elements: str
  scan_on_push:
    description: Whether each pushed image is scanned for vulnerabilities. Unset, not managed.
    type: bool
  lifecycle_policy:
    description: The lifecycle policy document (a dict with C(rules)). Unset, not managed.
    type: dict
  tags:
    description: The repository's tags. Unset, not managed.
    type: dict
  purge_tags:
    description: Remove the repository's tags that O(tags) does not name.
    type: bool
    default: true
notes:
  - Check mode reports the calls that would be made (RV(actions)) and makes none.
  - Supports diff mode.
  - Bad input (filters without an exclusion mutability, a filter ECR would refuse) fails before any AWS call.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Version tags immutable, <env>-current movable, images scanned, the last 30 kept
  bluegreen.aws.ecr_repository:
    name: web
    image_tag_mutability: immutable_with_exclusion
    exclusion_filters: ["*-current"]
    scan_on_push: true
    lifecycle_policy:
      rules:
        - rulePriority: 1
          description: keep the last 30 images
          selection: {tagStatus: any, countType: imageCountMoreThan, countNumber: 30}
          action: {type: expire}
    tags:
      app: web

- name: Remove the repository and its images
  bluegreen.aws.ecr_repository:
    name: web
    state: absent
    force_absent: true
"""

RETURN = r"""
repository:
  description: The repository after the run (before it, with O(state=absent)); empty when it does not exist.
  returned: always
  type: dict
  sample:
    name: web
    arn: arn:aws:ecr:eu-west-1:123456789012:repository/web
    uri: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web
    registry_id: "123456789012"
    image_tag_mutability: IMMUTABLE_WITH_EXCLUSION
    exclusion_filters: ["*-current"]
    scan_on_push: true
    lifecycle_policy: {"rules": []}
    tags: {"app": "web"}
actions:
  description: The ECR calls made (or that check mode would make), in order.
  returned: always
  type: list
  elements: str
  sample: ["put_image_tag_mutability", "tag_resource"]
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.bluegreen.aws.plugins.module_utils.ecr import TagError
from ansible_collections.bluegreen.aws.plugins.module_utils.ecr import check_repository_input
from ansible_collections.bluegreen.aws.plugins.module_utils.ecr import describe_repository
from ansible_collections.bluegreen.aws.plugins.module_utils.ecr import normalize_lifecycle_policy
from ansible_collections.bluegreen.aws.plugins.module_utils.ecr import planned_repository
from ansible_collections.bluegreen.aws.plugins.module_utils.ecr import reconcile_repository


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        registry_id=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        force_absent=dict(type="bool", default=False),
        image_tag_mutability=dict(
            type="str", choices=["mutable", "immutable", "immutable_with_exclusion", "mutable_with_exclusion"]
        ),
        exclusion_filters=dict(type="list", elements="str"),
        scan_on_push=dict(type="bool"),
        lifecycle_policy=dict(type="dict"),
        tags=dict(type="dict"),
        purge_tags=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    mutability = (p["image_tag_mutability"] or "").upper() or None
    try:
        check_repository_input(mutability, p["exclusion_filters"])
    except TagError as e:
        module.fail_json(msg=str(e))
    if p["lifecycle_policy"] is not None and not isinstance(p["lifecycle_policy"].get("rules"), list):
        module.fail_json(msg="lifecycle_policy has no list of rules: give {rules: [...]} as ECR documents it")
    client = module.client("ecr", retry_decorator=AWSRetry.jittered_backoff())
    if mutability and mutability.endswith("_WITH_EXCLUSION"):
        known = client.meta.service_model.operation_model("PutImageTagMutability").input_shape.members
        if "imageTagMutabilityExclusionFilters" not in known:
            module.fail_json(
                msg=f"image_tag_mutability: {mutability.lower()} needs a botocore that knows "
                "imageTagMutabilityExclusionFilters (2025 or later): upgrade boto3 and botocore"
            )
    call = dict(aws_retry=True)
    try:
        current = describe_repository(client, p["name"], p["registry_id"], **call)
        if p["state"] == "absent":
            actions = []
            if current is not None:
                actions.append("delete_repository")
                ids = dict(registryId=p["registry_id"]) if p["registry_id"] else {}
                images = client.list_images(repositoryName=p["name"], maxResults=1, **ids, **call).get("imageIds")
                if images and not p["force_absent"]:
                    module.fail_json(
                        msg=f"ECR repository {p['name']} still holds images: set force_absent=true to delete them "
                        "with it",
                        repository=current,
                    )
                if not module.check_mode:
                    client.delete_repository(repositoryName=p["name"], force=p["force_absent"], **ids, **call)
            module.exit_json(
                changed=bool(actions),
                actions=actions,
                repository=current or {},
                diff=dict(before=current or {}, after={}),
            )
        want = dict(
            image_tag_mutability=mutability,
            exclusion_filters=p["exclusion_filters"],
            scan_on_push=p["scan_on_push"],
            lifecycle_policy=normalize_lifecycle_policy(p["lifecycle_policy"]),
            tags={k: str(v) for k, v in p["tags"].items()} if p["tags"] is not None else None,
            purge_tags=p["purge_tags"],
        )
        actions = reconcile_repository(
            client, p["name"], want, current, check_mode=module.check_mode, registry_id=p["registry_id"], **call
        )
        after = current
        if actions:
            after = (
                planned_repository(p["name"], want, current)
                if module.check_mode
                else describe_repository(client, p["name"], p["registry_id"], **call)
            )
    except is_boto3_error_code("RepositoryNotEmptyException") as e:
        module.fail_json_aws(
            e,
            msg=f"ECR repository {p['name']} still holds images: set force_absent=true to delete them with it",
        )
    except (
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
    ) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Could not manage ECR repository {p['name']}")
    module.exit_json(
        changed=bool(actions),
        actions=[method for method, unused in actions],
        repository=after or {},
        diff=dict(before=current or {}, after=after or {}),
    )


if __name__ == "__main__":
    main()
