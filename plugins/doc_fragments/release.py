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
