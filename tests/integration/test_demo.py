"""`make demo-local` (tests/tools/demo.sh) with one of its ports held by another process (issue 16)."""

import os
import subprocess
import time

from dataplane import Processes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "tests", "tools", "demo.sh")


def test_demo_with_port_8082_taken_fails_within_seconds_naming_the_port():
    procs = Processes()
    try:
        # another demo's green slot, answering the very release this demo would give it (if a process of this
        # machine already holds 8082, this one exits and that one answers: the same situation)
        procs.app(8082, "v2")
        started = time.monotonic()
        proc = subprocess.run([DEMO], capture_output=True, text=True, timeout=300, check=False)
        seconds = time.monotonic() - started
    finally:
        procs.stop_all()
        subprocess.run(["make", "-C", ROOT, "--no-print-directory", "demo-stop"], capture_output=True, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "port 8082 is in use by another process" in output, output
    assert "v1 goes to slot" not in output  # it failed before anything was started or moved
    assert seconds < 60, f"the demo took {seconds:.0f} s to fail"
