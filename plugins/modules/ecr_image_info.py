#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecr_image_info
version_added: 0.1.0
short_description: Find the ECR image a tag or a digest names (the digest a release pins and promotion reuses)
description:
  - Reads, with DescribeImages, the image that O(image_tag) or O(image_digest) names in the ECR repository
    O(repository). A release pins the digest a tag names at release time, so every instance runs the same image and
    a promotion to the next environment can require exactly that digest.
  - An image the repository does not hold is not an error, nor is a repository that does not exist (yet). Then
    RV(exists) is false, and RV(repository_exists) says which.
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
  image_tag:
    description: The tag to resolve. Exactly one of this and O(image_digest).
    type: str
  image_digest:
    description: The digest to look for, C(sha256:) and 64 hex digits. Exactly one of this and O(image_tag).
    type: str
notes:
  - Reads only; runs in check mode.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Pin the image the release tag names
  bluegreen.aws.ecr_image_info:
    repository: web
    image_tag: ABC-123-web-20261201120000
  register: image

- name: Refuse a promotion whose image is not in this environment's repository
  bluegreen.aws.ecr_image_info:
    repository: web
    image_digest: "{{ promoted_digest }}"
  register: promoted
  failed_when: not promoted.exists
"""

RETURN = r"""
repository_exists:
  description: Whether the repository exists.
  returned: always
  type: bool
  sample: true
exists:
  description: Whether the repository holds the image.
  returned: always
  type: bool
  sample: true
image_digest:
  description: The image's digest; empty when it does not exist.
  returned: always
  type: str
  sample: sha256:9a8b0c...
image_tags:
  description: All tags of the image.
  returned: always
  type: list
  elements: str
  sample: ["ABC-123-web-20261201120000", "stage-current"]
image_pushed_at:
  description: When the image was pushed (ISO 8601); empty when it does not exist.
  returned: always
  type: str
  sample: "2026-12-01T12:00:00+00:00"
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.bluegreen.aws.plugins.module_utils.ecr import TagError
from ansible_collections.bluegreen.aws.plugins.module_utils.ecr import check_digest
from ansible_collections.bluegreen.aws.plugins.module_utils.ecr import check_tag
from ansible_collections.bluegreen.aws.plugins.module_utils.ecr import find_image


def main():
    argument_spec = dict(
        repository=dict(type="str", required=True),
        registry_id=dict(type="str"),
        image_tag=dict(type="str"),
        image_digest=dict(type="str"),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("image_tag", "image_digest")],
        required_one_of=[("image_tag", "image_digest")],
        supports_check_mode=True,
    )
    p = module.params
    try:
        if p["image_digest"]:
            check_digest(p["image_digest"])
        else:
            check_tag(p["image_tag"], "image_tag")
    except TagError as e:
        module.fail_json(msg=str(e))
    client = module.client("ecr", retry_decorator=AWSRetry.jittered_backoff())
    try:
        image = find_image(
            client,
            p["repository"],
            tag=p["image_tag"],
            digest=p["image_digest"],
            registry_id=p["registry_id"],
            aws_retry=True,
        )
    except is_boto3_error_code("RepositoryNotFoundException"):
        module.exit_json(
            changed=False, repository_exists=False, exists=False, image_digest="", image_tags=[], image_pushed_at=""
        )
    except (
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
    ) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Could not read the image in ECR repository {p['repository']}")
    image = image or {}
    pushed = image.get("imagePushedAt")
    module.exit_json(
        changed=False,
        repository_exists=True,
        exists=bool(image),
        image_digest=image.get("imageDigest", ""),
        image_tags=sorted(image.get("imageTags") or []),
        image_pushed_at=pushed.isoformat() if hasattr(pushed, "isoformat") else str(pushed or ""),
    )


if __name__ == "__main__":
    main()
