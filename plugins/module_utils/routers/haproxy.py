# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""HAProxy router: two servers of one backend, weighted through the runtime API (no reload).

Every write is also persisted to the configuration file (atomic replacement) so that a restart
keeps the weights.  The stats socket must be ``level admin``.
"""

from __future__ import annotations

import os
import re
import socket

from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import Router
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import RouterError
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import atomic_write

SECTIONS = (
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "peers",
    "resolvers",
    "userlist",
    "program",
    "mailers",
)


class HaproxyRouter(Router):
    kind = "haproxy"

    def __init__(self, socket_path, backend, stable, canary, config_path=None, timeout=5.0):
        super().__init__(stable, canary)
        if not socket_path:
            raise RouterError("haproxy.socket is required: the path of HAProxy's admin stats socket")
        if not os.path.exists(socket_path):
            raise RouterError(
                f"haproxy.socket: {socket_path} does not exist; is HAProxy running with "
                f"'stats socket {socket_path} level admin' in its global section?"
            )
        if config_path is not None and not os.path.isfile(config_path):
            raise RouterError(f"haproxy.config: {config_path} is not a file; give the configuration HAProxy runs with")
        self.socket_path = socket_path
        self.backend = backend
        self.config_path = config_path
        self.timeout = timeout

    def command(self, line):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.socket_path)
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
        except OSError as e:
            raise RouterError(f"haproxy.socket: cannot talk to HAProxy at {self.socket_path}: {e}") from e
        return b"".join(chunks).decode()

    def _server(self, pool):
        return f"{self.backend}/{pool}"

    def raw_weights(self):
        weights = {}
        for pool in self.pools:
            answer = self.command(f"get weight {self._server(pool)}").strip()
            match = re.match(r"^(\d+)", answer)
            if not match:
                raise RouterError(
                    f"haproxy: no server {self._server(pool)} ({answer or 'empty answer'}); "
                    "check haproxy.backend and the pool names"
                )
            weights[pool] = int(match.group(1))
        return weights

    def read(self):
        return self.normalize(self.raw_weights())

    def write(self, weights):
        # Raise the pool that gains first, so there is never a moment with both at 0.
        current = self.raw_weights()
        order = sorted(self.pools, key=lambda pool: weights[pool] - current.get(pool, 0), reverse=True)
        for pool in order:
            answer = self.command(f"set weight {self._server(pool)} {int(weights[pool])}").strip()
            if answer:
                raise RouterError(f"haproxy refused 'set weight {self._server(pool)} {weights[pool]}': {answer}")
        if self.config_path:
            self.persist(weights)

    def persist(self, weights):
        with open(self.config_path) as f:
            text = f.read()
        updated = set_config_weights(text, self.backend, weights)
        if updated == text:
            return
        atomic_write(self.config_path, updated)

    def stats(self):
        """HAProxy's ``show stat`` rows of this backend's pool servers, by pool name."""
        lines = self.command("show stat -1 4 -1").splitlines()
        if not lines or not lines[0].startswith("# "):
            raise RouterError(f"haproxy: unexpected 'show stat' answer: {lines[:1]}")
        header = lines[0][2:].split(",")
        found = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == self.backend and row.get("svname") in self.pools:
                found[row["svname"]] = row
        return found

    def health(self):
        """Per pool: HAProxy's view of the server (status such as UP, DOWN, MAINT, no check)."""
        return {
            pool: {"status": row["status"], "check_status": row["check_status"]} for pool, row in self.stats().items()
        }


def set_config_weights(text, backend, weights):
    """Set ``weight N`` on the server lines of ``backend`` in an HAProxy configuration text."""
    out = []
    inside = False
    for line in text.splitlines(keepends=True):
        words = line.split()
        if words and words[0] in SECTIONS:
            inside = words[0] in ("backend", "listen") and len(words) > 1 and words[1] == backend
        elif inside and len(words) >= 2 and words[0] == "server" and words[1] in weights:
            body = line.rstrip("\n")
            weight = f"weight {int(weights[words[1]])}"
            body = re.sub(r"\bweight\s+\d+", weight, body) if re.search(r"\bweight\s+\d+", body) else f"{body} {weight}"
            line = body + ("\n" if line.endswith("\n") else "")
        out.append(line)
    return "".join(out)
