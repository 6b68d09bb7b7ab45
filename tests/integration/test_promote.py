"""playbooks/promote.yml: the version that last succeeded in the source environment (its history, read by
release_history_info) is released to the target through release.yml; the history record keeps the HTML report.

Real HAProxy and app slots (the local strategy), the emulator's S3."""

import json
import os
import subprocess
import sys

from conftest import REGION
from conftest import ansible_playbook
from dataplane import local_host

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(ROOT, "inventories", "local", "hosts.yml")
RELEASE = os.path.join(ROOT, "playbooks", "release.yml")
PROMOTE = os.path.join(ROOT, "playbooks", "promote.yml")
SVC = os.path.join(ROOT, "roles", "local_bluegreen", "files", "bluegreen_svc.py")
BUCKET = "release-state"
ENV = dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")


def records(s3, environment):
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"bluegreen/web/{environment}/history/").get("Contents", [])
    return [json.loads(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()) for o in listed]


def test_promote_releases_the_last_good_version_of_the_source(tmp_path, emulator):
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    base = tmp_path / "host"
    host = local_host(
        tmp_path,
        local_bluegreen_steps=[{"weight": 100}],
        release_bucket=BUCKET,
        release_application="web",
        release_endpoint_url=emulator.url,
        release_region=REGION,
    )
    try:
        staged = dict(host, release_environment="stage", release_version="ABC-1-web-20261201120000")
        rc, results, unused = ansible_playbook(RELEASE, "-e", json.dumps(staged), inventory=INVENTORY, env=ENV)
        assert rc == 0, results
        # nothing good in dev: refused before any lock or record
        dev = dict(host, release_source_environment="dev", release_environment="prod")
        rc, results, unused = ansible_playbook(PROMOTE, "-e", json.dumps(dev), inventory=INVENTORY, env=ENV)
        assert (
            rc != 0 and "no successful release in dev" in results["Refuse a source without a successful release"]["msg"]
        )
        assert records(s3, "prod") == []
        # a version that failed in stage is refused by name, before any lock or record
        failed = {"version": "ABC-2-web-20261201130000", "result": "failure", "reason": "gate green-health failed"}
        s3.put_object(
            Bucket=BUCKET,
            Key="bluegreen/web/stage/history/20261201130000-ABC-2-web-20261201130000.json",
            Body=json.dumps(dict(failed, application="web", environment="stage")).encode(),
        )
        asked = dict(
            host, release_source_environment="stage", release_environment="prod", promote_version=failed["version"]
        )
        rc, results, unused = ansible_playbook(PROMOTE, "-e", json.dumps(asked), inventory=INVENTORY, env=ENV)
        refused = results["Refuse a requested version that did not succeed in the source"]["msg"]
        assert rc != 0 and "ABC-2-web-20261201130000 ended failure in stage: gate green-health failed" in refused
        # an AWX workflow's survey gives release_version to every job: it is the version asked for, checked the same way
        never = {k: v for k, v in asked.items() if k != "promote_version"}
        never["release_version"] = "ABC-9-web-20261201140000"
        rc, results, unused = ansible_playbook(PROMOTE, "-e", json.dumps(never), inventory=INVENTORY, env=ENV)
        assert (
            rc != 0
            and "was never released in stage"
            in results["Refuse a requested version that did not succeed in the source"]["msg"]
        )
        assert records(s3, "prod") == [] and "lock.json" not in str(s3.list_objects_v2(Bucket=BUCKET))
        # stage -> prod: no version given, the one stage last released well is released (not the failed newer one)
        promote = dict(host, release_source_environment="stage", release_environment="prod")
        rc, results, unused = ansible_playbook(PROMOTE, "-e", json.dumps(promote), inventory=INVENTORY, env=ENV)
        assert rc == 0, results
    finally:
        for pidfile in (base / "run").glob("*.pid"):
            subprocess.run([sys.executable, SVC, "stop", pidfile.stem, "--dir", str(base / "run")], check=False)
    assert "promoting ABC-1-web-20261201120000" in results["Say what is promoted"]["msg"]
    (prod,) = records(s3, "prod")
    assert prod["version"] == "ABC-1-web-20261201120000" and prod["result"] == "success"
    # the history record keeps the release's HTML report, which is there and names the version
    report = prod["extra"]["report"]
    assert report.startswith(str(tmp_path / "reports")) and report.endswith(".html")
    with open(report, encoding="utf-8") as f:
        assert "ABC-1-web-20261201120000" in f.read()
