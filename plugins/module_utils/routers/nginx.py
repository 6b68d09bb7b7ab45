# -*- coding: utf-8 -*-

# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""nginx router: an upstream file with one weighted server per pool, switched by a checked reload.

A write renders the upstream block, replaces the file atomically, runs ``nginx -t`` and reloads;
when the test fails the previous file is put back and nothing is reloaded.  A reload makes nginx's
old workers close their idle keep-alive connections, which keep-alive clients see as errors
(see ``make bench``); prefer the HAProxy router where clients keep connections open.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import Router
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import RouterError
from ansible_collections.bluegreen.aws.plugins.module_utils.routers.base import atomic_write

SERVER = re.compile(r"^\s*server\s+(\S+)((?:\s+[^;]+)?);")


class NginxRouter(Router):
    kind = "nginx"

    def __init__(self, upstream_file, upstream, servers, stable, canary, conf=None, binary="nginx", timeout=30.0):
        super().__init__(stable, canary)
        missing = [pool for pool in self.pools if pool not in (servers or {})]
        if missing:
            raise RouterError(f"nginx.servers must give an address for each pool; missing {missing}")
        if not upstream_file or not os.path.isfile(upstream_file):
            raise RouterError(
                f"nginx.upstream_file: {upstream_file} is not a file; create it (the first write may render it) "
                "and include it from the http block"
            )
        resolved = shutil.which(binary) or (binary if os.path.isfile(binary) else None)
        if not resolved:
            raise RouterError(f"nginx.binary: {binary} not found; install nginx or give its path")
        if conf is not None and not os.path.isfile(conf):
            raise RouterError(f"nginx.conf: {conf} is not a file; give the main configuration nginx runs with")
        self.upstream_file = upstream_file
        self.upstream = upstream
        self.servers = dict(servers)
        self.conf = conf
        self.binary = resolved
        self.timeout = timeout

    def _nginx(self, *args):
        command = [self.binary] + (["-c", self.conf] if self.conf else []) + list(args)
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RouterError(f"nginx: {' '.join(command)} failed: {e}") from e
        return proc.returncode, (proc.stderr or proc.stdout).strip()

    def render(self, weights):
        lines = [f"upstream {self.upstream} {{"]
        for pool in self.pools:
            weight = int(weights[pool])
            # nginx weights start at 1: a pool at 0 is marked down instead.
            suffix = "down" if weight == 0 else f"weight={weight}"
            lines.append(f"    server {self.servers[pool]} {suffix};")
        lines.append("    keepalive 32;")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def raw_weights(self):
        with open(self.upstream_file) as f:
            text = f.read()
        by_address = {address: pool for pool, address in self.servers.items()}
        weights = {}
        for line in text.splitlines():
            match = SERVER.match(line)
            if not match or match.group(1) not in by_address:
                continue
            options = match.group(2).split()
            if "down" in options:
                weight = 0
            else:
                given = [o.split("=", 1)[1] for o in options if o.startswith("weight=")]
                weight = int(given[0]) if given else 1
            weights[by_address[match.group(1)]] = weight
        missing = [pool for pool in self.pools if pool not in weights]
        if missing:
            raise RouterError(
                f"nginx.upstream_file: {self.upstream_file} has no server line for {missing} "
                f"({', '.join(self.servers[p] for p in missing)})"
            )
        return weights

    def read(self):
        return self.normalize(self.raw_weights())

    def write(self, weights):
        if all(int(weights[pool]) == 0 for pool in self.pools):
            raise RouterError("nginx: refusing to mark every pool down")
        with open(self.upstream_file) as f:
            previous = f.read()
        content = self.render(weights)
        if content == previous:
            return
        atomic_write(self.upstream_file, content)
        rc, output = self._nginx("-t")
        if rc != 0:
            atomic_write(self.upstream_file, previous)
            raise RouterError(f"nginx -t rejected the new upstream, previous file restored: {output}")
        rc, output = self._nginx("-s", "reload")
        if rc != 0:
            atomic_write(self.upstream_file, previous)
            raise RouterError(f"nginx -s reload failed, previous file restored: {output}")
