# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Where the release modules keep their state (module_utils/release.py STATE_ARGS).
    DOCUMENTATION = r"""
options:
  bucket:
    description: The S3 bucket of the release state (locks, abort marks, history); it must exist.
    type: str
    required: true
  prefix:
    description: Key prefix of everything the release modules keep in O(bucket).
    type: str
    default: bluegreen
  application:
    description: The application.
    type: str
    required: true
  environment:
    description: The environment (dev, stage, prod, ...).
    type: str
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

    # The abort option of traffic_switch and codedeploy_deployment (module_utils/release.py ABORT_OPTIONS).
    ABORT = r"""
options:
  abort:
    description:
      - Watch an operator's abort mark in S3 (written by P(bluegreen.aws.release_abort#module) or
        C(playbooks/abort.yml)). It is read at every step, gate evaluation and status poll (one C(GetObject) each);
        a mark for this release ends it as a failed gate would, whatever else is set -
        P(bluegreen.aws.traffic_switch#module) rolls all traffic back to the stable pool;
        P(bluegreen.aws.codedeploy_deployment#module) stops the deployment with rollback and follows the rollback to
        its end. The task fails with a reason naming who aborted, when and why.
      - The mark counts only for this release, so a stale mark never aborts the next one; it names the release's
        lock id and version. Give O(abort.lock_id) (from P(bluegreen.aws.release_lock#module)) or O(abort.version);
        with neither, a mark counts only when it was written after this task started.
      - A missing mark means not aborted. A failed read counts as not aborted (the gates still guard the canary's
        health, and an S3 hiccup must not roll back a healthy release) and is reported in the C(abort_check) result
        and as a warning; after O(abort.max_errors) failed reads in a row the run aborts, because an operator could
        no longer stop it.
      - Needs C(s3:GetObject) (and C(s3:ListBucket), so a missing mark reads as 404) on the mark's key.
    type: dict
    suboptions:
      bucket:
        description: The bucket of the release state (the one P(bluegreen.aws.release_lock#module) uses).
        type: str
        required: true
      key:
        description: The mark's key. Defaults to C(<prefix>/<application>/<environment>/abort.json).
        type: str
      prefix:
        description: Key prefix, as for P(bluegreen.aws.release_lock#module).
        type: str
        default: bluegreen
      application:
        description: The application (with O(abort.environment), instead of O(abort.key)).
        type: str
      environment:
        description: The environment.
        type: str
      lock_id:
        description: This release's lock id; a mark naming another lock id is ignored.
        type: str
      version:
        description: This release's version; a mark naming another version is ignored.
        type: str
      max_errors:
        description: Failed reads of the mark in a row after which the run aborts.
        type: int
        default: 3
      on_error:
        description: V(warn) counts a failed read as not aborted (until O(abort.max_errors)); V(abort) aborts at once.
        type: str
        choices: ['warn', 'abort']
        default: warn
"""
