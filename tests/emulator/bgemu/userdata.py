"""An instance runs its user data at launch, as cloud-init does on an EC2 instance.

When the instance's user data is a script (it starts with ``#!``), ``userdata_helper.py`` runs it once as root inside
the instance (its network and mount namespaces), in the background, with a stand-in IMDSv2 on 169.254.169.254
(instance id, address, region, zone) while it runs, and its output in the instance's
``/var/log/cloud-init-output.log``.  The instance has no internet: ``BG_USERDATA_ONLINE=0`` (the switch the
``ec2_userdata`` role's script reads) makes it print the downloads it would make, and the stand-in container engine is
first on ``PATH`` (a ``docker run`` of ``<repository>:<tag>`` runs the demo app at that tag, see docs/emulator.md).
Other user data (``#cloud-config``, MIME multipart) is not run.
"""

import base64
import json
import os
import subprocess
import sys
import threading

from bgemu import ecr
from bgemu import instances
from bgemu.agent import DEMO_APP
from bgemu.agent import ENGINE_DIR

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "userdata_helper.py")
RUNS = {}  # instance id -> Popen of its user-data run (tests and the reset look at them)


def script_of(instance):
    user_data = getattr(instance, "user_data", None)
    if user_data is None:
        return None
    raw = user_data.as_bytes() if hasattr(user_data, "as_bytes") else str(user_data).encode()
    try:
        text = base64.b64decode(raw, validate=True).decode()
    except ValueError:
        return None
    return text if text.startswith("#!") else None


def start(instance, machine):
    """Run the instance's user-data script in the background (nothing when it has none)."""
    script = script_of(instance)
    if script is None:
        return None
    instances._ip("-n", machine.netns, "addr", "add", "169.254.169.254/32", "dev", "lo", check=False)
    metadata = {
        "instance-id": instance.id,
        "local-ipv4": machine.ip,
        "placement/region": instance.ec2_backend.region_name,
        "placement/availability-zone": instance._placement.zone,
    }
    env = {
        "PATH": f"{ENGINE_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "BG_USERDATA_ONLINE": "0",
        "BGEMU_DEMO_APP": DEMO_APP,
        "BGEMU_PYTHON": sys.executable,
        **ecr.images_env(instance.ec2_backend.account_id),
    }
    proc = instances.spawn(
        instance.id,
        [sys.executable, HELPER, json.dumps(metadata)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    RUNS[instance.id] = proc

    def feed():
        try:
            proc.communicate(script.encode(), timeout=600)
        except (OSError, subprocess.SubprocessError):
            proc.kill()
        finally:
            RUNS.pop(instance.id, None)

    threading.Thread(target=feed, daemon=True).start()
    return proc
