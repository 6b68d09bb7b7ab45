"""An image pinned by digest runs what the registry holds under that digest: the stand-in engine reads the emulated
ECR (the manifest's org.opencontainers.image.version annotation decides the demo app's version), and a digest the
repository does not hold fails to pull, as a registry answers "manifest unknown"."""

import json
import time

from cdfleet import addresses
from cdfleet import image_manifest
from cdfleet import run_in
from dataplane import get

SCRIPT = """#!/bin/bash
set -euo pipefail
docker run --detach --name app --publish 8080:8080 {image}
"""


def launch(emulator, image):
    ec2 = emulator.client("ec2")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    user_data = SCRIPT.format(image=image)  # boto3 base64-encodes RunInstances' UserData
    (instance,) = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, UserData=user_data)[
        "Instances"
    ]
    return instance["InstanceId"]


def cloud_init_log(emulator, instance_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while "user-data exited" not in (
        log := run_in(emulator, instance_id, "cat", "/var/log/cloud-init-output.log")["stdout"]
    ):
        assert time.monotonic() < deadline, log
        time.sleep(0.1)
    return log


def test_a_digest_runs_the_pushed_image_and_an_unknown_digest_fails_to_pull(emulator):
    ecr = emulator.client("ecr")
    ecr.create_repository(repositoryName="web")
    ecr.create_repository(repositoryName="other")
    pushed = ecr.put_image(repositoryName="web", imageManifest=image_manifest("v7"), imageTag="v7")["image"]
    digest = pushed["imageId"]["imageDigest"]
    elsewhere = ecr.put_image(repositoryName="other", imageManifest=image_manifest("v8"), imageTag="v8")["image"]

    held = launch(emulator, f"web@{digest}")
    assert "user-data exited 0" in cloud_init_log(emulator, held)
    address = addresses(emulator, [held])[held]
    status, body = get(f"http://{address}:8080/version")
    assert status == 200 and json.loads(body)["version"] == "v7", body

    # the digest of another repository's image: that repository has it, web does not
    missing = launch(emulator, f"web@{elsewhere['imageId']['imageDigest']}")
    log = cloud_init_log(emulator, missing)
    assert "manifest unknown" in log and "user-data exited 0" not in log, log
