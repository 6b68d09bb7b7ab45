# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The action side of live progress: run a long-waiting module with ``progress_file`` set, tail that file in a thread
while the module runs, and print each event (with its wall-clock time) through ``Display``, so it appears in
``ansible-playbook`` output and AWX job output as it happens; print the final timeline as a table.

Only where the module runs on the controller (a local connection): a remote module's file cannot be read while the
module blocks the connection. There the module runs as it always did, and the table is still printed at the end.
With a JSON stdout callback (machine-readable output), the lines go to stderr so stdout stays parseable.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time

from ansible import constants as C
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.bluegreen.aws.plugins.module_utils.progress import describe
from ansible_collections.bluegreen.aws.plugins.module_utils.progress import table

display = Display()


def _to_stderr():
    callback = str(C.config.get_config_value("DEFAULT_STDOUT_CALLBACK") or "")
    return callback.rsplit(".", maxsplit=1)[-1] in ("json", "jsonl")


class Tail(threading.Thread):
    """Print each JSON line appended to ``path`` until stopped; then print what is left."""

    def __init__(self, path, prefix, interval=0.2):
        super().__init__(daemon=True)
        self.path = path
        self.prefix = prefix
        self.interval = interval
        self.done = threading.Event()
        self.offset = 0
        self.printed = 0
        self.stderr = _to_stderr()

    def _drain(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return
        complete = chunk.rpartition("\n")[0]
        if not complete:
            return
        self.offset += len((complete + "\n").encode("utf-8"))
        for line in complete.split("\n"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            when = time.strftime("%H:%M:%S", time.localtime(entry.get("at", time.time())))
            display.display(f"{self.prefix} {when} {describe(entry)}", stderr=self.stderr)
            self.printed += 1

    def run(self):
        while not self.done.wait(self.interval):
            self._drain()

    def stop(self):
        self.done.set()
        self.join(timeout=5)
        self._drain()


class ProgressAction(ActionBase):
    """Base of the action plugins of the long-waiting modules; ``MODULE`` is the module's full name."""

    MODULE = ""
    TITLE = ""

    def _runs_here(self):
        return getattr(self._connection, "transport", "") in ("local", "ansible.builtin.local", "ansible.legacy.local")

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        host = (task_vars or {}).get("inventory_hostname", "")
        tail = None
        path = None
        if self._runs_here() and not self._task.async_val and not args.get("progress_file"):
            fd, path = tempfile.mkstemp(prefix="bluegreen-progress-", suffix=".jsonl")
            os.close(fd)
            args["progress_file"] = path
            tail = Tail(path, f"[{host}] {self.TITLE}")
            tail.start()
        try:
            result.update(self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars))
        finally:
            if tail is not None:
                tail.stop()
                os.unlink(path)
        timeline = result.get("timeline")
        if timeline:
            lines = table(timeline)
            display.display(
                "\n".join([f"[{host}] {self.TITLE} timeline:"] + [f"  {line}" for line in lines]),
                stderr=_to_stderr(),
            )
        return result
