"""playbooks/rollback.yml for the codedeploy strategy on the emulator, under client load through the emulated ALB.

site.yml provisions and releases v1; deploy.yml (no provisioning) releases v2 with codedeploy_release_wait_termination
=false: the release ends, lock released, once the bake passed, the original v1 instances kept for a long termination
wait. rollback.yml during that wait stops the deployment with rollback: every request is back on v1 in seconds, the
history records a rollback to v1 and v2 as rolled back, the lock is released. Then v3 (deploy.yml, ending in its
termination wait) and rollback.yml, which reads v3 running, but the wait ends before its stop: v1 is deployed again (a
deployment). One test: the provisioning is the slow part (test_aws_infra covers it in depth).

Then promote.yml releases to a second environment, prod, exactly the artifact this one ran: v1's image was pushed to
ECR first, so its releases pinned the digest (the image's manifest says version v1, and the emulator's engine runs what
a digest names, docs/emulator.md); prod, pulling from the same repository, gets that digest and a bundle with the same
sha256. promote.yml refuses, before any lock or write: the rolled-back v2, a release that ran an unpinned tag, a bundle
rendered differently for prod, a digest prod's repository does not hold.
"""

import json
import threading
import time

from cdfleet import image_manifest
from dataplane import KeepAliveLoad
from dataplane import get
from test_aws_infra import account  # noqa: F401  # pylint: disable=unused-import
from test_aws_infra import failures
from test_aws_infra import run
from test_aws_infra import writes

# account (imported above) is test_aws_infra's fixture: an emulator of this module's own, an empty account
APP, ENV = "web", "emulator"  # inventories/emulator
NAME = f"{APP}-{ENV}"
DEPLOY = "Deploy with CodeDeploy blue/green, ready gates on green, bake gates during the termination wait"
LOAD_LIMIT = 1200  # seconds: the load stops then whatever happens (a rollback.yml run takes minutes on a busy machine)
STATE = f"bluegreen/{APP}/{ENV}/"  # codedeploy_release_state_prefix / application / environment


def termination_wait(cd, minutes):
    """Set the deployment group's termination wait (what aws_infra_termination_wait_minutes provisions; set here
    directly so the releases below need no second provisioning run)."""
    group = cd.get_deployment_group(applicationName=NAME, deploymentGroupName=NAME)["deploymentGroupInfo"]
    config = group["blueGreenDeploymentConfiguration"]
    config["terminateBlueInstancesOnDeploymentSuccess"]["terminationWaitTimeInMinutes"] = minutes
    cd.update_deployment_group(
        applicationName=NAME, currentDeploymentGroupName=NAME, blueGreenDeploymentConfiguration=config
    )


def served(records, since):
    """(versions answered, failed requests) of the load's requests started at or after ``since``."""
    answered = [r for r in records if r[0] >= since]
    versions = {}
    for version in [r[3] for r in answered if r[2] == 200]:
        versions[version] = versions.get(version, 0) + 1
    return versions, [r for r in answered if r[2] != 200]


def load_on(listener):
    """Clients sending GET /version through the emulated ALB's listener, for at most LOAD_LIMIT seconds."""
    return KeepAliveLoad(listener["local_port"], clients=2, limit=LOAD_LIMIT)


def history(s3, bucket):
    """The release records, oldest first (a record's key starts with its UTC start time)."""
    objects = s3.list_objects_v2(Bucket=bucket, Prefix=STATE + "history/").get("Contents", [])
    return [
        json.load(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"]) for o in sorted(objects, key=lambda o: o["Key"])
    ]


def answering(emulator, load_balancer, timeout=30.0):
    """The version the listener of ``load_balancer`` answers with."""
    (listener,) = [e for e in emulator.admin("listeners") if e["load_balancer_name"] == load_balancer]
    deadline = time.monotonic() + timeout
    while True:
        status, body = get(f"http://127.0.0.1:{listener['local_port']}/version")
        if status == 200:
            return json.loads(body)["version"]
        assert time.monotonic() < deadline, (status, body)
        time.sleep(0.2)


def test_rollback_in_the_termination_wait_puts_traffic_back_on_v1_in_seconds(account):  # noqa: F811
    s3, cd = account.client("s3"), account.client("codedeploy")
    # v1's image in the environment's repository (aws_infra_ecr_repository's default, <app>-<env>): its releases pin it
    ecr = account.client("ecr")
    ecr.create_repository(
        repositoryName=NAME, imageTagMutability="IMMUTABLE", imageScanningConfiguration={"scanOnPush": True}
    )
    pushed = ecr.put_image(repositoryName=NAME, imageManifest=image_manifest("v1"), imageTag="v1")["image"]
    digest = pushed["imageId"]["imageDigest"]
    started = time.monotonic()
    rc, results, unused_report = run("site.yml", account, "-e", "release_version=v1")
    assert rc == 0, failures(results)
    print(f"\nsite.yml v1 (provision + release): {time.monotonic() - started:.1f}s")
    # aws_infra made the repository's version tags immutable and <env>-current movable; the release tagged its image
    (repository,) = ecr.describe_repositories(repositoryNames=[NAME])["repositories"]
    assert repository["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION", repository
    assert [f["filter"] for f in repository["imageTagMutabilityExclusionFilters"]] == ["*-current"], repository
    assert image_tags(ecr, digest) == ["emulator-current", "v1"]
    assert results["Tag the released image with its version and <environment>-current"]["tags"] == {
        "v1": digest,
        "emulator-current": digest,
    }

    # 2000 min at the emulator's time scale 0.01: 20 minutes of termination wait to run rollback.yml in (a loaded
    # 2-core machine took 6 minutes for the deploy.yml below)
    termination_wait(cd, 2000)
    step = time.monotonic()
    account.admin("calls", "DELETE")
    rc, results, unused_report = run(
        "deploy.yml", account, "-e", "release_version=v2", "-e", "codedeploy_release_wait_termination=false"
    )
    assert rc == 0, failures(results)
    # deploy.yml provisions nothing: the release's own writes only (bundle, lock, history, topic, deployment)
    written = {op.split(".", 1)[0] for op in writes(account.calls())}
    assert written <= {"s3", "codedeploy", "sns"}, writes(account.calls())
    deployment = results[DEPLOY]
    assert deployment["status"] == "TerminationWait", deployment
    v2_id = deployment["deployment_id"]
    assert cd.get_deployment(deploymentId=v2_id)["deploymentInfo"]["status"] == "InProgress"
    print(f"deploy.yml v2 (no provisioning, ends in the termination wait): {time.monotonic() - step:.1f}s")

    (listener,) = [e for e in account.admin("listeners") if e["load_balancer_name"] == NAME]
    with load_on(listener) as load:
        time.sleep(1)
        versions, failed = served(load.records, 0)
        assert set(versions) == {"v2"} and not failed, (versions, failed[:5])

        rollback_started = time.monotonic()
        rc, results, unused_report = run("rollback.yml", account)
        took = time.monotonic() - rollback_started
        assert rc == 0, failures(results)
        stop = results["Stop the running deployment with rollback (the original instances are still there; seconds)"]
        assert stop["changed"] and stop["deployment_id"] == v2_id and stop["rollback_status"] == "Succeeded", stop
        assert results["Redeploy the last good revision (a whole deployment)"].get("skipped"), "no redeploy here"
        after = time.monotonic()
        time.sleep(1.5)
        versions_after, failed_after = served(load.records, after)
        during, failed_during = served(load.records, rollback_started)
    print(
        f"rollback.yml in the termination wait: {took:.1f}s; requests during it {sum(during.values())} "
        f"{during}, failed {len(failed_during)}; after it {versions_after}"
    )
    assert set(versions_after) == {"v1"} and not failed_after, (versions_after, failed_after[:5])
    assert cd.get_deployment(deploymentId=v2_id)["deploymentInfo"]["status"] == "Stopped"

    # recorded as a rollback to v1, from v2; the deploy lock is released
    bucket = f"{NAME}-artifacts-123456789012"
    records = history(s3, bucket)
    last = records[-1]
    assert (last["version"], last["result"], last.get("to_version"), last.get("from_version")) == (
        "v1",
        "success",
        "v1",
        "v2",
    ), last
    assert last["extra"]["operation"] == "rollback", last
    v1 = next(r for r in records if r["version"] == "v1" and r["extra"].get("operation") == "deploy")
    assert last["artifacts"]["bundle_sha256"] == v1["artifacts"]["bundle_sha256"], (last, v1)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=STATE + "lock.json")

    # v2's record says it was rolled back: it is not a good release to go back to any more
    (v2,) = [r for r in records if r["version"] == "v2"]
    assert v2["result"] == "rolled_back", v2

    # v3 through deploy.yml, ending in its termination wait. rollback.yml reads it running, but the wait ends (someone
    # continues it) while the rollback announces its start: the stop finds nothing left to stop (the original
    # instances are terminated), and rollback.yml redeploys v1, the last good revision before v3: a deployment
    step = time.monotonic()
    rc, results, unused_report = run(
        "deploy.yml", account, "-e", "release_version=v3", "-e", "codedeploy_release_wait_termination=false"
    )
    assert rc == 0, failures(results)
    assert results[DEPLOY]["status"] == "TerminationWait", results[DEPLOY]
    v3_id = results[DEPLOY]["deployment_id"]
    print(f"deploy.yml v3 (ends in the termination wait): {time.monotonic() - step:.1f}s")
    termination_wait(cd, 1)  # for the redeployment below (0.6 s); v3's own wait keeps the 2000 min it started with
    account.admin("calls", "DELETE")
    account.admin("faults", "POST", {"operation": "Publish", "latency_ms": 10000, "count": 1})
    answer = {}
    rollback = threading.Thread(target=lambda: answer.update(run=run("rollback.yml", account)))
    with load_on(listener) as load:
        rollback_started = time.monotonic()
        rollback.start()
        deadline = time.monotonic() + 300
        while not account.calls().get("sns.Publish"):  # the start's announcement, held 10 s: after the read
            assert time.monotonic() < deadline and rollback.is_alive()
            time.sleep(0.1)
        cd.continue_deployment(deploymentId=v3_id, deploymentWaitType="TERMINATION_WAIT")
        rollback.join(900)
        account.admin("faults", "DELETE")
        took = time.monotonic() - rollback_started
        rc, results, unused_report = answer["run"]
        assert rc == 0, failures(results)
        assert cd.get_deployment(deploymentId=v3_id)["deploymentInfo"]["status"] == "Succeeded"
        stop = results["Stop the running deployment with rollback (the original instances are still there; seconds)"]
        assert stop["changed"] is False and not stop.get("skipped"), stop  # it looked for v3, which had ended
        said = results["Say that this rollback takes a deployment"]["msg"]
        redeploy = results["Redeploy the last good revision (a whole deployment)"]
        after = time.monotonic()
        time.sleep(1.5)
        versions_after, failed_after = served(load.records, after)
        during, failed_during = served(load.records, rollback_started)
    print(
        f"rollback.yml after the termination wait (a redeployment of v1): {took:.1f}s; requests during it "
        f"{sum(during.values())} {during}, failed {len(failed_during)}; after it {versions_after}"
    )
    assert "DEPLOYS IT AGAIN" in said and "web/emulator/v1.zip" in said, said
    assert redeploy["changed"] and redeploy["status"] == "Succeeded", redeploy
    assert set(versions_after) == {"v1"} and not failed_after, (versions_after, failed_after[:5])
    last = history(s3, bucket)[-1]
    assert (last["version"], last["from_version"], last["extra"]["operation"]) == ("v1", "v3", "rollback"), last

    promote_to_prod(account, s3, bucket, digest)


def image_tags(ecr, digest):
    (image,) = ecr.describe_images(repositoryName=NAME, imageIds=[{"imageDigest": digest}])["imageDetails"]
    return sorted(image["imageTags"])


def promote_to_prod(account, s3, bucket, digest):  # noqa: F811 - account is the fixture passed on
    """promote.yml from this environment (emulator) to prod, which pulls from the same repository."""
    shared = ["-e", f"aws_infra_ecr_repository={NAME}"]
    prod_bucket = f"{APP}-prod-artifacts-123456789012"

    def promote(*args):
        return run("promote.yml", account, "-e", "bluegreen_env=prod", "-e", f"release_source_environment={ENV}", *args)

    records = history(s3, bucket)
    (v1,) = [r for r in records if r["version"] == "v1" and r["extra"].get("operation") == "deploy"]
    assert v1["artifacts"]["image_digest"] == digest, v1  # pinned at release time
    # a release that ran its image by tag (not in ECR then): nothing says which image it ran
    unpinned = dict(v1, version="v0", release_id="r-unpinned", artifacts=dict(v1["artifacts"], image_digest=""))
    s3.put_object(Bucket=bucket, Key=STATE + "history/20000101000000-v0.json", Body=json.dumps(unpinned))

    account.admin("calls", "DELETE")
    rc, results, unused_report = promote("-e", "promote_version=v2", *shared)
    refused = results["Refuse a requested version that did not succeed in the source"]["msg"]
    assert rc != 0 and f"v2 ended rolled_back in {ENV}" in refused, failures(results)
    rc, results, unused_report = promote("-e", "promote_version=v0", *shared)
    refused = results["Refuse, on AWS, a release whose artifact is not identified by content"]["msg"]
    assert rc != 0 and f"v0 in {ENV} ran its image by tag, unpinned" in refused, failures(results)
    assert not writes(account.calls()), writes(account.calls())

    step = time.monotonic()
    rc, results, unused_report = run(
        "provision.yml", account, "-e", "bluegreen_env=prod", "-e", "release_version=v1", *shared
    )
    assert rc == 0, failures(results)
    print(f"prod: provision.yml {time.monotonic() - step:.1f}s")

    # prod rendering a bundle of its own (a plain setting only prod has), or pulling from a repository of its own
    # that lacks the image: refused before the lock, nothing written
    account.admin("calls", "DELETE")
    rc, results, unused_report = promote("-e", "promote_version=v1", "-e", '{"appspec_env": {"MODE": "prod"}}', *shared)
    refused = failures(results)
    wanted = "not " + v1["artifacts"]["bundle_sha256"]
    assert rc != 0 and any(wanted in (m or "") for m in refused.values()), refused
    rc, results, unused_report = promote("-e", "promote_version=v1", "-e", "aws_infra_ecr_repository=web-prod")
    refused = failures(results)
    assert rc != 0 and any("ECR repository web-prod does not exist" in (m or "") for m in refused.values()), refused
    assert not writes(account.calls()), writes(account.calls())

    step = time.monotonic()
    rc, results, unused_report = promote("-e", "promote_version=v1", *shared)
    assert rc == 0, failures(results)
    print(f"prod: promote.yml {time.monotonic() - step:.1f}s")
    said = results["Say what is promoted"]["msg"]
    assert "promoting v1" in said and digest in said and v1["artifacts"]["bundle_sha256"] in said, said
    (promoted,) = [
        json.load(s3.get_object(Bucket=prod_bucket, Key=o["Key"])["Body"])
        for o in s3.list_objects_v2(Bucket=prod_bucket, Prefix=f"bluegreen/{APP}/prod/history/").get("Contents", [])
    ]
    assert (promoted["version"], promoted["result"], promoted["extra"]["operation"]) == ("v1", "success", "promote")
    assert promoted["artifacts"]["image_digest"] == digest and promoted["artifacts"]["promoted_from"] == ENV
    assert promoted["artifacts"]["bundle_sha256"] == v1["artifacts"]["bundle_sha256"], promoted
    assert answering(account, f"{APP}-prod") == "v1"  # prod's instances run the pinned image
    # the promoted image is prod's current one now, beside the source environment's tags
    assert image_tags(account.client("ecr"), digest) == ["emulator-current", "prod-current", "v1"]
    assert promoted["extra"]["release_tags"] == {"v1": digest, "prod-current": digest}, promoted["extra"]
