"""playbooks/promote.yml for the codedeploy strategy on the emulator: prod gets exactly the artifact stage ran.

Stage and prod share one ECR repository (aws_infra_ecr_repository=web, as inventories/aws-example does). The image
tagged v1 is pushed first, so stage's release pins its digest; the image's manifest says it is version 1.0.0, and the
emulator's engine runs what a digest names (docs/emulator.md), so an instance answering 1.0.0 ran the pinned image.
promote.yml then releases to prod the digest and the bundle (same sha256) stage recorded, and refuses, before any
lock or write: a source release that failed or ran an unpinned tag, a bundle rendered differently for prod, and a
digest prod's repository does not hold.
"""

import json
import time

from cdfleet import image_manifest
from dataplane import get
from test_aws_infra import account  # noqa: F401  # pylint: disable=unused-import
from test_aws_infra import failures
from test_aws_infra import run
from test_aws_infra import writes

APP = "web"
SHARED = ["-e", "aws_infra_ecr_repository=web"]


def history(s3, bucket, env):
    prefix = f"bluegreen/{APP}/{env}/history/"
    objects = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [
        json.load(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"]) for o in sorted(objects, key=lambda o: o["Key"])
    ]


def keys(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def served(emulator, env, timeout=30.0):
    (listener,) = [e for e in emulator.admin("listeners") if e["load_balancer_name"] == f"{APP}-{env}"]
    deadline = time.monotonic() + timeout
    while True:
        status, body = get(f"http://127.0.0.1:{listener['local_port']}/version")
        if status == 200:
            return json.loads(body)["version"]
        assert time.monotonic() < deadline, (status, body)
        time.sleep(0.2)


def promote(emulator, *args):
    return run("promote.yml", emulator, "-e", "bluegreen_env=prod", "-e", "release_source_environment=stage", *args)


def test_promote_releases_the_digest_and_bundle_stage_ran(account):  # noqa: F811
    s3, ecr = account.client("s3"), account.client("ecr")
    number = account.client("sts").get_caller_identity()["Account"]
    stage_bucket, prod_bucket = f"{APP}-stage-artifacts-{number}", f"{APP}-prod-artifacts-{number}"
    ecr.create_repository(repositoryName=APP, imageTagMutability="IMMUTABLE")
    pushed = ecr.put_image(repositoryName=APP, imageManifest=image_manifest("1.0.0"), imageTag="v1")["image"]
    digest = pushed["imageId"]["imageDigest"]

    started = time.monotonic()
    rc, results, unused = run("site.yml", account, "-e", "bluegreen_env=stage", "-e", "release_version=v1", *SHARED)
    assert rc == 0, failures(results)
    print(f"\nstage: site.yml v1 {time.monotonic() - started:.1f}s")
    (staged,) = history(s3, stage_bucket, "stage")
    assert staged["result"] == "success" and staged["artifacts"]["image_digest"] == digest, staged
    assert served(account, "stage") == "1.0.0"  # the instances ran the pinned image

    # a stage release whose image was not pinned (its tag was not in ECR): nothing says which image it ran
    unpinned = dict(staged, version="v0", release_id="r-unpinned", artifacts=dict(staged["artifacts"], image_digest=""))
    s3.put_object(
        Bucket=stage_bucket, Key="bluegreen/web/stage/history/20000101000000-v0.json", Body=json.dumps(unpinned)
    )
    # and one that failed there
    failed = dict(staged, version="v9", release_id="r-failed", result="rolled_back", reason="gate green-health failed")
    s3.put_object(
        Bucket=stage_bucket, Key="bluegreen/web/stage/history/20000101000001-v9.json", Body=json.dumps(failed)
    )
    account.admin("calls", "DELETE")
    rc, results, unused = promote(account, "-e", "promote_version=v0", *SHARED)
    refused = results["Refuse, on AWS, a release whose artifact is not identified by content"]
    assert rc != 0 and "v0 in stage ran its image by tag, unpinned" in refused["msg"], failures(results)
    rc, results, unused = promote(account, "-e", "promote_version=v9", *SHARED)
    refused = results["Refuse a requested version that did not succeed in the source"]
    assert rc != 0 and "v9 ended rolled_back in stage: gate green-health failed" in refused["msg"], failures(results)
    assert not writes(account.calls()), writes(account.calls())

    step = time.monotonic()
    rc, results, unused = run("provision.yml", account, "-e", "bluegreen_env=prod", "-e", "release_version=v1", *SHARED)
    assert rc == 0, failures(results)
    print(f"prod: provision.yml {time.monotonic() - step:.1f}s")

    # prod's bundle rendered differently (a plain setting of its own): refused before the lock, nothing written
    before = keys(s3, prod_bucket)
    account.admin("calls", "DELETE")
    own_setting = ["-e", '{"appspec_env": {"MODE": "prod"}}']
    rc, results, unused = promote(account, "-e", "promote_version=v1", *own_setting, *SHARED)
    refused = failures(results)
    assert rc != 0 and any(
        "not " + staged["artifacts"]["bundle_sha256"] in (m or "") for m in refused.values()
    ), refused
    # prod pulling from a repository of its own, which does not hold stage's image
    rc, results, unused = promote(account, "-e", "promote_version=v1", "-e", "aws_infra_ecr_repository=web-prod")
    refused = failures(results)
    assert rc != 0 and any("ECR repository web-prod does not exist" in (m or "") for m in refused.values()), refused
    assert keys(s3, prod_bucket) == before and not writes(account.calls()), writes(account.calls())

    step = time.monotonic()
    rc, results, unused = promote(account, *SHARED)
    assert rc == 0, failures(results)
    print(f"prod: promote.yml {time.monotonic() - step:.1f}s")
    assert "promoting v1" in results["Say what is promoted"]["msg"] and digest in results["Say what is promoted"]["msg"]
    (promoted,) = history(s3, prod_bucket, "prod")
    assert promoted["version"] == "v1" and promoted["result"] == "success", promoted
    assert promoted["artifacts"]["image_digest"] == digest
    assert promoted["artifacts"]["bundle_sha256"] == staged["artifacts"]["bundle_sha256"]
    assert promoted["artifacts"]["promoted_from"] == "stage", promoted
    assert served(account, "prod") == "1.0.0"
