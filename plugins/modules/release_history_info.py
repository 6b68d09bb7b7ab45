#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_history_info
version_added: 0.2.0
short_description: Read the release records of an application and environment
description:
  - Reads the records P(bluegreen.aws.release_history#module) wrote under
    C(<prefix>/<application>/<environment>/history/) in O(bucket), newest first.
  - RV(last_good) is the newest release whose result is C(success), found however far back it is (what a rollback or
    a promotion deploys); RV(releases) the last O(last) releases (of O(result) when given).
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  last:
    description: How many releases to return in RV(releases).
    type: int
    default: 10
  result:
    description: Only releases with this result in RV(releases).
    type: str
    choices: ['in_progress', 'success', 'failure', 'rolled_back', 'aborted']
extends_documentation_fragment:
  - bluegreen.aws.release
"""

EXAMPLES = r"""
- name: What is the last good release of web in stage?
  bluegreen.aws.release_history_info:
    bucket: my-release-state
    application: web
    environment: stage
  register: stage_history

- name: Deploy exactly that artifact
  ansible.builtin.debug:
    msg: "{{ stage_history.last_good.version }} {{ stage_history.last_good.artifacts.image_digest }}"
  when: stage_history.last_good
"""

RETURN = r"""
releases:
  description: The last O(last) release records, newest first, each with its S3 C(key).
  returned: always
  type: list
  elements: dict
  sample: [{"version": "ABC-123-web-20260101115500", "result": "success", "started": "2026-01-01T12:00:00Z"}]
last_good:
  description: The newest record with result C(success), null when there is none.
  returned: always
  type: dict
  sample: {"version": "ABC-123-web-20260101115500", "artifacts": {"image_digest": "sha256:4f3c..."}}
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.bluegreen.aws.plugins.module_utils.release import STATE_ARGS
from ansible_collections.bluegreen.aws.plugins.module_utils.release import ReleaseError
from ansible_collections.bluegreen.aws.plugins.module_utils.release import Store
from ansible_collections.bluegreen.aws.plugins.module_utils.release import read_history


def main():
    argument_spec = dict(
        STATE_ARGS,
        last=dict(type="int", default=10),
        result=dict(type="str", choices=["in_progress", "success", "failure", "rolled_back", "aborted"]),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    if p["last"] < 0:
        module.fail_json(msg=f"last must be 0 or more, got {p['last']}")
    client = module.client("s3", retry_decorator=AWSRetry.jittered_backoff())
    try:
        releases, last_good = read_history(
            Store(client, p["bucket"], call_kwargs=dict(aws_retry=True)),
            p["prefix"],
            p["application"],
            p["environment"],
            last=p["last"],
            result=p["result"],
        )
    except ReleaseError as e:
        module.fail_json(msg=str(e))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg=f"Failed to read the release records in s3://{p['bucket']}")
    module.exit_json(changed=False, releases=releases, last_good=last_good)


if __name__ == "__main__":
    main()
