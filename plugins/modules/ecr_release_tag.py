#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecr_release_tag
version_added: 0.2.0
short_description: Point release tags (the version, C(<env>-current)) at one ECR image digest
description:
  - Adds each of O(tags) to the image O(image_digest) in the ECR repository O(repository), with PutImage and the
    image's own manifest (nothing is pulled or pushed). A tag that already names the image is left alone.
  - A tag that names another image moves only where the repository lets it. Every tag is checked before the first
    write, so the release is either fully tagged or not at all; a tag ECR would refuse fails the task naming it.
  - With O(bluegreen.aws.ecr_release_tag#module:tags) such as C([<version>, <env>-current]) and a repository with
    C(imageTagMutability=IMMUTABLE_WITH_EXCLUSION) and the exclusion filter C(*-current), version tags stay
    immutable and C(<env>-current) follows the last good release.
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  repository:
    description: The ECR repository name.
    type: str
    required: true
  registry_id:
    description: The registry (account) that owns O(repository); the caller's by default.
    type: str
  image_digest:
    description: The image's digest, C(sha256:) and 64 hex digits (what the build pushed; the deploy used it).
    type: str
    required: true
  tags:
    description: The tags to point at O(image_digest).
    type: list
    elements: str
    required: true
notes:
  - Check mode reports which tags would move, and fails the same way on a tag ECR would refuse.
  - Supports diff mode (tag -> digest before and after).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Tag the released image with its version and prod-current
  bluegreen.aws.ecr_release_tag:
    repository: web
    image_digest: "{{ image_digest }}"
    tags:
      - "{{ version }}"
      - prod-current
"""

RETURN = r"""
moved:
  description: The tags that were (or would be, in check mode) moved or added, with the digest each named before.
  returned: always
  type: dict
  sample: {"prod-current": {"before": "sha256:1f0e...", "after": "sha256:9a8b..."}}
tags:
  description: Every tag of O(tags) and the digest it names after the run.
  returned: always
  type: dict
  sample: {"ABC-123-web-20260101120000": "sha256:9a8b...", "prod-current": "sha256:9a8b..."}
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.bluegreen.aws.plugins.module_utils.ecr import TagError
from ansible_collections.bluegreen.aws.plugins.module_utils.ecr import apply_tags
from ansible_collections.bluegreen.aws.plugins.module_utils.ecr import check_input


def main():
    argument_spec = dict(
        repository=dict(type="str", required=True),
        registry_id=dict(type="str"),
        image_digest=dict(type="str", required=True),
        tags=dict(type="list", elements="str", required=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    try:
        check_input(p["image_digest"], p["tags"])
    except TagError as e:
        module.fail_json(msg=str(e))
    client = module.client("ecr", retry_decorator=AWSRetry.jittered_backoff())
    try:
        moved = apply_tags(
            client,
            p["repository"],
            p["image_digest"],
            p["tags"],
            check_mode=module.check_mode,
            registry_id=p["registry_id"],
            aws_retry=True,
        )
    except TagError as e:
        module.fail_json(msg=str(e))
    except is_boto3_error_code("RepositoryNotFoundException") as e:
        module.fail_json_aws(e, msg=f"ECR repository {p['repository']} does not exist: create it or fix repository")
    except (
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
    ) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Could not tag {p['image_digest']} in ECR repository {p['repository']}")
    before = {tag: move["before"] for tag, move in moved.items()}
    module.exit_json(
        changed=bool(moved),
        moved=moved,
        tags={tag: p["image_digest"] for tag in p["tags"]},
        diff=dict(before=before, after={tag: p["image_digest"] for tag in moved}),
    )


if __name__ == "__main__":
    main()
