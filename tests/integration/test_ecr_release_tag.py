"""bluegreen.aws.ecr_release_tag on the emulator's ECR (tag immutability as AWS applies it: bgemu/ecr.py)."""

import hashlib
import json

import pytest
from conftest import run_playbook

REPO = "web"


def manifest(n):
    layer = "sha256:" + hashlib.sha256(f"layer {n}".encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7, "digest": layer},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": layer}],
        }
    )


@pytest.fixture
def ecr(emulator):
    client = emulator.client("ecr")

    def repository(mutability="IMMUTABLE_WITH_EXCLUSION", filters=("*-current",)):
        extra = {}
        if filters:
            extra["imageTagMutabilityExclusionFilters"] = [{"filterType": "WILDCARD", "filter": f} for f in filters]
        client.create_repository(repositoryName=REPO, imageTagMutability=mutability, **extra)

    def push(n, tag):
        return client.put_image(repositoryName=REPO, imageManifest=manifest(n), imageTag=tag)["image"]["imageId"][
            "imageDigest"
        ]

    def tags():
        found = client.describe_images(repositoryName=REPO)["imageDetails"]
        return {tag: image["imageDigest"] for image in found for tag in image.get("imageTags", [])}

    client.repository, client.push, client.tags = repository, push, tags
    return client


def tag_task(digest, tags, name="tag"):
    return f"""\
- name: {name}
  bluegreen.aws.ecr_release_tag:
    repository: {REPO}
    image_digest: "{digest}"
    tags: {json.dumps(tags)}
  register: out
  ignore_errors: true
"""


def test_release_tags_move_only_the_env_tag_and_a_rerun_changes_nothing(emulator, ecr, tmp_path):
    ecr.repository()
    v1 = ecr.push(1, "T-1-web-20260101000000")
    v2 = ecr.push(2, "T-2-web-20260102000000")
    rc, results, unused_report = run_playbook(
        tag_task(v1, ["T-1-web-20260101000000", "prod-current"]), emulator.endpoint, tmp_path
    )
    assert rc == 0 and results["tag"]["changed"] and set(results["tag"]["moved"]) == {"prod-current"}
    assert ecr.tags()["prod-current"] == v1

    rc, results, unused_report = run_playbook(
        tag_task(v2, ["T-2-web-20260102000000", "prod-current"]), emulator.endpoint, tmp_path
    )
    assert rc == 0 and results["tag"]["moved"] == {"prod-current": {"before": v1, "after": v2}}
    assert ecr.tags() == {"T-1-web-20260101000000": v1, "T-2-web-20260102000000": v2, "prod-current": v2}

    rc, results, unused_report = run_playbook(
        tag_task(v2, ["T-2-web-20260102000000", "prod-current"]), emulator.endpoint, tmp_path
    )
    assert rc == 0 and results["tag"]["changed"] is False and results["tag"]["moved"] == {}


def test_check_mode_reports_the_move_and_writes_nothing(emulator, ecr, tmp_path):
    ecr.repository()
    v1, v2 = ecr.push(1, "one"), ecr.push(2, "two")
    ecr.put_image(repositoryName=REPO, imageManifest=manifest(1), imageTag="prod-current")
    emulator.admin("calls", "DELETE")
    rc, results, unused_report = run_playbook(tag_task(v2, ["prod-current"]), emulator.endpoint, tmp_path, check=True)
    assert rc == 0 and results["tag"]["changed"] and results["tag"]["moved"]["prod-current"]["before"] == v1
    assert ecr.tags()["prod-current"] == v1
    assert not emulator.calls().get("ecr.PutImage")


def test_a_reused_version_tag_is_refused_before_any_tag_moves(emulator, ecr, tmp_path):
    ecr.repository()
    v1, v2 = ecr.push(1, "T-1-web-20260101000000"), ecr.push(2, "other")
    ecr.put_image(repositoryName=REPO, imageManifest=manifest(1), imageTag="prod-current")
    emulator.admin("calls", "DELETE")
    # prod-current could move, the version tag cannot: nothing may move
    rc, results, unused_report = run_playbook(
        tag_task(v2, ["prod-current", "T-1-web-20260101000000"]), emulator.endpoint, tmp_path
    )
    assert results["tag"]["failed"]
    assert "T-1-web-20260101000000 -> " + v1 in results["tag"]["msg"] and "never reused" in results["tag"]["msg"]
    assert ecr.tags()["prod-current"] == v1
    assert not emulator.calls().get("ecr.PutImage")


def test_an_immutable_repository_without_an_exclusion_names_the_fix(emulator, ecr, tmp_path):
    ecr.repository(mutability="IMMUTABLE", filters=())
    v1, v2 = ecr.push(1, "prod-current"), ecr.push(2, "two")
    rc, results, unused_report = run_playbook(tag_task(v2, ["prod-current"]), emulator.endpoint, tmp_path)
    assert results["tag"]["failed"] and "IMMUTABLE_WITH_EXCLUSION" in results["tag"]["msg"]
    assert ecr.tags()["prod-current"] == v1


def test_the_emulator_refuses_an_immutable_tag_the_way_ecr_does(ecr):
    ecr.repository()
    ecr.push(1, "v1")
    with pytest.raises(ecr.exceptions.ClientError) as error:
        ecr.push(2, "v1")
    assert error.value.response["Error"]["Code"] == "ImageTagAlreadyExistsException"
    ecr.push(1, "dev-current")
    ecr.push(2, "dev-current")  # excluded by the wildcard filter *-current: it moves


@pytest.mark.parametrize(
    "digest, tags, message",
    [
        ("latest", ["prod-current"], "image_digest"),
        ("sha256:" + "0" * 64, [], "tags is empty"),
        ("sha256:" + "0" * 64, ["-bad"], "'-bad' is not a valid image tag"),
    ],
)
def test_bad_input_is_refused_naming_the_parameter_before_any_call(emulator, tmp_path, digest, tags, message):
    emulator.admin("calls", "DELETE")
    rc, results, unused_report = run_playbook(tag_task(digest, tags), emulator.endpoint, tmp_path)
    assert results["tag"]["failed"] and message in results["tag"]["msg"]
    assert not [call for call in emulator.calls() if call.startswith("ecr.")]


def test_an_image_that_is_not_there_is_named(emulator, ecr, tmp_path):
    ecr.repository()
    missing = "sha256:" + "1" * 64
    rc, results, unused_report = run_playbook(tag_task(missing, ["prod-current"]), emulator.endpoint, tmp_path)
    assert results["tag"]["failed"] and f"no image with digest {missing}" in results["tag"]["msg"]


RECORD_PLAY = """\
- name: begin
  ansible.builtin.include_role:
    name: bluegreen.aws.release_record
    tasks_from: begin
- name: finish
  ansible.builtin.include_role:
    name: bluegreen.aws.release_record
    tasks_from: finish
  vars:
    release_record_result: "{{ result }}"
- name: unlock
  ansible.builtin.include_role:
    name: bluegreen.aws.release_record
    tasks_from: unlock
- name: history
  bluegreen.aws.release_history_info:
    bucket: state
    application: web
    environment: prod
  register: history
"""


def run_record(emulator, tmp_path, digest, version, repository=REPO, result="success"):
    variables = {
        "release_record_bucket": "state",
        "release_record_application": "web",
        "release_record_environment": "prod",
        "release_record_version": version,
        "release_record_strategy": "codedeploy",
        "release_record_artifacts": {"image_digest": digest},
        "release_record_ecr_repository": repository,
        "result": result,
    }
    return run_playbook(RECORD_PLAY, emulator.endpoint, tmp_path, play_vars=variables)


@pytest.fixture
def state(emulator):
    emulator.client("s3").create_bucket(
        Bucket="state", CreateBucketConfiguration={"LocationConstraint": emulator.region}
    )


def test_a_successful_release_tags_its_image_and_the_record_says_so(emulator, ecr, state, tmp_path):
    ecr.repository()
    v1, v2 = ecr.push(1, "build-1"), ecr.push(2, "build-2")
    rc, results, unused_report = run_record(emulator, tmp_path, v1, "T-1-web-20260101000000")
    assert rc == 0
    rc, results, unused_report = run_record(emulator, tmp_path, v2, "T-2-web-20260102000000")
    assert rc == 0
    assert ecr.tags()["prod-current"] == v2 and ecr.tags()["T-2-web-20260102000000"] == v2
    assert ecr.tags()["T-1-web-20260101000000"] == v1
    last = results["history"]["last_good"]
    assert last["version"] == "T-2-web-20260102000000"
    assert last["extra"]["release_tags"] == {"T-2-web-20260102000000": v2, "prod-current": v2}


def test_a_failed_release_moves_no_tag(emulator, ecr, state, tmp_path):
    ecr.repository()
    v1, v2 = ecr.push(1, "build-1"), ecr.push(2, "build-2")
    assert run_record(emulator, tmp_path, v1, "T-1-web-20260101000000")[0] == 0
    rc, results, unused_report = run_record(emulator, tmp_path, v2, "T-2-web-20260102000000", result="rolled_back")
    assert rc == 0
    assert ecr.tags()["prod-current"] == v1 and "T-2-web-20260102000000" not in ecr.tags()


def test_a_tag_ecr_refuses_is_recorded_and_warned_but_the_release_stays_a_success(emulator, ecr, state, tmp_path):
    ecr.repository(mutability="IMMUTABLE", filters=())
    v1, v2 = ecr.push(1, "prod-current"), ecr.push(2, "build-2")
    rc, results, report = run_record(emulator, tmp_path, v2, "T-2-web-20260102000000")
    assert rc == 0
    last = results["history"]["last_good"]
    assert last["result"] == "success" and "IMMUTABLE_WITH_EXCLUSION" in last["extra"]["release_tags_error"]
    assert ecr.tags()["prod-current"] == v1 and "T-2-web-20260102000000" not in ecr.tags()


def test_a_release_without_a_digest_says_that_the_env_tag_did_not_move(emulator, ecr, state, tmp_path):
    # e.g. an alb rollback to a fleet created before fleets carried their bluegreen:image-digest tag
    ecr.repository()
    v1 = ecr.push(1, "build-1")
    assert run_record(emulator, tmp_path, v1, "T-1-web-20260101000000")[0] == 0
    rc, results, unused_report = run_record(emulator, tmp_path, "", "T-2-web-20260102000000")
    assert rc == 0
    last = results["history"]["last_good"]
    assert last["version"] == "T-2-web-20260102000000" and "release_tags" not in last["extra"]
    assert "no image digest" in last["extra"]["release_tags_error"]
    assert "prod-current in web was not moved" in last["extra"]["release_tags_error"]
    assert ecr.tags()["prod-current"] == v1 and "T-2-web-20260102000000" not in ecr.tags()


def test_ecr_image_info_resolves_a_tag_and_finds_a_digest_only_where_it_was_pushed(emulator, ecr, tmp_path):
    ecr.repository()
    v1 = ecr.push(1, "v1")
    emulator.client("ecr").create_repository(repositoryName="other")

    def info(name, **options):
        return f"""\
- name: {name}
  bluegreen.aws.ecr_image_info: {json.dumps(options)}
  register: out
  ignore_errors: true
"""

    tasks = (
        info("tag", repository=REPO, image_tag="v1")
        + info("digest", repository=REPO, image_digest=v1)
        + info("elsewhere", repository="other", image_digest=v1)
        + info("no repository", repository="nowhere", image_tag="v1")
        + info("untagged", repository=REPO, image_tag="v2")
        + info("bad digest", repository=REPO, image_digest="sha256:abc")
    )
    rc, results, unused_report = run_playbook(tasks, emulator.endpoint, tmp_path)
    assert results["tag"]["exists"] and results["tag"]["image_digest"] == v1 and results["tag"]["image_tags"] == ["v1"]
    assert results["digest"]["exists"] and results["digest"]["image_digest"] == v1
    assert results["elsewhere"]["repository_exists"] and not results["elsewhere"]["exists"]
    assert not results["no repository"]["repository_exists"] and not results["no repository"]["exists"]
    assert not results["untagged"]["exists"] and results["untagged"]["image_digest"] == ""
    assert results["bad digest"]["failed"] and "image_digest 'sha256:abc' is not an image digest" in (
        results["bad digest"]["msg"]
    )
    assert not any(results[name].get("changed") for name in results)
