#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_history
version_added: 0.2.0
short_description: Write the record of one release (a JSON object in S3)
description:
  - Writes one JSON record per release, C(<prefix>/<application>/<environment>/history/<release_id>.json) in
    O(bucket), with the application, environment, version, artifact digests, who, start and end, strategy, from and
    to, result, reason, timeline and diagnostics. P(bluegreen.aws.release_history_info#module) reads them back (the
    last good release, the last N releases).
  - Call it at the start (O(result=in_progress)) and again at the end with the RV(release_id) it returned; the second
    call updates the same record (the fields given replace the stored ones, the others are kept).
  - Records never hold secrets; values under keys that look like secrets (password, token, secret, credential,
    authorization, api key, webhook, private) in O(artifacts), O(diagnostics), O(timeline) and O(extra) are replaced
    with C(REDACTED).
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  version:
    description: The version released. Required for a new record.
    type: str
  release_id:
    description:
      - The record to update (RV(release_id) of the call that created it). Omitted, a new record is created with the
        id C(<yyyyMMddHHmmss of started>-<version>), so the keys sort in time order.
    type: str
  result:
    description: How the release stands. A new record without it is V(in_progress).
    type: str
    choices: ['in_progress', 'success', 'failure', 'rolled_back', 'aborted']
  reason:
    description: Why it ended as it did.
    type: str
  strategy:
    description: How traffic moved (local, alb, codedeploy).
    type: str
  from_version:
    description: The version live before the release.
    type: str
  to_version:
    description: The version live after the release (O(version) on success, the old one after a rollback).
    type: str
  artifacts:
    description: What was released, by content (C(image), C(image_digest), C(bundle), C(bundle_sha256), ...).
    type: dict
  started:
    description: When the release started (ISO 8601 or epoch seconds). Defaults to now for a new record.
    type: str
  ended:
    description: When it ended. Defaults to now when O(result) is not V(in_progress).
    type: str
  timeline:
    description: What happened, in order (for example RV(bluegreen.aws.traffic_switch#module:timeline)).
    type: list
    elements: dict
  diagnostics:
    description: What explains a failure (gate results, CodeDeploy diagnostics).
    type: raw
  lock_id:
    description: The deploy lock id the release held.
    type: str
  extra:
    description: Anything else worth keeping (notifications sent, release tags, ...).
    type: dict
  who:
    description: Who released; defaults to C(user@host) (and the AWX job when run there).
    type: str
notes:
  - Check mode returns the record that would be written without writing it.
  - Supports diff mode.
extends_documentation_fragment:
  - bluegreen.aws.release
"""

EXAMPLES = r"""
- name: Record the start of the release
  bluegreen.aws.release_history:
    bucket: my-release-state
    application: web
    environment: prod
    version: "{{ release_version }}"
    strategy: local
    from_version: "{{ previous_version }}"
    artifacts:
      image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web
      image_digest: "sha256:4f3c..."
  register: release_record

- name: Record how it ended
  bluegreen.aws.release_history:
    bucket: my-release-state
    application: web
    environment: prod
    release_id: "{{ release_record.release_id }}"
    result: success
    to_version: "{{ release_version }}"
    timeline: "{{ switch.timeline }}"
"""

RETURN = r"""
release_id:
  description: The record's id; pass it as O(release_id) to update the record.
  returned: always
  type: str
  sample: 20260101120000-ABC-123-web-20260101115500
key:
  description: The record's S3 key.
  returned: always
  type: str
  sample: bluegreen/web/prod/history/20260101120000-ABC-123-web-20260101115500.json
record:
  description: The record as stored (in check mode, as it would be).
  returned: always
  type: dict
  sample: {"application": "web", "environment": "prod", "version": "ABC-123-web-20260101115500", "result": "success"}
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
from ansible_collections.bluegreen.aws.plugins.module_utils.release import VersionError
from ansible_collections.bluegreen.aws.plugins.module_utils.release import history_prefix
from ansible_collections.bluegreen.aws.plugins.module_utils.release import iso
from ansible_collections.bluegreen.aws.plugins.module_utils.release import release_id_for
from ansible_collections.bluegreen.aws.plugins.module_utils.release import scrub
from ansible_collections.bluegreen.aws.plugins.module_utils.release import who_am_i

FIELDS = (
    "version",
    "result",
    "reason",
    "strategy",
    "from_version",
    "to_version",
    "artifacts",
    "timeline",
    "diagnostics",
    "lock_id",
    "extra",
)
VOLATILE = ("updated",)


def main():
    argument_spec = dict(
        STATE_ARGS,
        version=dict(type="str"),
        release_id=dict(type="str"),
        result=dict(type="str", choices=["in_progress", "success", "failure", "rolled_back", "aborted"]),
        reason=dict(type="str"),
        strategy=dict(type="str"),
        from_version=dict(type="str"),
        to_version=dict(type="str"),
        artifacts=dict(type="dict"),
        started=dict(type="str"),
        ended=dict(type="str"),
        timeline=dict(type="list", elements="dict"),
        diagnostics=dict(type="raw"),
        lock_id=dict(type="str"),
        extra=dict(type="dict"),
        who=dict(type="str"),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_one_of=[("version", "release_id")],
    )
    p = module.params
    client = module.client("s3", retry_decorator=AWSRetry.jittered_backoff())
    store = Store(client, p["bucket"], call_kwargs=dict(aws_retry=True))
    try:
        prefix = history_prefix(p["prefix"], p["application"], p["environment"])
        release_id = p["release_id"]
        current = {}
        if release_id:
            found = store.get(f"{prefix}{release_id}.json")
            if found is None:
                module.fail_json(msg=f"no release record {release_id} under s3://{p['bucket']}/{prefix}")
            current = found[0]
        record = dict(current)
        if not current:
            started = iso(p["started"])
            release_id = release_id_for(started, p["version"])
            who = who_am_i(override=p["who"])
            record.update(application=p["application"], environment=p["environment"], started=started, **who)
        elif p["started"]:
            record["started"] = iso(p["started"])
        for field in FIELDS:
            if p[field] is not None:
                record[field] = (
                    scrub(p[field]) if field in ("artifacts", "timeline", "diagnostics", "extra") else p[field]
                )
        record.setdefault("result", "in_progress")
        if p["ended"]:
            record["ended"] = iso(p["ended"])
        elif record["result"] != "in_progress" and not record.get("ended"):
            record["ended"] = iso(None)
        record["release_id"] = release_id
        key = f"{prefix}{release_id}.json"
        changed = {k: v for k, v in record.items() if k not in VOLATILE} != {
            k: v for k, v in current.items() if k not in VOLATILE
        }
        if changed:
            record["updated"] = iso(None)
            if not module.check_mode:
                store.put(key, record)
        module.exit_json(
            changed=changed, release_id=release_id, key=key, record=record, diff=dict(before=current, after=record)
        )
    except (ReleaseError, VersionError) as e:
        module.fail_json(msg=str(e))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg=f"Failed to write the release record in s3://{p['bucket']}")


if __name__ == "__main__":
    main()
