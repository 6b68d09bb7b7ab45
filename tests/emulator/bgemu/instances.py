"""Every EC2 instance the emulator launches is a small machine of its own on this host.

- **Its own address**: a network namespace ``bgemu<block>-<instance id>`` joined to the host by a veth pair; the
  instance end has ``10.231.<block>.<4 n + 2>/30``, the host end ``.<4 n + 1>``.  DescribeInstances returns the
  instance end as ``PrivateIpAddress``; 127.0.0.1 inside the namespace is the instance's own loopback.
- **Its own files**: a mount namespace, held by one idle process of the instance (its "holder"), where ``/etc``,
  ``/opt``, ``/var``, ``/srv`` and ``/root`` are overlays of the host's directories (the instance's changes go to
  ``/run/bgemu/inst/<block>-<instance id>``) and ``/tmp`` is a directory of its own.  What a hook script writes to
  ``/etc/<app>`` or ``/opt/codedeploy/<app>`` is seen by that instance only.
- ``run``/``spawn`` execute a command inside both namespaces, at the holder's root and working directory
  (``nsenter -t <holder> --root --wd``): entering a mount namespace by its file would put the command at the
  namespace's root mount, which is not the emulator's root when the emulator runs in a chroot.
- Terminating the instance (moto's ``Instance.terminate``: scale-in, a group deleted, a rollback removing green),
  the emulator's reset and its shutdown kill every process that runs in the namespace and remove the namespaces,
  the veth pair and the instance's files.

Each emulator process claims one ``/24`` block of 10.231.0.0/16 with an ``flock`` held for its lifetime, so
emulators running side by side (pytest-xdist workers) never share an address; claiming a block removes whatever a
killed emulator left in it.  Namespaces are made at launch, never at start-up.  This needs root.
"""

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from moto.ec2.models import instances as ec2_instances

PREFIX = "10.231"
SLOTS = 64  # /30s in a /24: instances alive at once per emulator
RUN = "/run/bgemu"
OVERLAID = ("/etc", "/opt", "/var", "/srv", "/root")
# what runs inside an instance lives here: the checkout (the agent's helper, the stand-in engine, the demo app) and
# the Python that runs them
KEEP = sorted(
    {
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
        os.path.realpath(sys.prefix),
        os.path.realpath(sys.base_prefix),
    }
)
LOCK = threading.RLock()
INSTANCES = {}  # instance id -> Machine
STATE = {"block": None, "lock_file": None}


class NotRoot(RuntimeError):
    pass


def require_root():
    if os.geteuid() != 0:
        raise NotRoot(
            "bgemu gives every EC2 instance its own network and mount namespace (ip netns, veth, overlay mounts), "
            "which needs root: run the emulator (and the tests that start it) as root"
        )


def _ip(*args, check=True, stdin=None):
    proc = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True, check=False, timeout=30)
    if check and proc.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _claim_block():
    """Claim a free /24 (flock held for the process's life) and clear what a dead holder left in it."""
    if STATE["block"] is not None:
        return STATE["block"]
    require_root()
    os.makedirs(os.path.join(RUN, "blocks"), exist_ok=True)
    for block in range(256):
        handle = open(os.path.join(RUN, "blocks", f"{block}.lock"), "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        STATE["block"], STATE["lock_file"] = block, handle
        _clear_block(block)
        return block
    raise RuntimeError("bgemu: every address block of 10.231.0.0/16 is held by a running emulator")


def _clear_block(block):
    tag = f"bgemu{block}-"
    for line in _ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(tag):
            _kill_netns(name)
            _ip("netns", "del", name, check=False)
    inst = os.path.join(RUN, "inst")
    for name in os.listdir(inst) if os.path.isdir(inst) else []:
        if name.startswith(f"{block}-"):
            shutil.rmtree(os.path.join(inst, name), ignore_errors=True)


def _pids_in(name):
    """The processes whose network namespace is ``name`` (what ``ip netns pids`` finds, without a process)."""
    try:
        target = os.stat(f"/run/netns/{name}")
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ns = os.stat(f"/proc/{entry}/ns/net")
            except OSError:
                continue
            if (ns.st_dev, ns.st_ino) == (target.st_dev, target.st_ino):
                found.append(int(entry))
    return found


def _kill_netns(name, grace=0.0):
    """Kill every process whose network namespace is ``name``; bounded (10 s)."""
    deadline = time.monotonic() + 10
    sig = signal.SIGTERM if grace else signal.SIGKILL
    soft_until = time.monotonic() + grace
    while True:
        pids = _pids_in(name)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if time.monotonic() > soft_until:
            sig = signal.SIGKILL
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {pids} in {name} survive SIGKILL")
        time.sleep(0.02)


class Machine:
    """One instance's namespaces, address and files."""

    def __init__(self, instance_id, block, slot):
        self.instance_id = instance_id
        self.slot = slot
        self.key = f"{block}-{instance_id}"
        self.netns = f"bgemu{self.key}"
        self.host_if = f"bge{block}h{slot}"
        self.host_ip = f"{PREFIX}.{block}.{4 * slot + 1}"
        self.ip = f"{PREFIX}.{block}.{4 * slot + 2}"
        self.holder = None
        self.root = os.path.join(RUN, "inst", self.key)

    def create(self):
        _ip("netns", "add", self.netns)
        _ip(
            "-batch",
            "-",
            stdin=(
                f"link add {self.host_if} type veth peer name eth0 netns {self.netns}\n"
                f"addr add {self.host_ip}/30 dev {self.host_if}\n"
                f"link set {self.host_if} up\n"
            ),
        )
        _ip(
            "-n",
            self.netns,
            "-batch",
            "-",
            stdin=(
                f"addr add {self.ip}/30 dev eth0\nlink set eth0 up\nlink set lo up\n"
                f"route add default via {self.host_ip}\n"
            ),
        )
        mounts = []
        for directory in OVERLAID:
            upper, work = (os.path.join(self.root, "overlay", directory.strip("/"), d) for d in ("upper", "work"))
            os.makedirs(upper)
            os.makedirs(work)
            mounts.append(
                f"mount -t overlay overlay -o lowerdir={directory},upperdir={upper},workdir={work} {directory}"
            )
        tmp = os.path.join(self.root, "tmp")
        os.makedirs(tmp)
        os.chmod(tmp, 0o1777)
        for path in KEEP:  # the emulator's own code and Python stay visible in the instance's /tmp
            if path.startswith("/tmp/"):
                inside = os.path.join(tmp, os.path.relpath(path, "/tmp"))
                os.makedirs(inside, exist_ok=True)
                mounts.append(f"mount --bind {path} {inside}")
        mounts.append(f"mount --rbind {tmp} /tmp")
        # the holder: in the instance's network namespace (destroy kills it with the rest), a mount namespace of its
        # own with the mounts above, at this process's root (a chroot's, if the emulator runs in one)
        self.holder = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", "--", "unshare", "--mount", "--propagation", "private"]
            + ["sh", "-ec", " && ".join(mounts + ["echo ready", "exec tail -f /dev/null"])],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd="/",
            start_new_session=True,
        )
        ready = self.holder.stdout.readline()
        if ready.strip() != b"ready":
            self.holder.kill()
            raise RuntimeError(f"bgemu: the mounts of {self.instance_id} failed: {self.holder.stderr.read()[-500:]!r}")

    def command(self, argv):
        return ["nsenter", "-t", str(self.holder.pid), "--net", "--mount", "--root", "--wd", "--", *argv]

    def destroy(self):
        try:
            _kill_netns(self.netns, grace=0.5)
        finally:
            _ip("netns", "del", self.netns, check=False)
            if os.path.exists(f"/sys/class/net/{self.host_if}"):  # normally gone with its peer
                _ip("link", "del", self.host_if, check=False)
            if self.holder is not None:
                self.holder.kill()
                self.holder.wait(timeout=10)
            shutil.rmtree(self.root, ignore_errors=True)


def launch(instance_id):
    """The instance's namespaces and address (made once); returns the Machine."""
    with LOCK:
        if instance_id in INSTANCES:
            return INSTANCES[instance_id]
        block = _claim_block()
        used = {m.slot for m in INSTANCES.values()}
        free = [s for s in range(SLOTS) if s not in used]
        if not free:
            raise RuntimeError(f"bgemu: more than {SLOTS} instances alive at once; terminate some")
        machine = Machine(instance_id, block, free[0])
        INSTANCES[instance_id] = machine
    try:
        machine.create()
    except BaseException:
        with LOCK:
            INSTANCES.pop(instance_id, None)
        machine.destroy()
        raise
    return machine


def get(instance_id):
    with LOCK:
        return INSTANCES.get(instance_id)


def address(instance_id):
    machine = get(instance_id)
    return machine.ip if machine else None


def terminate(instance_id):
    with LOCK:
        machine = INSTANCES.pop(instance_id, None)
    if machine is not None:
        machine.destroy()


def reset():
    """Every instance's processes, namespaces and files removed (emulator reset and shutdown)."""
    with LOCK:
        machines = list(INSTANCES.values())
        INSTANCES.clear()
    for machine in machines:
        machine.destroy()


def run(instance_id, argv, **kwargs):
    """subprocess.run of ``argv`` inside the instance."""
    check = kwargs.pop("check", False)
    return subprocess.run(get(instance_id).command(argv), check=check, **kwargs)


def spawn(instance_id, argv, **kwargs):
    """subprocess.Popen of ``argv`` inside the instance."""
    return subprocess.Popen(get(instance_id).command(argv), **kwargs)


# -- patches on moto's EC2 ------------------------------------------------------------------------------------
_original_run_instances = ec2_instances.InstanceBackend.run_instances
_original_terminate = ec2_instances.Instance.terminate


def run_instances(self, *args, **kwargs):
    reservation = _original_run_instances(self, *args, **kwargs)
    for instance in reservation.instances:
        machine = launch(instance.id)
        for nic in list(instance.nics.values())[:1]:  # the primary interface: the instance's own address
            nic.private_ip_address = machine.ip
            for entry in nic.private_ip_addresses:
                if entry.get("Primary"):
                    entry["PrivateIpAddress"] = machine.ip
        from bgemu import userdata  # noqa: PLC0415 - userdata imports this module

        userdata.start(instance, machine)
    return reservation


def terminate_instance(self):
    answer = _original_terminate(self)
    terminate(self.id)
    return answer


PATCHES = [
    (ec2_instances.InstanceBackend, "run_instances", run_instances),
    (ec2_instances.Instance, "terminate", terminate_instance),
]
