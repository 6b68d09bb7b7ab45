# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Timelines and releases as people read them.

- ``switch.timeline | bluegreen.aws.timeline_table`` -> a list of aligned lines (time, event, weights, gate verdicts,
  reason), for ``ansible.builtin.debug``.
- ``record | bluegreen.aws.release_report`` -> one self-contained HTML page (inline CSS and SVG, no script, nothing
  fetched) for a release record (the fields of ``bluegreen.aws.release_history``); every value is escaped.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.bluegreen.aws.plugins.module_utils.progress import table
from ansible_collections.bluegreen.aws.plugins.module_utils.report import render


def _timeline_table(timeline):
    if not isinstance(timeline, list):
        raise AnsibleFilterError(f"timeline_table: expects a list of timeline entries, got {type(timeline).__name__}")
    return table([e for e in timeline if isinstance(e, dict)])


def _release_report(record):
    if not isinstance(record, dict):
        raise AnsibleFilterError(f"release_report: expects a release record (a dict), got {type(record).__name__}")
    return render(record)


class FilterModule:
    def filters(self):
        return {"timeline_table": _timeline_table, "release_report": _release_report}
