"""bluegreen.aws.codedeploy_deployment_info on the emulator."""

from cdfleet import deploy
from cdfleet import fleet
from cdfleet import wait_status
from conftest import run_playbook

LATEST = """\
- name: info
  bluegreen.aws.codedeploy_deployment_info:
    application: web
    deployment_group: web-dg
"""


def test_latest_of_a_group_with_targets_events_and_diagnostics(emulator, revisions, tmp_path):
    f = fleet(emulator)
    rc, results, unused_report = run_playbook(LATEST, emulator.endpoint, tmp_path)
    assert rc == 0 and results["info"]["deployment"] is None  # nothing deployed yet
    first = deploy(f, "app-good.zip")
    wait_status(f, first, ("Succeeded",))
    second = deploy(f, "app-broken.zip")
    wait_status(f, second, ("Failed",))
    # the failure started a rollback, a deployment of its own: it is the group's latest
    rollback = f["cd"].get_deployment(deploymentId=second)["deploymentInfo"]["rollbackInfo"]["rollbackDeploymentId"]
    wait_status(f, rollback, ("Succeeded",))
    rc, results, unused_report = run_playbook(LATEST, emulator.endpoint, tmp_path)
    assert rc == 0 and results["info"]["deployment"]["deployment_id"] == rollback
    by_id = f"- name: info\n  bluegreen.aws.codedeploy_deployment_info:\n    deployment_id: {second}\n"
    rc, results, unused_report = run_playbook(by_id, emulator.endpoint, tmp_path)
    info = results["info"]
    assert rc == 0 and info["changed"] is False
    assert info["deployment"]["deployment_id"] == second and info["deployment"]["status"] == "Failed"
    labels = sorted(t["instance_label"] for t in info["targets"])
    assert labels == ["Blue", "Blue", "Green", "Green"]
    assert info["diagnostics"][0]["lifecycle_event"] == "ValidateService"

    by_id = (
        "- name: info\n  bluegreen.aws.codedeploy_deployment_info:\n"
        f"    deployment_id: {first}\n    include_targets: false\n"
    )
    rc, results, unused_report = run_playbook(by_id, emulator.endpoint, tmp_path)
    assert rc == 0 and results["info"]["deployment"]["status"] == "Succeeded" and results["info"]["targets"] == []


def test_id_and_group_together_are_refused(emulator, tmp_path):
    bad = LATEST + "    deployment_id: d-123\n"
    rc, results, unused_report = run_playbook(bad, emulator.endpoint, tmp_path)
    assert rc != 0 and "mutually exclusive" in results["info"]["msg"]
