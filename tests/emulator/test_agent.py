"""The emulator's CodeDeploy agent runs the appspec role's real hook scripts inside each instance."""

import json
import os
import subprocess

from cdfleet import APP_PORT
from cdfleet import addresses
from cdfleet import deploy
from cdfleet import fleet
from cdfleet import run_in
from cdfleet import targets
from cdfleet import wait_status
from dataplane import get

ENGINE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bgemu", "engine", "docker")
HOOKS = ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService", "AfterAllowTraffic"]


def install(emulator, instance_id, key):
    """The agent's in-place events of revision ``key`` on the instance: [{"event", "status", "diagnostics"}]."""
    return emulator.admin(
        "install", "POST", {"instance_id": instance_id, "bucket": "releases", "key": key}, timeout=120
    )


def netns_names():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_a_blue_green_deployment_runs_the_bundles_scripts_on_each_green_instance(emulator, revisions):
    f = fleet(emulator, blue_revision="app-good.zip")
    blue_ips = addresses(emulator, f["blue"])
    for ip in blue_ips.values():  # blue was installed by the agent: its app answers at the instance's address
        assert json.loads(get(f"http://{ip}:{APP_PORT}/version")[1]) == {"version": "1.0.0"}
    blue_netns = {emulator.admin("instances")[i]["netns"] for i in f["blue"]}

    deployment_id = deploy(f, "app-v2.zip")
    assert wait_status(f, deployment_id, ("Succeeded", "Failed", "Stopped"))[-1] == "Succeeded"
    by_id = targets(f, deployment_id)
    green = sorted(i for i, t in by_id.items() if t["instanceLabel"] == "Green")
    assert len(green) == 2
    for instance_id in green:
        events = {e["lifecycleEventName"]: e for e in by_id[instance_id]["lifecycleEvents"]}
        assert events["ApplicationStop"]["status"] == "Skipped"  # a new instance: no previous revision
        for hook in HOOKS:  # each ran its script, which logs the LIFECYCLE_EVENT the agent gave it
            diagnostics = events[hook]["diagnostics"]
            assert events[hook]["status"] == "Succeeded" and diagnostics["errorCode"] == "Success", events[hook]
            assert diagnostics["logTail"].startswith(f"LifecycleEvent - {hook}\nScript - scripts/"), diagnostics
            assert f"[{hook}]" in diagnostics["logTail"], diagnostics
        assert (
            "healthy after 1 attempt(s): http://127.0.0.1:8080/health"
            in events["ValidateService"]["diagnostics"]["logTail"]
        )
        # the scripts' effects, in this instance's own file system
        assert run_in(emulator, instance_id, "cat", "/etc/web/app.env")["stdout"] == "GREETING=hello\n"
        installed = run_in(emulator, instance_id, "ls", "/opt/codedeploy/web/scripts")["stdout"].split()
        assert {"lib.sh", "release.env", "validate_service.sh"} <= set(installed)
        image = run_in(emulator, instance_id, ENGINE, "inspect", "--format", "{{.Config.Image}}", "web")
        assert image["stdout"] == "localhost/bluegreen-demo:1.1.0\n", image
    assert not os.path.exists("/etc/web/app.env")  # nothing on the host itself
    # the new version answers on each green instance's own address, and the load balancer targets are green
    green_ips = addresses(emulator, green)
    assert not set(green_ips.values()) & set(blue_ips.values())
    for ip in green_ips.values():
        assert json.loads(get(f"http://{ip}:{APP_PORT}/version")[1]) == {"version": "1.1.0"}
    # blue was terminated after the termination wait: its app and namespaces are gone
    assert not set(f["blue"]) & set(emulator.admin("instances"))
    assert not blue_netns & netns_names()


def test_application_stop_runs_the_previous_revisions_script(emulator, revisions):
    """An instance with app-good installed gets app-v2: its ApplicationStop is app-good's script (a fault on
    app-good's ApplicationStop shows which one ran), every later hook is app-v2's."""
    f = fleet(emulator)
    instance_id = f["blue"][0]
    first = install(emulator, instance_id, "app-good.zip")
    assert [e["status"] for e in first][:2] == ["Skipped", "Succeeded"] and first[-1]["status"] == "Succeeded"

    emulator.admin("hook-faults", "POST", {"event": "ApplicationStop", "key": "app-v2.zip", "message": "v2's stop"})
    second = install(emulator, instance_id, "app-v2.zip")
    assert [e["status"] for e in second] == ["Succeeded"] * 7, second  # app-v2's stop script did not run
    stop = second[0]["diagnostics"]["logTail"]
    assert "[ApplicationStop] stopping web" in stop  # app-good's container was running, and was stopped
    image = run_in(emulator, instance_id, ENGINE, "inspect", "--format", "{{.Config.Image}}", "web")["stdout"]
    assert image == "localhost/bluegreen-demo:1.1.0\n"

    emulator.admin("hook-faults", "POST", {"event": "ApplicationStop", "key": "app-v2.zip", "message": "v2's stop"})
    third = install(emulator, instance_id, "app-good.zip")
    assert third[0]["event"] == "ApplicationStop" and third[0]["status"] == "Failed"  # now app-v2's script runs
    assert third[0]["diagnostics"]["errorCode"] == "ScriptFailed"
    assert third[0]["diagnostics"]["scriptName"] == "scripts/application_stop.sh"
    assert third[0]["diagnostics"]["logTail"].endswith("[stderr]v2's stop\n")
    assert len(third) == 1  # nothing runs after a failed event


def test_a_script_past_its_timeout_is_killed_and_reported(emulator, revisions):
    """A hook that never ends: the agent kills it at its timeout (at least min(timeout, 20) real seconds)."""
    f = fleet(emulator)
    instance_id = f["blue"][0]
    # the role's ValidateService keeps within its 16 s timeout, so a fault stands in for a script that hangs
    emulator.admin(
        "hook-faults", "POST", {"event": "ValidateService", "key": "app-good.zip", "message": "never", "sleep": 60}
    )
    answer = install(emulator, instance_id, "app-good.zip")
    event = answer[-1]
    assert event["event"] == "ValidateService" and event["status"] == "Failed", answer
    assert event["diagnostics"]["errorCode"] == "ScriptTimedOut"
    assert event["diagnostics"]["message"] == (
        "Script at specified location: scripts/validate_service.sh failed to complete in 16 seconds"
    )
    netns = emulator.admin("instances")[instance_id]["netns"]
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=True).stdout.split()
    commands = []
    for pid in pids:
        try:
            commands.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode())
        except OSError:
            pass
    assert not [c for c in commands if c.startswith("sleep ")], commands  # the script's process group was killed
