"""release_history / release_history_info on the emulator's S3 through real ansible-playbook runs."""

import json

from conftest import REGION
from conftest import run_playbook

BUCKET = "release-state"
COMMON = "bucket: release-state\n    application: web\n    environment: prod\n"


def test_records_written_updated_and_read_back(emulator, tmp_path):
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    tasks = ""
    for index, result in enumerate(("success", "success", "failure", "rolled_back")):
        version = f"ABC-{index}-web-2026010112000{index}"
        tasks += f"""\
- name: start {index}
  bluegreen.aws.release_history:
    {COMMON}    version: {version}
    started: "2026-01-0{index + 1}T12:00:00Z"
    strategy: local
    from_version: ABC-{index - 1}-web
    artifacts: {{image_digest: "sha256:{index}", bundle_sha256: "{index}" , registry_password: hunter2}}
  register: started
- name: end {index}
  bluegreen.aws.release_history:
    {COMMON}    release_id: "{{{{ started.release_id }}}}"
    result: {result}
    reason: because {index}
    to_version: {version}
    timeline: [{{t: 0, event: start}}, {{t: 1.5, event: done}}]
    diagnostics: {{gate: green-health, headers: {{Authorization: "Bearer abc"}}}}
- name: again {index}
  bluegreen.aws.release_history:
    {COMMON}    release_id: "{{{{ started.release_id }}}}"
    result: {result}
    reason: because {index}
"""
    tasks += f"""\
- name: read
  bluegreen.aws.release_history_info:
    {COMMON}    last: 2
- name: read failures
  bluegreen.aws.release_history_info:
    {COMMON}    result: failure
"""
    rc, results, unused = run_playbook(tasks, emulator.url, tmp_path)
    assert rc == 0, results
    assert results["start 0"]["release_id"] == "20260101120000-ABC-0-web-20260101120000"
    assert results["end 3"]["changed"] and not results["again 3"]["changed"]  # a re-run is a no-op
    read = results["read"]
    assert [r["version"] for r in read["releases"]] == ["ABC-3-web-20260101120003", "ABC-2-web-20260101120002"]
    assert read["last_good"]["version"] == "ABC-1-web-20260101120001"
    good = read["last_good"]
    assert good["artifacts"] == {"image_digest": "sha256:1", "bundle_sha256": "1", "registry_password": "REDACTED"}
    assert good["from_version"] == "ABC-0-web" and good["to_version"] == "ABC-1-web-20260101120001"
    assert good["started"] == "2026-01-02T12:00:00Z" and good["ended"] and good["strategy"] == "local"
    assert good["timeline"][1]["event"] == "done" and good["diagnostics"]["headers"]["Authorization"] == "REDACTED"
    assert "@" in good["who"] and good["result"] == "success" and good["reason"] == "because 1"
    assert [r["result"] for r in results["read failures"]["releases"]] == ["failure"]
    stored = s3.get_object(Bucket=BUCKET, Key=good["key"])["Body"].read().decode()
    assert "hunter2" not in stored and "Bearer" not in stored and json.loads(stored)["release_id"] in good["key"]

    # check mode writes nothing
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    task = f"- name: new\n  bluegreen.aws.release_history:\n    {COMMON}    version: ABC-9-web-20260109120000\n"
    rc, results, unused = run_playbook(task, emulator.url, tmp_path, check=True)
    assert rc == 0 and results["new"]["changed"] and results["new"]["record"]["result"] == "in_progress"
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]) == keys
