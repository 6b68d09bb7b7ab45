"""A launch template's newer versions launch like its first (moto stored their user data un-encoded: an Auto Scaling
group on version 2 crashed the ticker), and an instance runs its user-data script at launch, as cloud-init does:
IMDSv2 answers it, its `docker run` starts the app at the image's tag, its output is in cloud-init-output.log."""

import base64
import time

import pytest
from botocore.exceptions import ClientError
from cdfleet import addresses
from cdfleet import run_in
from dataplane import get

SCRIPT = """#!/bin/bash
set -euo pipefail
token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)
region=$(curl -fsS -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/placement/region)
code=$(curl -s -o /dev/null -w '%{{http_code}}' http://169.254.169.254/latest/meta-data/placement/region)
echo "region $region without-token $code online ${{BG_USERDATA_ONLINE}}"
docker run --detach --name app --publish 8080:8080 web:{tag}
"""


def wait_version(url, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = get(url)
            if status == 200:
                return body
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} never answered"
        time.sleep(0.1)


def test_a_group_on_version_2_launches_and_runs_that_versions_user_data(emulator):
    ec2, asg = emulator.client("ec2"), emulator.client("autoscaling")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def data(tag):
        return {
            "ImageId": ami,
            "InstanceType": "t3.micro",
            "UserData": base64.b64encode(SCRIPT.format(tag=tag).encode()).decode(),
        }

    template = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData=data("v1"))["LaunchTemplate"]
    version = ec2.create_launch_template_version(
        LaunchTemplateId=template["LaunchTemplateId"], LaunchTemplateData=data("v2")
    )
    assert version["LaunchTemplateVersion"]["VersionNumber"] == 2
    with pytest.raises(ClientError) as refused:  # as AWS: user data must be base64
        ec2.create_launch_template_version(
            LaunchTemplateId=template["LaunchTemplateId"], LaunchTemplateData={"UserData": "#!/bin/bash not base64"}
        )
    assert refused.value.response["Error"]["Code"] == "InvalidUserData.Malformed"

    asg.create_auto_scaling_group(
        AutoScalingGroupName="web-green",
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "2"},
        MinSize=1,
        MaxSize=1,
        DesiredCapacity=1,
        AvailabilityZones=["eu-west-1a"],
    )
    deadline = time.monotonic() + 30
    while not (
        found := asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web-green"])["AutoScalingGroups"][0][
            "Instances"
        ]
    ):
        assert time.monotonic() < deadline, "the group on version 2 launched nothing"
        time.sleep(0.1)
    (instance_id,) = [i["InstanceId"] for i in found]
    address = addresses(emulator, [instance_id])[instance_id]
    assert '"version": "v2"' in wait_version(f"http://{address}:8080/version")
    deadline = time.monotonic() + 20
    while "user-data exited" not in (
        log := run_in(emulator, instance_id, "cat", "/var/log/cloud-init-output.log")["stdout"]
    ):
        assert time.monotonic() < deadline, log
        time.sleep(0.1)
    assert "region eu-west-1 without-token 401 online 0" in log, log
    assert "user-data exited 0" in log, log
