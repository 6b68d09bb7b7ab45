# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Live progress of a long wait (module_utils/progress.py, plugin_utils/progress.py).
    DOCUMENTATION = r"""
options:
  progress_file:
    description:
      - A file on the host that runs the module to which every timeline event, gate evaluation and (CodeDeploy)
        per-instance lifecycle event is appended as one JSON line as it happens.
      - The collection's action plugin sets it when the module runs on the controller (a local connection, for example
        a play on C(localhost) or a task delegated to it), tails the file while the module runs and prints each event
        with its time, so C(ansible-playbook) and AWX job output show the progress live; it also prints the final
        timeline as a table. Leave it unset; set it only to keep the progress of a run somewhere yourself.
      - Writing progress never fails the module.
    type: path
"""
