"""bluegreen.aws.ecr_repository on the emulator's ECR: version tags immutable while <env>-current moves, idempotence,
check mode, tags, refusals before any call, and deletion that needs force_absent for a repository with images."""

import json

from conftest import run_playbook
from test_ecr_release_tag import manifest

REPO = "web"
POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "keep the last 30 images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30},
            "action": {"type": "expire"},
        }
    ]
}


def task(name="repo", **options):
    options = dict(name=REPO, **options)
    return f"""\
- name: {name}
  bluegreen.aws.ecr_repository: {json.dumps(options)}
  register: out
  ignore_errors: true
"""


def settings(client):
    (found,) = client.describe_repositories(repositoryNames=[REPO])["repositories"]
    tags = client.list_tags_for_resource(resourceArn=found["repositoryArn"])["tags"]
    return dict(
        mutability=found["imageTagMutability"],
        filters=[f["filter"] for f in found.get("imageTagMutabilityExclusionFilters") or []],
        scan=found["imageScanningConfiguration"]["scanOnPush"],
        policy=json.loads(client.get_lifecycle_policy(repositoryName=REPO)["lifecyclePolicyText"]),
        tags={t["Key"]: t["Value"] for t in tags},
    )


def writes(calls):
    reads = ("Describe", "Get", "List", "BatchGet")
    return {op: n for op, n in calls.items() if op.startswith("ecr.") and not op.split(".")[1].startswith(reads)}


WANT = dict(
    image_tag_mutability="immutable_with_exclusion",
    exclusion_filters=["*-current"],
    scan_on_push=True,
    lifecycle_policy=POLICY,
    tags={"app": "web", "env": "prod"},
)


def test_version_tags_stay_put_while_env_current_moves_and_a_rerun_changes_nothing(emulator, tmp_path):
    ecr = emulator.client("ecr")
    # check mode on an empty account: says it would create, creates nothing
    rc, results, unused = run_playbook(task(**WANT), emulator.endpoint, tmp_path, check=True)
    assert rc == 0 and results["repo"]["changed"], results["repo"]
    assert results["repo"]["actions"] == ["create_repository", "put_lifecycle_policy"]
    assert not ecr.describe_repositories()["repositories"]

    rc, results, unused = run_playbook(task(**WANT), emulator.endpoint, tmp_path)
    assert rc == 0 and results["repo"]["changed"], results["repo"]
    assert settings(ecr) == dict(
        mutability="IMMUTABLE_WITH_EXCLUSION", filters=["*-current"], scan=True, policy=POLICY, tags=WANT["tags"]
    )
    assert results["repo"]["repository"]["uri"].endswith(f".amazonaws.com/{REPO}")

    # what the repository is for: a version tag never moves, prod-current does
    v1 = ecr.put_image(repositoryName=REPO, imageManifest=manifest(1), imageTag="v1")["image"]["imageId"]
    ecr.put_image(repositoryName=REPO, imageManifest=manifest(1), imageTag="prod-current")
    ecr.put_image(repositoryName=REPO, imageManifest=manifest(2), imageTag="prod-current")
    try:
        ecr.put_image(repositoryName=REPO, imageManifest=manifest(2), imageTag="v1")
        raise AssertionError("the version tag v1 moved to another image")
    except ecr.exceptions.ImageTagAlreadyExistsException:
        pass
    assert (
        ecr.describe_images(repositoryName=REPO, imageIds=[{"imageTag": "v1"}])["imageDetails"][0]["imageDigest"]
        == v1["imageDigest"]
    )

    # the same settings again: no call that writes
    emulator.admin("calls", "DELETE")
    rc, results, unused = run_playbook(task(**WANT), emulator.endpoint, tmp_path)
    assert rc == 0 and results["repo"]["changed"] is False and results["repo"]["actions"] == [], results["repo"]
    assert not writes(emulator.calls()), writes(emulator.calls())
    # a templated number (a string before ansible-core 2.19) and a repeated filter are the same settings
    policy = json.loads(json.dumps(POLICY).replace('"countNumber": 30', '"countNumber": "30"'))
    again = {**WANT, "lifecycle_policy": policy, "exclusion_filters": ["*-current", "*-current"]}
    rc, results, unused = run_playbook(task(**again), emulator.endpoint, tmp_path)
    assert rc == 0 and results["repo"]["changed"] is False, results["repo"]

    # changes: exactly the calls they need, check mode first
    changed = {**WANT, "exclusion_filters": ["*-current", "latest"], "scan_on_push": False, "tags": {"app": "web"}}
    rc, results, unused = run_playbook(task(**changed), emulator.endpoint, tmp_path, check=True)
    assert results["repo"]["actions"] == [
        "put_image_tag_mutability",
        "put_image_scanning_configuration",
        "untag_resource",
    ], results["repo"]
    assert settings(ecr)["filters"] == ["*-current"]  # check mode wrote nothing
    planned = results["repo"]["diff"]["after"]
    assert (planned["exclusion_filters"], planned["scan_on_push"], planned["tags"]) == (
        ["*-current", "latest"],
        False,
        {"app": "web"},
    ), planned
    rc, results, unused = run_playbook(task(**changed), emulator.endpoint, tmp_path)
    assert rc == 0 and results["repo"]["changed"]
    now = settings(ecr)
    assert (sorted(now["filters"]), now["scan"], now["tags"]) == (["*-current", "latest"], False, {"app": "web"})
    assert results["repo"]["diff"]["before"]["tags"] == WANT["tags"]

    # purge_tags=false keeps the tags it does not name
    rc, results, unused = run_playbook(task(tags={"team": "a"}, purge_tags=False), emulator.endpoint, tmp_path)
    assert rc == 0 and settings(ecr)["tags"] == {"app": "web", "team": "a"}


def test_bad_input_is_refused_before_any_call(emulator, tmp_path):
    cases = [
        (dict(image_tag_mutability="immutable_with_exclusion"), "exclusion_filters is empty"),
        (dict(image_tag_mutability="immutable", exclusion_filters=["*-current"]), "exclusion_filters is set"),
        (dict(image_tag_mutability="immutable_with_exclusion", exclusion_filters=["prod current"]), "'prod current'"),
        (dict(image_tag_mutability="mutable_with_exclusion", exclusion_filters=list("abcdef")), "at most 5"),
        (dict(lifecycle_policy={"rule": []}), "lifecycle_policy has no list of rules"),
    ]
    emulator.admin("calls", "DELETE")
    for options, message in cases:
        rc, results, unused = run_playbook(task(**options), emulator.endpoint, tmp_path)
        assert results["repo"].get("failed") and message in results["repo"]["msg"], (options, results["repo"])
    assert not [op for op in emulator.calls() if op.startswith("ecr.")], emulator.calls()


def test_a_repository_with_images_is_deleted_only_with_force_absent(emulator, tmp_path):
    ecr = emulator.client("ecr")
    ecr.create_repository(repositoryName=REPO)
    ecr.put_image(repositoryName=REPO, imageManifest=manifest(1), imageTag="v1")

    for check in (True, False):  # check mode says so too
        rc, results, unused = run_playbook(task(state="absent"), emulator.endpoint, tmp_path, check=check)
        assert results["repo"].get("failed") and "set force_absent=true" in results["repo"]["msg"], results["repo"]
    assert ecr.describe_repositories()["repositories"]

    rc, results, unused = run_playbook(task(state="absent", force_absent=True), emulator.endpoint, tmp_path, check=True)
    assert results["repo"]["changed"] and ecr.describe_repositories()["repositories"]
    rc, results, unused = run_playbook(task(state="absent", force_absent=True), emulator.endpoint, tmp_path)
    assert rc == 0 and results["repo"]["changed"] and not ecr.describe_repositories()["repositories"]
    rc, results, unused = run_playbook(task(state="absent", force_absent=True), emulator.endpoint, tmp_path)
    assert rc == 0 and results["repo"]["changed"] is False
