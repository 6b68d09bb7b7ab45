#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_lock
version_added: 0.2.0
short_description: Take or release the deploy lock of an application and environment (an S3 object)
description:
  - One lock per O(application) and O(environment), the S3 object C(<prefix>/<application>/<environment>/lock.json)
    in O(bucket), holding who took it (C(user@host), and the AWX / Automation Platform job id and URL when the run is
    one, from the environment variables C(AWX_JOB_ID), C(tower_job_id), C(JOB_ID) and C(AWX_HOST)), the version, the
    operation, when, the expiry and a lock id.
  - O(state=present) creates the object with C(PutObject) C(If-None-Match=*). S3 answers 412 PreconditionFailed when it
    exists, so of two takers started at the same moment exactly one wins; the other fails naming the holder, its
    version and since when, before it writes anything else.
  - An expired lock (older than its O(ttl), judged on S3's clock) is taken over with C(PutObject If-Match) on the stale
    lock's ETag, so two takers of one stale lock cannot both win; the takeover is reported in RV(taken_over).
  - O(state=absent) releases the lock only for its holder's O(lock_id), with C(DeleteObject If-Match) on its ETag.
    A wrong lock id is refused, naming the holder. O(force=true) removes anybody's lock and needs a O(reason); the
    forced unlock is recorded under C(<prefix>/<application>/<environment>/unlocks/).
  - S3's 409 ConditionalRequestConflict (another conditional write in flight) is retried by reading the lock again.
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  state:
    description: V(present) takes the lock, V(absent) releases it.
    type: str
    choices: ['present', 'absent']
    default: present
  version:
    description: The version being released, shown to anybody who finds the lock taken.
    type: str
  operation:
    description: What the holder does (deploy, rollback, promote, ...), shown to anybody who finds the lock taken.
    type: str
    default: deploy
  ttl:
    description:
      - Seconds after which the lock counts as expired and may be taken over. V(0) means never (only the holder or a
        forced unlock removes it).
      - Make it longer than the longest release (the O(bluegreen.aws.traffic_switch#module:traffic_switch) timeout).
    type: int
    default: 3600
  lock_id:
    description:
      - The holder's lock id (RV(lock.id) of the task that took it). Needed to release; with O(state=present), a lock
        already held by this id is left as it is (V(changed=false)).
    type: str
  force:
    description: With O(state=absent), remove the lock whoever holds it. Needs O(reason); the unlock is recorded.
    type: bool
    default: false
  reason:
    description: Why the lock is forced open; recorded with the unlock.
    type: str
  who:
    description: Who takes or forces the lock; defaults to C(user@host) of the process that runs the module.
    type: str
notes:
  - Check mode reads the lock and reports what would happen (take, take over, refuse, release) without writing.
  - Supports diff mode (the lock object before and after).
  - Needs C(s3:GetObject), C(s3:PutObject) and C(s3:DeleteObject) on the keys under O(prefix).
extends_documentation_fragment:
  - bluegreen.aws.release
"""

EXAMPLES = r"""
- name: Take the deploy lock of web in prod
  bluegreen.aws.release_lock:
    bucket: my-release-state
    application: web
    environment: prod
    version: "{{ release_version }}"
    ttl: 3600
  register: release_lock_taken

- name: Release it (only this run's lock id can)
  bluegreen.aws.release_lock:
    bucket: my-release-state
    application: web
    environment: prod
    state: absent
    lock_id: "{{ release_lock_taken.lock.id }}"

- name: Force it open after a crashed run, with a recorded reason
  bluegreen.aws.release_lock:
    bucket: my-release-state
    application: web
    environment: prod
    state: absent
    force: true
    reason: "AWX job 4711 was killed mid-canary; traffic checked on blue"
"""

RETURN = r"""
key:
  description: The S3 key of the lock.
  returned: always
  type: str
  sample: bluegreen/web/prod/lock.json
lock:
  description: With O(state=present), the lock now held (in check mode, the lock that would be written).
  returned: when O(state=present)
  type: dict
  contains:
    id:
      description: The lock id; pass it as O(lock_id) to release the lock.
      type: str
      sample: 0b9e3c4a-1f2d-4c6e-9a8b-7d6e5f4a3b2c
    who:
      description: C(user@host) (or O(who)).
      type: str
      sample: deploy@awx-runner-1
    awx_job_id:
      description: The AWX / Automation Platform job id, when the run is one.
      type: str
      returned: when run by AWX
      sample: "4711"
    awx_job_url:
      description: The AWX job's URL, when AWX_HOST is known.
      type: str
      returned: when run by AWX
      sample: https://awx.example.com/#/jobs/playbook/4711
    version:
      description: O(version).
      type: str
      sample: ABC-123-web-20260101120000
    operation:
      description: O(operation).
      type: str
      sample: deploy
    created:
      description: When it was taken (UTC, ISO 8601).
      type: str
      sample: "2026-01-01T12:00:00Z"
    expires:
      description: When it expires (UTC), null when O(ttl=0).
      type: str
      sample: "2026-01-01T13:00:00Z"
    ttl:
      description: O(ttl).
      type: int
      sample: 3600
    application:
      description: O(application).
      type: str
      sample: web
    environment:
      description: O(environment).
      type: str
      sample: prod
taken_over:
  description: The expired lock this task replaced, null when it was free (or held by O(lock_id)).
  returned: when O(state=present)
  type: dict
  sample: {"id": "9f1c...", "who": "ci@runner-3", "version": "ABC-122-web-20251231235959"}
released:
  description: With O(state=absent), the lock removed (or that would be), null when there was none.
  returned: when O(state=absent)
  type: dict
  sample: {"id": "0b9e3c4a-1f2d-4c6e-9a8b-7d6e5f4a3b2c", "who": "deploy@awx-runner-1"}
forced_unlock:
  description: The record of a forced unlock of someone else's lock (who, reason, when, the lock), null otherwise.
  returned: when O(state=absent)
  type: dict
  sample: {"event": "forced_unlock", "who": "ops@laptop", "reason": "job killed", "at": "2026-01-01T12:30:00Z"}
holder:
  description: When the task fails because the lock is taken, the lock that holds it.
  returned: failure
  type: dict
  sample: {"id": "0b9e...", "who": "deploy@awx-runner-1", "version": "ABC-123-web-20260101120000"}
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.bluegreen.aws.plugins.module_utils.release import STATE_ARGS
from ansible_collections.bluegreen.aws.plugins.module_utils.release import LockHeld
from ansible_collections.bluegreen.aws.plugins.module_utils.release import ReleaseError
from ansible_collections.bluegreen.aws.plugins.module_utils.release import ReleaseLock
from ansible_collections.bluegreen.aws.plugins.module_utils.release import Store
from ansible_collections.bluegreen.aws.plugins.module_utils.release import describe_holder
from ansible_collections.bluegreen.aws.plugins.module_utils.release import who_am_i


def take(module, locker, who):
    p = module.params
    action, current = locker.plan(p["lock_id"])
    if action == "held_by_us":
        module.exit_json(
            changed=False, key=locker.key, lock=current, taken_over=None, diff=dict(before=current, after=current)
        )
    if action == "refused":
        module.fail_json(
            msg=f"the deploy lock of {p['application']}/{p['environment']} is taken: {describe_holder(current)}",
            holder=current,
        )
    lock = locker.new_lock(p["version"], p["operation"], p["ttl"], who)
    if module.check_mode:
        module.exit_json(
            changed=True,
            key=locker.key,
            lock=lock,
            taken_over=current if action == "takeover" else None,
            diff=dict(before=current or {}, after=lock),
        )
    lock, taken_over = locker.acquire(lock)
    if taken_over:
        module.warn(
            f"took over the expired deploy lock of {taken_over.get('who')} (version {taken_over.get('version')}, "
            f"since {taken_over.get('created')}, expired {taken_over.get('expires')})"
        )
    module.exit_json(
        changed=True, key=locker.key, lock=lock, taken_over=taken_over, diff=dict(before=taken_over or {}, after=lock)
    )


def release(module, locker, who):
    p = module.params
    released, record = locker.release(
        p["lock_id"], force=p["force"], reason=p["reason"], who=who, check=module.check_mode
    )
    if record:
        module.warn(f"forced unlock of the lock of {released.get('who')} (lock id {released.get('id')}): {p['reason']}")
    module.exit_json(
        changed=released is not None,
        key=locker.key,
        released=released,
        forced_unlock=record,
        diff=dict(before=released or {}, after={}),
    )


def main():
    argument_spec = dict(
        STATE_ARGS,
        state=dict(type="str", choices=["present", "absent"], default="present"),
        version=dict(type="str"),
        operation=dict(type="str", default="deploy"),
        ttl=dict(type="int", default=3600),
        lock_id=dict(type="str"),
        force=dict(type="bool", default=False),
        reason=dict(type="str"),
        who=dict(type="str"),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("force", True, ["reason"])],
    )
    p = module.params
    if p["ttl"] < 0:
        module.fail_json(msg=f"ttl must be 0 (never expires) or a number of seconds, got {p['ttl']}")
    if p["state"] == "absent" and not p["force"] and not p["lock_id"]:
        module.fail_json(msg="state=absent needs the holder's lock_id, or force=true with a reason")
    who = who_am_i(override=p["who"])
    client = module.client("s3", retry_decorator=AWSRetry.jittered_backoff())
    try:
        locker = ReleaseLock(
            Store(client, p["bucket"], call_kwargs=dict(aws_retry=True)),
            p["prefix"],
            p["application"],
            p["environment"],
        )
        if p["state"] == "present":
            take(module, locker, who)
        release(module, locker, who)
    except LockHeld as e:
        module.fail_json(msg=str(e), holder=e.holder)
    except ReleaseError as e:
        module.fail_json(msg=str(e))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(
            e, msg=f"Failed to {'take' if p['state'] == 'present' else 'release'} the deploy lock s3://{p['bucket']}"
        )


if __name__ == "__main__":
    main()
