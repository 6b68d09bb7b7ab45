"""A stand-in CodeDeploy agent: runs a revision's lifecycle events inside an instance (bgemu.instances).

For one event of one deployment target, as the real agent (aws-codedeploy-agent, ``hook_executor.rb``) does it:

- **DownloadBundle**: the revision is read from the emulated S3 in-process (bucket, key, and the ``version`` /
  ``eTag`` given to CreateDeployment), unpacked inside the instance to
  ``/opt/codedeploy-agent/deployment-root/<deployment group id>/<deployment id>/deployment-archive``;
- **Install**: the ``files:`` of its ``appspec.yml`` are copied to their ``destination`` (``file_exists_behavior``
  OVERWRITE or RETAIN; DISALLOW fails on a file already there);
- a scriptable event runs each script its ``hooks:`` list, in order, inside the instance's namespaces, as ``runas``
  (``runuser``), with ``LIFECYCLE_EVENT``, ``DEPLOYMENT_ID``, ``APPLICATION_NAME``, ``DEPLOYMENT_GROUP_NAME``,
  ``DEPLOYMENT_GROUP_ID`` and the stand-in container engine first on ``PATH``; a script past its ``timeout`` gets
  SIGTERM on its process group.  ApplicationStop, BeforeBlockTraffic and AfterBlockTraffic run the scripts of the
  instance's last successful revision (none: ApplicationStop is Skipped, the others run nothing);
- the outcome is what BatchGetDeploymentTargets shows: ``Succeeded`` with errorCode ``Success``, or ``Failed`` with
  errorCode ``ScriptFailed`` / ``ScriptTimedOut`` / ``ScriptMissing`` / ``UnknownError``, ``scriptName``, the
  agent's message and ``logTail``: the last 2,048 characters of ``LifecycleEvent - …``, ``Script - …``,
  ``[stdout]…`` and ``[stderr]…`` lines.

Hook timeouts follow the time scale, but a script runs in real time, so it is given at least
``min(timeout, HOOK_FLOOR_SECONDS)`` real seconds.
"""

import io
import json
import os
import random
import signal
import string
import subprocess
import sys
import threading
import zipfile

from bgemu import ecr
from bgemu import instances
from bgemu.clock import CLOCK

ROOT = "/opt/codedeploy-agent/deployment-root"
ENGINE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine")
HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent_helper.py")
DEMO_APP = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "roles",
    "local_bluegreen",
    "files",
    "demo_app.py",
)
PREVIOUS = {"ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"}  # scripts of the last successful revision
SCRIPTABLE = {
    "ApplicationStop",
    "BeforeInstall",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
    "BeforeBlockTraffic",
    "AfterBlockTraffic",
}
HOOK_FLOOR_SECONDS = 20.0
LOG_TAIL = 2048
LOCK = threading.RLock()
LAST = {}  # instance id -> the archive dir (in the instance) of its last successful revision, and its appspec
CURRENT = {}  # (instance id, deployment id) -> {"archive", "appspec"} once DownloadBundle ran
FAULTS = []  # [{"event", "key" (None: any), "count" (None: no limit), "message"}]


class Outcome:
    def __init__(self, status, diagnostics=None):
        self.status = status
        self.diagnostics = diagnostics

    def __repr__(self):
        return f"Outcome({self.status}, {self.diagnostics})"


class ScriptLog:
    """The agent's log tail: whole entries, the newest ones that fit in 2,048 characters."""

    def __init__(self):
        self.entries = []
        self.lock = threading.Lock()

    def append(self, entry):
        with self.lock:
            self.entries.append(entry)
            total, keep = 0, 0
            for item in reversed(self.entries):
                if total + len(item) >= LOG_TAIL:
                    break
                total, keep = total + len(item), keep + 1
            self.entries = self.entries[len(self.entries) - keep :]

    def text(self):
        with self.lock:
            return "".join(self.entries)


def hook_seconds(timeout):
    timeout = float(timeout or 3600)
    return max(CLOCK.seconds(timeout), min(timeout, HOOK_FLOOR_SECONDS))


def reset():
    with LOCK:
        LAST.clear()
        CURRENT.clear()
        FAULTS.clear()


def reset_faults():
    with LOCK:
        FAULTS.clear()


def add_fault(fault):
    with LOCK:
        FAULTS.append(
            {
                "event": fault["event"],
                "key": fault.get("key"),
                "count": fault.get("count"),
                "message": fault.get("message") or f"injected by the emulator: {fault['event']} fails",
                "sleep": float(fault.get("sleep") or 0),
            }
        )
        return list(FAULTS)


def _fault(event, key):
    with LOCK:
        for fault in FAULTS:
            if fault["event"] == event and fault["key"] in (None, key) and fault["count"] != 0:
                if fault["count"] is not None:
                    fault["count"] -= 1
                return fault
    return None


# -- the revision -------------------------------------------------------------------------------------------
def fetch(account, revision):
    """The revision's bytes from the emulated S3 (bucket, key, version, eTag as CreateDeployment got them)."""
    from moto.s3.models import s3_backends  # imported when first needed: the emulator starts faster

    location = (revision or {}).get("s3Location") or {}
    backend = s3_backends[account]["aws"]
    key = backend.get_object(location.get("bucket"), location.get("key"), location.get("version"))
    if key is None:
        raise LookupError(f"s3://{location.get('bucket')}/{location.get('key')} does not exist")
    etag = (location.get("eTag") or "").strip('"')
    if etag and key.etag.strip('"') != etag:
        raise LookupError(
            f"s3://{location['bucket']}/{location['key']}: its ETag {key.etag.strip(chr(34))} is not the revision's "
            f"eTag {etag}"
        )
    return bytes(key.value)


def parse_appspec(data):
    import yaml

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        name = next((n for n in ("appspec.yml", "appspec.yaml") if n in archive.namelist()), None)
        if name is None:
            raise LookupError("the bundle has no appspec.yml at its top")
        return yaml.safe_load(archive.read(name)) or {}


def _helper(instance_id, args, stdin=None):
    proc = instances.run(
        instance_id,
        [sys.executable, "-I", "-S", HELPER, *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr.decode(errors="replace").strip() or f"exit code {proc.returncode}")
    return proc.stdout


def download(instance_id, deployment, account):
    data = fetch(account, deployment["revision"])
    appspec = parse_appspec(data)
    archive = f"{ROOT}/{deployment['group_id']}/{deployment['id']}/deployment-archive"
    _helper(instance_id, ["unpack", archive], stdin=data)
    with LOCK:
        key = ((deployment.get("revision") or {}).get("s3Location") or {}).get("key")
        CURRENT[(instance_id, deployment["id"])] = {"archive": archive, "appspec": appspec, "key": key}


def install(instance_id, deployment):
    with LOCK:
        current = CURRENT[(instance_id, deployment["id"])]
    spec = current["appspec"]
    files = [{"source": f.get("source", "/"), "destination": f["destination"]} for f in spec.get("files") or []]
    behaviour = spec.get("file_exists_behavior") or "DISALLOW"
    _helper(instance_id, ["install", current["archive"], json.dumps(files), behaviour])


# -- scripts ------------------------------------------------------------------------------------------------
def run_scripts(instance_id, event, deployment, revision, account):
    """Run ``revision``'s scripts for ``event`` (revision: {"archive", "appspec", "key"}); returns an Outcome.

    A hook fault (admin call) for this event and the S3 key of the revision whose scripts run replaces each script
    by a command that fails."""
    hooks = (revision["appspec"].get("hooks") or {}).get(event) or []
    log = ScriptLog()
    if not hooks:
        return Outcome("Succeeded")
    log.append(f"LifecycleEvent - {event}\n")
    env = {
        "PATH": f"{ENGINE_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "LIFECYCLE_EVENT": event,
        "DEPLOYMENT_ID": deployment["id"],
        "APPLICATION_NAME": deployment["application"],
        "DEPLOYMENT_GROUP_NAME": deployment["group"],
        "DEPLOYMENT_GROUP_ID": deployment["group_id"],
        "BGEMU_DEMO_APP": DEMO_APP,
        "BGEMU_PYTHON": sys.executable,
        **ecr.images_env(account),
    }
    for script in hooks:
        location = script["location"]
        path = os.path.join(revision["archive"], location.lstrip("/"))
        runas = script.get("runas") or "root"
        seconds = hook_seconds(script.get("timeout", 3600))
        log.append(f"Script - {location}\n")
        fault = _fault(event, revision.get("key"))
        if fault:
            command = ["sh", "-c", 'echo "$1" >&2; sleep "$2"; exit 1', "sh", fault["message"], str(fault["sleep"])]
        else:
            command = [path] if runas == "root" else ["runuser", "-u", runas, "--", path]
        launcher = [
            "sh",
            "-c",
            'p=$1; shift; [ -e "$p" ] || exit 201; [ -x "$p" ] || chmod +x "$p" || exit 202; cd /; exec "$@"',
            "sh",
            path,
            *command,
        ]
        proc = instances.spawn(
            instance_id,
            launcher,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        readers = [
            threading.Thread(target=_read, args=(proc.stdout, "[stdout]", log), daemon=True),
            threading.Thread(target=_read, args=(proc.stderr, "[stderr]", log), daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            code = proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            for reader in readers:
                reader.join(5)
            timeout = script.get("timeout", 3600)
            return _failed(
                "ScriptTimedOut",
                location,
                f"Script at specified location: {location} failed to complete in {timeout} seconds",
                log,
            )
        for reader in readers:
            reader.join(5)
        if code == 201:
            return _failed("ScriptMissing", location, f"Script does not exist at specified location: {location}", log)
        if code == 202:
            return _failed(
                "ScriptNotExecutable",
                location,
                f"Unable to set script at specified location: {location} as executable",
                log,
            )
        if code != 0:
            message = f"Script at specified location: {location} run as user {runas} failed with exit code {code}"
            return _failed("ScriptFailed", location, message, log)
    return Outcome(
        "Succeeded", {"errorCode": "Success", "scriptName": "", "message": "Succeeded", "logTail": log.text()}
    )


def _read(stream, prefix, log):
    for line in iter(stream.readline, b""):
        log.append(prefix + line.decode(errors="replace"))
    stream.close()


def _kill_group(proc):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=2)
            return
        except subprocess.TimeoutExpired:
            continue


def _failed(code, script, message, log):
    return Outcome("Failed", {"errorCode": code, "scriptName": script, "message": message, "logTail": log.text()})


# -- one event ----------------------------------------------------------------------------------------------
def run_event(instance_id, event, deployment, account, previous_only=False):
    """Run ``event`` of ``deployment`` on ``instance_id``; returns an Outcome (never raises).

    ``deployment``: {"id", "application", "group", "group_id", "revision"}.  ``previous_only``: a rollback, whose
    events run the scripts of the revision already on the instance."""
    try:
        if instances.get(instance_id) is None:
            return Outcome("Failed", _unknown(f"instance {instance_id} is not running"))
        if event == "DownloadBundle":
            download(instance_id, deployment, account)
            return Outcome("Succeeded")
        if event == "Install":
            install(instance_id, deployment)
            return Outcome("Succeeded")
        if event not in SCRIPTABLE:
            return Outcome("Succeeded")
        with LOCK:
            if previous_only or event in PREVIOUS:
                revision = LAST.get(instance_id)
            else:
                revision = CURRENT.get((instance_id, deployment["id"]))
        if revision is None:
            if event == "ApplicationStop":
                return Outcome("Skipped")  # the instance's first deployment: nothing to stop
            if previous_only or event in PREVIOUS:
                return Outcome("Succeeded")  # no revision on the instance: no scripts
            return Outcome("Failed", _unknown("the revision was not downloaded"))
        return run_scripts(instance_id, event, deployment, revision, account)
    except Exception as e:  # noqa: BLE001 - the agent reports every error as the event's failure
        return Outcome("Failed", _unknown(str(e)))


def _unknown(message):
    return {"errorCode": "UnknownError", "scriptName": "", "message": message, "logTail": ""}


def succeeded(instance_id, deployment):
    """The deployment succeeded on the instance: its revision is what the next ApplicationStop runs."""
    with LOCK:
        current = CURRENT.pop((instance_id, deployment["id"]), None)
        if current is not None:
            LAST[instance_id] = current


def forget(instance_id):
    with LOCK:
        LAST.pop(instance_id, None)
        for key in [k for k in CURRENT if k[0] == instance_id]:
            del CURRENT[key]


INSTALL_EVENTS = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall"]
INSTALL_EVENTS += ["ApplicationStart", "ValidateService"]


def install_revision(instance_id, revision, account, application="bgemu", group="bgemu", group_id="bgemu"):
    """The in-place events of ``revision`` on an instance, as a deployment to it would run them (admin call).

    Returns [(event, status, diagnostics)], stopping at the first failure; on success it is the instance's last
    successful revision."""
    deployment = {
        "id": "d-" + "".join(random.choices(string.ascii_uppercase + string.digits, k=9)),
        "application": application,
        "group": group,
        "group_id": group_id,
        "revision": revision,
    }
    done = []
    for event in INSTALL_EVENTS:
        outcome = run_event(instance_id, event, deployment, account)
        done.append({"event": event, "status": outcome.status, "diagnostics": outcome.diagnostics})
        if outcome.status == "Failed":
            return done
    succeeded(instance_id, deployment)
    return done
