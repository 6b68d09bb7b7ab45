"""bluegreen.aws.codedeploy_application through real ansible-playbook runs on the emulator."""

from conftest import run_playbook


def task(state="present", tags=None, purge=True):
    lines = ["- name: app", "  bluegreen.aws.codedeploy_application:", "    name: web", f"    state: {state}"]
    if tags is not None:
        lines.append(f"    tags: {tags}")
    lines.append(f"    purge_tags: {purge}")
    return "\n".join(lines) + "\n"


def test_create_is_idempotent_with_check_mode_and_diff(emulator, tmp_path):
    cd = emulator.client("codedeploy")
    rc, results, unused_report = run_playbook(task(tags={"team": "platform"}), emulator.endpoint, tmp_path, check=True)
    assert rc == 0 and results["app"]["changed"] is True
    assert cd.list_applications()["applications"] == []  # check mode created nothing
    rc, results, unused_report = run_playbook(task(tags={"team": "platform"}), emulator.endpoint, tmp_path)
    assert rc == 0 and results["app"]["changed"] is True
    assert results["app"]["application"]["compute_platform"] == "Server"
    assert results["app"]["diff"]["before"] == {} and results["app"]["diff"]["after"]["tags"] == {"team": "platform"}
    assert cd.get_application(applicationName="web")["application"]["computePlatform"] == "Server"
    rc, results, unused_report = run_playbook(task(tags={"team": "platform"}), emulator.endpoint, tmp_path)
    assert rc == 0 and results["app"]["changed"] is False


def test_tags_are_updated_and_purged(emulator, tmp_path):
    cd = emulator.client("codedeploy")
    run_playbook(task(tags={"team": "platform", "old": "x"}), emulator.endpoint, tmp_path)
    rc, results, unused_report = run_playbook(task(tags={"team": "web"}), emulator.endpoint, tmp_path)
    assert rc == 0 and results["app"]["changed"] is True
    assert results["app"]["diff"]["before"]["tags"] == {"team": "platform", "old": "x"}
    assert results["app"]["application"]["tags"] == {"team": "web"}
    arn = f"arn:aws:codedeploy:{emulator.region}:123456789012:application:web"
    assert {t["Key"]: t["Value"] for t in cd.list_tags_for_resource(ResourceArn=arn)["Tags"]} == {"team": "web"}
    rc, results, unused_report = run_playbook(task(tags={"extra": "1"}, purge=False), emulator.endpoint, tmp_path)
    assert results["app"]["application"]["tags"] == {"team": "web", "extra": "1"}


def test_absent_deletes_and_is_idempotent(emulator, tmp_path):
    cd = emulator.client("codedeploy")
    run_playbook(task(), emulator.endpoint, tmp_path)
    rc, results, unused_report = run_playbook(task("absent"), emulator.endpoint, tmp_path, check=True)
    assert rc == 0 and results["app"]["changed"] is True and cd.list_applications()["applications"] == ["web"]
    rc, results, unused_report = run_playbook(task("absent"), emulator.endpoint, tmp_path)
    assert rc == 0 and results["app"]["changed"] is True and cd.list_applications()["applications"] == []
    rc, results, unused_report = run_playbook(task("absent"), emulator.endpoint, tmp_path)
    assert rc == 0 and results["app"]["changed"] is False
