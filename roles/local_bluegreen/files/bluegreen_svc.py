"""Supervise one process: ``start NAME --dir D [--port P] -- ARGV...``, ``stop NAME --dir D``, ``status NAME --dir D``,
``pid NAME --dir D``.

``start`` daemonizes a small supervisor that runs ARGV, restarts it when it dies (with a pause), and
stops it on SIGTERM.  Idempotent: ``start`` of a running service with the same ARGV prints ``running``
and changes nothing; with other ARGV it restarts it.  Prints ``started``, ``restarted``, ``running``,
``stopped`` or ``absent`` for Ansible's ``changed_when``.  With ``--port``, ``start`` refuses to (re)start the
process while another process listens on that port (the process would fail to bind, and whoever holds the port
would answer in its place).  ``pid`` prints the pid of the supervised process itself, or ``absent``: two equal
answers around a health check show that the process that answered is the one that was started, not a restart.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time


def paths(directory, name):
    return os.path.join(directory, f"{name}.pid"), os.path.join(directory, f"{name}.json")


def child_pidfile(directory, name):
    return os.path.join(directory, f"{name}.child")


def listening(port, host="127.0.0.1"):
    """Whether something accepts connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_port_free(port, name, timeout=3.0):
    deadline = time.monotonic() + timeout
    while listening(port):
        if time.monotonic() > deadline:
            sys.exit(f"port {port} is in use by another process, not by {name}: {name} cannot listen there")
        time.sleep(0.1)


def alive(pidfile):
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def stop(directory, name, timeout=10.0):
    pidfile, _spec = paths(directory, name)
    pid = alive(pidfile)
    if not pid:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pidfile) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pidfile):
        os.kill(pid, signal.SIGKILL)
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    return True


def supervise(argv, pidfile, logfile, childfile):
    child = None
    stopping = False

    def on_term(*_args):
        nonlocal stopping
        stopping = True
        if child and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, on_term)
    with open(pidfile, "w") as f:
        f.write(str(os.getpid()))
    with open(logfile, "ab") as log:
        while not stopping:
            child = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            with open(childfile, "w") as f:
                f.write(str(child.pid))
            while child.poll() is None:
                try:
                    child.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
            if not stopping:
                time.sleep(1)  # crashed: restart after a pause
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    for path in (pidfile, childfile):
        if os.path.exists(path):
            os.unlink(path)


def child_pid(directory, name):
    """The supervised process's pid while it and its supervisor live, else None."""
    if not alive(paths(directory, name)[0]):
        return None
    return alive(child_pidfile(directory, name))


def start(directory, name, argv, port=None):
    pidfile, specfile = paths(directory, name)
    spec = json.dumps(argv)
    if alive(pidfile):
        with open(specfile) as f:
            if f.read() == spec:
                return "running"
        stop(directory, name)
        state = "restarted"
    else:
        state = "started"
    if port:
        wait_port_free(port, name)
    with open(specfile, "w") as f:
        f.write(spec)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            supervise(argv, pidfile, os.path.join(directory, f"{name}.log"), child_pidfile(directory, name))
            os._exit(0)
        os._exit(0)
    deadline = time.monotonic() + 5
    while not alive(pidfile):
        if time.monotonic() > deadline:
            sys.exit(f"{name} did not start; see {os.path.join(directory, name + '.log')}")
        time.sleep(0.02)
    return state


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["start", "stop", "status", "pid"])
    parser.add_argument("name")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, default=None, help="start: the port the process listens on")
    own, argv = sys.argv[1:], []
    if "--" in own:
        own, argv = own[: own.index("--")], own[own.index("--") + 1 :]
    args = parser.parse_args(own)
    os.makedirs(args.dir, exist_ok=True)
    if args.action == "start":
        if not argv:
            sys.exit("start needs the command after --")
        print(start(args.dir, args.name, argv, args.port))
    elif args.action == "stop":
        print("stopped" if stop(args.dir, args.name) else "absent")
    elif args.action == "pid":
        print(child_pid(args.dir, args.name) or "absent")
    else:
        pidfile, _spec = paths(args.dir, args.name)
        print("running" if alive(pidfile) else "absent")


if __name__ == "__main__":
    main()
