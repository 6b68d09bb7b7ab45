# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Progress of long waits, as it happens, and timelines as people read them.

- :class:`ProgressFile` appends one JSON line per event to a file and flushes it at once. The engines
  (``rollout.Rollout``, ``codedeploy.Tracker``) call it for every timeline event, every gate evaluation and every
  per-instance lifecycle event; the collection's action plugins tail the file while the module runs and print each
  line (``ansible-playbook`` output, AWX job output). Writing progress never fails a release.
- :func:`describe` turns one event (a traffic ``timeline`` entry, a CodeDeploy one, a gate evaluation, a lifecycle
  event) into one line; :func:`table` turns a whole timeline into aligned lines: time, event, weights, gate verdicts.
"""

from __future__ import annotations

import json
import time


class ProgressFile:
    """``progress(entry)``: append ``entry`` (a dict) with the wall-clock time as one JSON line, flushed."""

    def __init__(self, path, source="", clock=time.time):
        self.path = path
        self.source = source
        self.clock = clock
        self.failed = None

    def __call__(self, entry):
        line = dict(entry, at=round(self.clock(), 3))
        if self.source:
            line.setdefault("source", self.source)
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(line, default=str, sort_keys=True) + "\n")
                f.flush()
        except OSError as e:  # progress is a view: a full disk or a removed file never stops a release
            self.failed = f"{type(e).__name__}: {e}"


def progress_file(path, source=""):
    """The engines' ``progress`` callable for the module option ``progress_file`` (None when it is not set)."""
    return ProgressFile(path, source) if path else None


def _weights(weights):
    return " ".join(f"{pool}={share}%" for pool, share in sorted((weights or {}).items()))


def _gates(gates):
    return ", ".join(f"{g.get('name')} {g.get('verdict')}" for g in gates or [])


def _clip(text, width):
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def describe(entry):
    """One event as one line (no time): what happened, the weights, the gates' verdicts, the reason."""
    if entry.get("kind") == "lifecycle":
        return (
            f"instance {entry.get('instance')} ({entry.get('label') or '?'}) {entry.get('lifecycle_event')}: "
            f"{entry.get('status')}"
        )
    name = entry.get("event") or entry.get("status") or "?"
    parts = [name]
    if entry.get("label"):
        parts.append(f"[{entry['label']}]")
    if entry.get("weights"):
        parts.append(_weights(entry["weights"]))
    if entry.get("gates"):
        parts.append(f"gates: {_gates(entry['gates'])}")
    for key in ("deployment_id", "wait_type", "instances"):
        if entry.get(key):
            parts.append(f"{key}={entry[key]}")
    if entry.get("reason"):
        parts.append(f"- {entry['reason']}")
    return " ".join(str(p) for p in parts)


def table(timeline, reason_width=100):
    """A timeline as aligned text lines: t (s), event, weights, gate verdicts, reason."""
    rows = [("t (s)", "event", "weights", "gates", "reason")]
    for entry in timeline or []:
        t = entry.get("t")
        rows.append(
            (
                f"{t:.1f}" if isinstance(t, (int, float)) else "",
                str(entry.get("event") or entry.get("status") or ""),
                _weights(entry.get("weights")),
                _gates(entry.get("gates")),
                _clip(entry.get("reason") or "", reason_width),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        cells = [row[0].rjust(widths[0])] + [row[i].ljust(widths[i]) for i in range(1, 4)] + [row[4]]
        lines.append("  ".join(cells).rstrip())
    return lines
