#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_abort
version_added: 0.2.0
short_description: Mark the running release of an application and environment aborted (an S3 object)
description:
  - Writes the abort mark C(<prefix>/<application>/<environment>/abort.json) in O(bucket), saying who, why, when,
    and which release it stops (its lock id and version).
  - A P(bluegreen.aws.traffic_switch#module) run with O(bluegreen.aws.traffic_switch#module:abort) set reads the mark
    before every step and gate evaluation, so it rolls back within one gate interval, in any state (pre-switch check,
    pause, pause until promoted, gate wait).
  - Without O(lock_id) and O(version), the mark names the release that holds the deploy lock
    (P(bluegreen.aws.release_lock#module)); with no lock and neither given, the module fails (nothing to abort).
  - The mark names one release, so it never aborts the next one; O(state=absent) removes it.
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  state:
    description: V(present) writes the mark, V(absent) removes it.
    type: str
    choices: ['present', 'absent']
    default: present
  reason:
    description: Why the release is aborted; shown in the aborted run's reason and its history record.
    type: str
  lock_id:
    description: The lock id of the release to abort. Defaults to the current holder's.
    type: str
  version:
    description: The version to abort. Defaults to the current holder's.
    type: str
  who:
    description: Who aborts; defaults to C(user@host) (and the AWX job when run there).
    type: str
notes:
  - Check mode reports the mark that would be written (or removed) without writing.
  - Supports diff mode.
extends_documentation_fragment:
  - bluegreen.aws.release
"""

EXAMPLES = r"""
- name: Abort the release of web in prod that is running now
  bluegreen.aws.release_abort:
    bucket: my-release-state
    application: web
    environment: prod
    reason: "5xx on the canary dashboards"

- name: Remove the mark
  bluegreen.aws.release_abort:
    bucket: my-release-state
    application: web
    environment: prod
    state: absent
"""

RETURN = r"""
key:
  description: The S3 key of the mark.
  returned: always
  type: str
  sample: bluegreen/web/prod/abort.json
mark:
  description: The mark written (or that would be), or removed with O(state=absent); null when there was none.
  returned: always
  type: dict
  contains:
    who:
      description: Who aborted.
      type: str
      sample: ops@laptop
    reason:
      description: O(reason).
      type: str
      sample: 5xx on the canary dashboards
    at:
      description: When (UTC, ISO 8601).
      type: str
      sample: "2026-01-01T12:03:00Z"
    lock_id:
      description: The lock id of the release it stops.
      type: str
      sample: 0b9e3c4a-1f2d-4c6e-9a8b-7d6e5f4a3b2c
    version:
      description: The version it stops.
      type: str
      sample: ABC-123-web-20260101120000
    application:
      description: O(application).
      type: str
      sample: web
    environment:
      description: O(environment).
      type: str
      sample: prod
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.bluegreen.aws.plugins.module_utils.release import STATE_ARGS
from ansible_collections.bluegreen.aws.plugins.module_utils.release import ReleaseError
from ansible_collections.bluegreen.aws.plugins.module_utils.release import ReleaseLock
from ansible_collections.bluegreen.aws.plugins.module_utils.release import Store
from ansible_collections.bluegreen.aws.plugins.module_utils.release import abort_key
from ansible_collections.bluegreen.aws.plugins.module_utils.release import iso
from ansible_collections.bluegreen.aws.plugins.module_utils.release import who_am_i

IDENTITY = ("lock_id", "version", "reason")


def main():
    argument_spec = dict(
        STATE_ARGS,
        state=dict(type="str", choices=["present", "absent"], default="present"),
        reason=dict(type="str"),
        lock_id=dict(type="str"),
        version=dict(type="str"),
        who=dict(type="str"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    client = module.client("s3", retry_decorator=AWSRetry.jittered_backoff())
    store = Store(client, p["bucket"], call_kwargs=dict(aws_retry=True))
    try:
        key = abort_key(p["prefix"], p["application"], p["environment"])
        found = store.get(key)
        current = found[0] if found else None
        if p["state"] == "absent":
            if current is not None and not module.check_mode:
                store.delete(key)
            module.exit_json(
                changed=current is not None, key=key, mark=current, diff=dict(before=current or {}, after={})
            )

        lock_id, version = p["lock_id"], p["version"]
        if not lock_id and not version:
            held = ReleaseLock(store, p["prefix"], p["application"], p["environment"]).read()
            if held is None:
                module.fail_json(
                    msg=f"nothing to abort: no release holds the deploy lock of {p['application']}/{p['environment']} "
                    "(give lock_id or version to mark a release that runs without the lock)",
                    key=key,
                    mark=current,
                )
            lock_id, version = held[0].get("id"), held[0].get("version")
        who = who_am_i(override=p["who"])
        mark = dict(
            application=p["application"],
            environment=p["environment"],
            lock_id=lock_id,
            version=version,
            reason=p["reason"],
            at=iso(None),
            **who,
        )
        if current and all(current.get(k) == mark[k] for k in IDENTITY):
            module.exit_json(changed=False, key=key, mark=current, diff=dict(before=current, after=current))
        if not module.check_mode:
            store.put(key, mark)
        module.exit_json(changed=True, key=key, mark=mark, diff=dict(before=current or {}, after=mark))
    except ReleaseError as e:
        module.fail_json(msg=str(e))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(
            e, msg=f"Failed to {p['state'] == 'absent' and 'remove' or 'write'} the abort mark in s3://{p['bucket']}"
        )


if __name__ == "__main__":
    main()
