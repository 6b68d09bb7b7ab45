#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: codedeploy_bundle
version_added: 0.1.0
short_description: Pack a CodeDeploy revision directory into a deterministic zip
description:
  - Packs O(src) (an C(appspec.yml) and its files) into a zip whose bytes depend only on the files' paths, contents
    and executable bits. Entries are sorted, timestamps fixed, modes 0755 or 0644.
  - The same inputs therefore give the same archive and the same S3 ETag, so an unchanged release uploads nothing
    and M(bluegreen.aws.codedeploy_deployment) sees the same revision.
  - Runs where the files are (usually the controller, with C(delegate_to=localhost)).
author:
  - bluegreen.aws contributors (@bluegreen-aws)
options:
  src:
    description: The bundle directory; it must hold C(appspec.yml) at its top.
    type: path
    required: true
  dest:
    description:
      - The zip file to write. Rewritten only when its bytes would change.
      - Written through a temporary file created with C(tempfile.mkstemp) in the same directory (an unpredictable
        name, never a fixed C(.tmp)), flushed to disk, given O(mode), then renamed over O(dest) atomically, so a
        reader sees the old archive or the whole new one. A failure removes the temporary file and leaves O(dest)
        as it was.
    type: path
    required: true
  mode:
    description: The zip file's mode.
    type: raw
    default: "0644"
"""

EXAMPLES = r"""
- name: Pack the revision
  bluegreen.aws.codedeploy_bundle:
    src: build/web-bundle
    dest: build/web-1.4.2.zip
  delegate_to: localhost
  register: bundle

- name: Upload it (an unchanged bundle has the same ETag)
  amazon.aws.s3_object:
    bucket: releases
    object: web/web-1.4.2.zip
    src: build/web-1.4.2.zip
    mode: put
"""

RETURN = r"""
md5:
  description: MD5 of the archive, the S3 ETag of a single-part upload.
  returned: always
  type: str
  sample: 9e107d9d372bb6826bd81d3542a419d6
sha256:
  description: SHA-256 of the archive.
  returned: always
  type: str
  sample: d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592
size:
  description: Bytes.
  returned: always
  type: int
  sample: 2048
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bluegreen.aws.plugins.module_utils.bundle import build_zip
from ansible_collections.bluegreen.aws.plugins.module_utils.bundle import digests
from ansible_collections.bluegreen.aws.plugins.module_utils.bundle import write_atomic


def _initial_mode(mode, dest):
    """The mode the new archive has from its first byte on: O(mode) when it is octal, else the current file's, else
    0644 (a symbolic O(mode) is then applied by set_fs_attributes_if_different)."""
    if isinstance(mode, int):
        return mode
    if isinstance(mode, str) and mode.isdigit():
        return int(mode, 8)
    if os.path.exists(dest):
        return stat.S_IMODE(os.stat(dest).st_mode)
    return 0o644


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            mode=dict(type="raw", default="0644"),
        ),
        supports_check_mode=True,
    )
    src, dest = module.params["src"], module.params["dest"]
    if not os.path.isfile(os.path.join(src, "appspec.yml")):
        module.fail_json(msg=f"src: {src} has no appspec.yml at its top; render it with the bluegreen.aws.appspec role")
    try:
        data = build_zip(src)
    except ValueError as e:
        module.fail_json(msg=str(e))
    current = None
    if os.path.exists(dest):
        with open(dest, "rb") as handle:
            current = handle.read()
    changed = current != data
    if changed and not module.check_mode:
        try:
            write_atomic(dest, data, _initial_mode(module.params["mode"], dest))
        except OSError as e:
            module.fail_json(msg=f"dest: cannot write {dest}: {e}; it is left as it was")
    file_args = module.load_file_common_arguments(dict(path=dest, mode=module.params["mode"]))
    if not module.check_mode:
        changed = module.set_fs_attributes_if_different(file_args, changed)
    module.exit_json(changed=changed, dest=dest, **digests(data))


if __name__ == "__main__":
    main()
