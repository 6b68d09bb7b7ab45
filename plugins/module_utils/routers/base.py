# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The router protocol the rollout engine speaks: read weights, write weights (then read back to verify).

Weights are percentages per pool, ``{"blue": 90, "green": 10}``, always summing to 100 (or all 0).
"""

from __future__ import annotations

import os
import tempfile


class RouterError(Exception):
    """The router cannot be reached or refuses; the message names the parameter and the fix."""


class Router:
    def __init__(self, stable, canary):
        if not stable or not canary or stable == canary:
            raise RouterError(f"stable and canary must name two different pools, got {stable!r} and {canary!r}")
        self.stable = stable
        self.canary = canary

    @property
    def pools(self):
        return (self.stable, self.canary)

    def weights_for(self, canary_percent):
        return {self.stable: 100 - canary_percent, self.canary: canary_percent}

    def canary_weight(self, weights):
        return weights.get(self.canary, 0)

    def normalize(self, raw):
        """Raw router weights (any scale) as percentages of the two pools."""
        total = sum(raw.get(pool, 0) for pool in self.pools)
        if total == 0:
            return {pool: 0 for pool in self.pools}
        canary = round(100 * raw.get(self.canary, 0) / total)
        return self.weights_for(canary)

    def live(self, weights):
        """The pool carrying all the traffic, or None while it is split."""
        for pool in self.pools:
            if weights.get(pool) == 100:
                return pool
        return None

    def read(self):
        raise NotImplementedError

    def write(self, weights):
        raise NotImplementedError


def atomic_write(path, content):
    """Replace ``path`` with ``content`` in one rename, keeping its mode: readers see the old or the new file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
