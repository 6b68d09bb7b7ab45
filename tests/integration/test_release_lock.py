"""release_lock on the emulator's S3 (moto 5.2.5 enforces IfNoneMatch / IfMatch), through real ansible-playbook runs."""

import json
import subprocess
import textwrap
import time

import pytest
from conftest import REGION
from conftest import playbook_env
from conftest import run_playbook

BUCKET = "release-state"
LOCK_KEY = "bluegreen/web/prod/lock.json"


@pytest.fixture
def s3(emulator):
    client = emulator.client("s3")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


def lock_task(**options):
    fields = dict(bucket=BUCKET, application="web", environment="prod", **options)
    return "- name: lock\n  bluegreen.aws.release_lock:\n" + textwrap.indent(
        "\n".join(f"{k}: {json.dumps(v)}" for k, v in fields.items()), "    "
    )


def taker_play(tmp_path, name, endpoint, start_at, **options):
    """A play that waits for ``start_at`` (epoch), takes the lock, then makes its first other write (a marker file)."""
    marker = tmp_path / f"wrote-{name}"
    header = textwrap.dedent(f"""\
        - hosts: localhost
          gather_facts: false
          module_defaults:
            group/bluegreen.aws.aws:
              endpoint_url: {endpoint}
              region: {REGION}
              access_key: testing
              secret_key: testing
          tasks:
            - name: wait for the start line
              ansible.builtin.command: >-
                {{{{ ansible_playbook_python }}}} -c "import time; time.sleep(max(0, {start_at} - time.time()))"
              changed_when: false
        """)
    tasks = lock_task(version=f"ABC-1-web-2026010112000{name[-1]}", who=f"{name}@test", **options)
    tasks += (
        f"\n  register: taken\n- name: first other write\n  ansible.builtin.copy:\n    content: x\n    dest: {marker}\n"
    )
    path = tmp_path / f"{name}.yml"
    path.write_text(header + textwrap.indent(tasks, "    "))
    return path, marker


def start(path):
    import os
    import sys

    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local"]
    return subprocess.Popen(
        command + [str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=playbook_env()
    )


def result_of(proc):
    out, err = proc.communicate(timeout=120)
    report = json.loads(out)
    tasks = {t["task"]["name"]: t["hosts"]["localhost"] for p in report["plays"] for t in p["tasks"]}
    return proc.returncode, tasks


def race(tmp_path, emulator, rounds, prepare=None, **options):
    """``rounds`` times: two takers start at the same moment; returns per round [(name, rc, lock result, wrote)]."""
    s3 = emulator.client("s3")
    outcomes = []
    for index in range(rounds):
        round_dir = tmp_path / f"round{index}"
        round_dir.mkdir()
        if prepare:
            prepare()
        start_at = time.time() + 4.0  # both processes are loaded and waiting by then
        plays = {
            name: taker_play(round_dir, name, emulator.url, start_at, **options) for name in ("taker-A", "taker-B")
        }
        procs = {name: start(path) for name, (path, marker) in plays.items()}
        results = []
        for name, proc in procs.items():
            rc, tasks = result_of(proc)
            results.append((name, rc, tasks["lock"], plays[name][1].exists()))
        outcomes.append(results)
        s3.delete_object(Bucket=BUCKET, Key=LOCK_KEY)
    return outcomes


def test_two_takers_at_the_same_moment_exactly_one_wins_20_times(s3, emulator, tmp_path):
    outcomes = race(tmp_path, emulator, 20)
    for results in outcomes:
        winners = [r for r in results if r[1] == 0]
        losers = [r for r in results if r[1] != 0]
        assert len(winners) == 1 and len(losers) == 1, results
        w_name, w_lock, w_wrote = winners[0][0], winners[0][2], winners[0][3]
        l_lock, l_wrote = losers[0][2], losers[0][3]
        assert w_wrote and not l_wrote  # the loser failed before its first other write
        assert w_lock["changed"] and w_lock["lock"]["who"] == f"{w_name}@test"
        # the loser is told who holds it, what it deploys and since when
        assert f"{w_name}@test" in l_lock["msg"] and w_lock["lock"]["version"] in l_lock["msg"]
        assert f"since {w_lock['lock']['created']}" in l_lock["msg"]
        assert l_lock["holder"]["id"] == w_lock["lock"]["id"]


def test_two_takers_of_one_expired_lock_exactly_one_wins(s3, emulator, tmp_path):
    def stale_lock():
        rc, results, unused = run_playbook(
            lock_task(version="ABC-9-web-20250101000000", who="crashed@ci", ttl=1), emulator.url, tmp_path
        )
        assert rc == 0, results
        time.sleep(2.2)  # S3 LastModified has 1 s resolution

    outcomes = race(tmp_path, emulator, 5, prepare=stale_lock)
    for results in outcomes:
        winners = [r for r in results if r[1] == 0]
        assert len(winners) == 1, results
        w_name, unused_rc, w_lock, unused_wrote = winners[0]
        l_name, unused_rc2, l_lock, l_wrote = next(r for r in results if r[1] != 0)
        assert w_lock["taken_over"]["who"] == "crashed@ci"
        assert any("took over the expired deploy lock of crashed@ci" in w for w in w_lock["warnings"])
        assert f"{w_name}@test" in l_lock["msg"] and not l_wrote


def test_release_only_by_the_holder_and_forced_unlock_is_recorded(s3, emulator, tmp_path):
    rc, results, unused = run_playbook(
        lock_task(version="ABC-1-web-20260101120000", who="alice@host"), emulator.url, tmp_path
    )
    assert rc == 0
    lock = results["lock"]["lock"]
    before = s3.get_object(Bucket=BUCKET, Key=LOCK_KEY)["ETag"]

    # a wrong lock id is refused, naming the holder, and the lock is untouched
    rc, results, unused = run_playbook(lock_task(state="absent", lock_id="not-the-holder"), emulator.url, tmp_path)
    assert rc != 0
    assert (
        "lock id not-the-holder does not hold it" in results["lock"]["msg"] and "alice@host" in results["lock"]["msg"]
    )
    assert s3.get_object(Bucket=BUCKET, Key=LOCK_KEY)["ETag"] == before

    # force needs a reason
    rc, results, unused = run_playbook(lock_task(state="absent", force=True), emulator.url, tmp_path)
    assert rc != 0 and "reason" in results["lock"]["msg"]

    # check mode says what it would remove and removes nothing
    task = lock_task(state="absent", force=True, reason="job killed", who="ops@laptop")
    rc, results, unused = run_playbook(task, emulator.url, tmp_path, check=True)
    assert rc == 0 and results["lock"]["changed"] and results["lock"]["released"]["id"] == lock["id"]
    assert s3.get_object(Bucket=BUCKET, Key=LOCK_KEY)["ETag"] == before

    rc, results, unused = run_playbook(task, emulator.url, tmp_path)
    assert rc == 0 and results["lock"]["changed"]
    record = results["lock"]["forced_unlock"]
    assert record["who"] == "ops@laptop" and record["reason"] == "job killed" and record["lock"]["id"] == lock["id"]
    stored = json.load(s3.get_object(Bucket=BUCKET, Key=record["key"])["Body"])
    assert stored["reason"] == "job killed" and stored["lock"]["who"] == "alice@host"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=LOCK_KEY)

    # the holder releases its own lock; a second release is a no-op
    rc, results, unused = run_playbook(lock_task(version="v"), emulator.url, tmp_path)
    lock_id = results["lock"]["lock"]["id"]
    for changed in (True, False):
        rc, results, unused = run_playbook(lock_task(state="absent", lock_id=lock_id), emulator.url, tmp_path)
        assert rc == 0 and results["lock"]["changed"] is changed


def test_expiry_check_mode_and_idempotent_holder(s3, emulator, tmp_path):
    rc, results, unused = run_playbook(
        lock_task(version="ABC-1-web-20260101120000", who="alice@host", ttl=90), emulator.url, tmp_path
    )
    lock_id = results["lock"]["lock"]["id"]
    # the holder re-running with its lock id changes nothing
    rc, results, unused = run_playbook(lock_task(lock_id=lock_id), emulator.url, tmp_path)
    assert rc == 0 and not results["lock"]["changed"]
    # before expiry: refused (check mode says so too, honestly)
    for check in (True, False):
        rc, results, unused = run_playbook(
            lock_task(version="ABC-2-web-20260101120001"), emulator.url, tmp_path, check=check
        )
        assert rc != 0 and "alice@host" in results["lock"]["msg"], (check, results["lock"])
    written = s3.get_object(Bucket=BUCKET, Key=LOCK_KEY)["LastModified"].timestamp()  # expiry runs on S3's clock
    time.sleep(max(0.0, written + 90 + 1.5 - time.time()))
    before = s3.get_object(Bucket=BUCKET, Key=LOCK_KEY)["ETag"]
    rc, results, unused = run_playbook(
        lock_task(version="ABC-2-web-20260101120001"), emulator.url, tmp_path, check=True
    )
    assert rc == 0 and results["lock"]["changed"] and results["lock"]["taken_over"]["id"] == lock_id
    assert s3.get_object(Bucket=BUCKET, Key=LOCK_KEY)["ETag"] == before  # check mode wrote nothing
    rc, results, unused = run_playbook(lock_task(version="ABC-2-web-20260101120001"), emulator.url, tmp_path)
    assert rc == 0 and results["lock"]["taken_over"]["id"] == lock_id
    assert results["lock"]["diff"]["before"]["id"] == lock_id


def test_unlock_playbook_forces_the_lock_open_with_a_recorded_reason(s3, emulator, tmp_path):
    import os

    from conftest import ansible_playbook

    rc, results, unused = run_playbook(
        lock_task(version="ABC-1-web-20260101120000", who="crashed@ci"), emulator.url, tmp_path
    )
    assert rc == 0
    playbook = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "playbooks", "unlock.yml")
    common = f"release_endpoint_url={emulator.url} release_region={REGION} release_bucket={BUCKET}"
    env = dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    rc, results, unused = ansible_playbook(
        playbook, "-e", common, "-e", "release_application=web release_environment=prod", env=env
    )
    assert rc != 0 and "release_reason" in results["Check which lock and why"]["msg"]  # no reason, no unlock
    rc, results, unused = ansible_playbook(
        playbook,
        "-e",
        common,
        "-e",
        "release_application=web release_environment=prod release_reason='job 4711 killed'",
        env=env,
    )
    assert rc == 0, results
    removed = results["Remove the lock"]
    assert removed["released"]["who"] == "crashed@ci" and removed["forced_unlock"]["reason"] == "job 4711 killed"
    assert "removed the lock of crashed@ci" in results["Say what was removed"]["msg"]
    record = json.load(s3.get_object(Bucket=BUCKET, Key=removed["forced_unlock"]["key"])["Body"])
    assert record["lock"]["who"] == "crashed@ci" and record["reason"] == "job 4711 killed"
    # the next deploy proceeds
    rc, results, unused = run_playbook(lock_task(version="ABC-2-web-20260101130000"), emulator.url, tmp_path)
    assert rc == 0 and results["lock"]["taken_over"] is None
