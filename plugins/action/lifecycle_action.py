# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Runs bluegreen.aws.lifecycle_action and prints its progress as it happens (see plugin_utils/progress.py)."""

from __future__ import annotations

from ansible_collections.bluegreen.aws.plugins.plugin_utils.progress import ProgressAction


class ActionModule(ProgressAction):
    MODULE = "bluegreen.aws.lifecycle_action"
    TITLE = "lifecycle_action"
