"""Zero downtime through the emulated ALB, the figure users care most about.

A CodeDeploy blue/green deployment (COPY_AUTO_SCALING_GROUP) of real bundles (rendered by the appspec role, zipped by
codedeploy_bundle: the ``revisions`` fixture), run by bluegreen.aws.codedeploy_deployment: the emulator's agent runs
the hook scripts on each green instance (the demo app image on the stand-in engine), and keep-alive clients send
requests through the listener's port (a real HAProxy following the ELBv2 model) the whole time.

AllowTraffic waits until green passes the target group's health checks and BlockTraffic until blue's deregistration
delay (DELAY, non-zero) is over, as on AWS: no request fails, none is answered by green before green is healthy, and
once the deployment succeeded green answers every request.  Then a broken version fails ValidateService with its
script's log tail in the module's diagnostics while the fleet in service keeps answering every request.
"""

import time

from cdfleet import alb
from cdfleet import deployment_task
from cdfleet import fleet
from cdfleet import health
from cdfleet import targets
from conftest import run_playbook
from dataplane import KeepAliveLoad
from dataplane import Poller

DELAY = 60  # the target group's deregistration delay, AWS seconds (0.6 s at the fixture's time scale, 0.01)
CLIENTS = 2
LIMIT = 240  # the load stops after this many seconds whatever happens
AFTER = 200  # requests sent once a deployment ended


class HealthWatcher(Poller):
    """Polls the target group's health every 50 ms: {target: state}."""

    def __init__(self, f):
        super().__init__(limit=LIMIT)
        self.f = f

    def sample(self):
        return health(self.f)

    def last_unhealthy(self, instance_ids):
        """(monotonic, wall clock) of the last sample, before any of ``instance_ids`` was first seen healthy, in which
        none was: a request answered by one of them cannot have been routed before then."""
        first = next(n for n, s in enumerate(self.samples) if any(s[3].get(i) == "healthy" for i in instance_ids))
        assert first > 0, "green was healthy in the first sample: nothing bounds when it turned healthy"
        asked, unused_answered, wall, unused_states = self.samples[first - 1]
        return asked, wall


def event(target, name):
    return next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == name)


def test_a_blue_green_deployment_fails_no_request_through_the_alb(emulator, revisions, tmp_path):
    scale = emulator.admin("status")["time_scale"]
    f = fleet(emulator, blue_revision="app-good.zip", termination_minutes=0, deregistration_delay=DELAY)
    alb(emulator, f)
    deadline = time.monotonic() + 60
    while set(health(f).values()) != {"healthy"}:
        assert time.monotonic() < deadline, health(f)
        time.sleep(0.05)
    started = time.monotonic()
    with KeepAliveLoad(f["port"], clients=CLIENTS, limit=LIMIT) as load, HealthWatcher(f) as watcher:
        load.wait_for(AFTER, started)  # blue serves before anything moves
        rc, results, unused_report = run_playbook(deployment_task("app-v2.zip"), emulator.endpoint, tmp_path)
        deployed = time.monotonic()
        load.wait_for(AFTER, deployed)
        # a broken version: ValidateService fails on green, which never gets a request; v2 serves on
        broken_rc, broken, unused_report = run_playbook(deployment_task("app-broken.zip"), emulator.endpoint, tmp_path)
        failed_at = time.monotonic()
        load.wait_for(AFTER, failed_at)
    records = load.records
    print(
        f"{sum(1 for r in records if r[2] != 200)} failed of {len(records)} requests through the ALB in "
        f"{time.monotonic() - started:.1f} s (two deployments)"
    )

    result = results["deploy"]
    assert rc == 0 and result["status"] == "Succeeded", result
    assert [r for r in records if r[2] != 200] == [], "requests failed through the ALB"
    during = [r for r in records if r[0] <= deployed]
    assert {r[3] for r in during} == {"1.0.0", "1.1.0"}, "the load did not run across the switch"
    assert {r[3] for r in records if deployed < r[0] <= failed_at} == {"1.1.0"}, "blue answered after the switch"

    by_id = targets(f, result["deployment_id"])
    green = [i for i in by_id if i not in f["blue"]]
    # no request reached green before it passed the health checks, and AllowTraffic waited for them
    unhealthy_until, unhealthy_until_wall = watcher.last_unhealthy(green)
    answered_by_green = [r for r in during if r[3] == "1.1.0"]
    assert min(r[1] for r in answered_by_green) > unhealthy_until
    for instance_id in green:
        assert event(by_id[instance_id], "AllowTraffic")["endTime"].timestamp() > unhealthy_until_wall
    # BlockTraffic deregistered blue and waited for its deregistration delay: blue was draining meanwhile
    assert any(s[3].get(i) == "draining" for s in watcher.samples for i in f["blue"])
    for instance_id in f["blue"]:
        block = event(by_id[instance_id], "BlockTraffic")
        assert block["status"] == "Succeeded"
        assert (block["endTime"] - block["startTime"]).total_seconds() >= DELAY * scale

    result = broken["deploy"]
    assert broken_rc != 0 and result["status"] == "Failed", result
    assert "ValidateService failed" in result["msg"]
    first = result["diagnostics"][0]
    assert first["lifecycle_event"] == "ValidateService" and first["script"] == "scripts/validate_service.sh"
    assert "[ValidateService] ERROR" in first["log_tail"] and "503" in first["log_tail"]
    # the fleet in service (v2) answered every request while the broken version failed and was rolled back
    assert {r[3] for r in records if r[0] > deployed} == {"1.1.0"}
    assert len([r for r in records if deployed < r[0] <= failed_at]) >= AFTER
